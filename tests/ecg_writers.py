"""Independent writers of clinical ECG files for the reader tests: XML formats built with ElementTree from
a known signal, DICOM with pydicom, EDF/EDF+ with pyedflib and edfio. None shares code with
ecgnet.data.readers; each writes from the format's public layout."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

NAMES = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def ecg(fs: int = 500, seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    """A plausible (12, samples) mV signal: QRS-like spikes at 75 bpm, limb leads consistent (Einthoven)."""
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    beat = np.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.012 ** 2)) + 0.25 * np.exp(-(((t % 0.8) - 0.65) ** 2) / (2 * 0.04 ** 2))
    i = 0.7 * beat + rng.normal(0, 0.01, n)
    ii = 1.2 * beat + rng.normal(0, 0.01, n)
    chest = [(0.5 + 0.3 * k) * beat * (-1 if k < 2 else 1) + rng.normal(0, 0.01, n) for k in range(6)]
    return np.stack([i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2, *chest])


def _b64(values: np.ndarray) -> str:
    return base64.b64encode(np.asarray(values, "<i2").tobytes()).decode()


def write_muse(path: Path, signal_mv: np.ndarray, fs: int = 500, uv_per_bit: float = 4.88, leads=("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"),
               ecg_sample_base: int | None = None, statements=("SINUS RHYTHM", "NORMAL ECG"), b64_override=None,
               ventricular_rate: int | None = None) -> Path:
    root = ET.Element("RestingECG")
    demo = ET.SubElement(root, "PatientDemographics")
    for tag, value in (("PatientID", "T-1"), ("PatientAge", "61"), ("AgeUnits", "YEARS"), ("Gender", "FEMALE"),
                       ("PatientLastName", "DOE"), ("PatientFirstName", "JANE")):
        ET.SubElement(demo, tag).text = value
    if ventricular_rate is not None:  # what the cart measured (ecg() beats at 75 bpm)
        ET.SubElement(ET.SubElement(root, "RestingECGMeasurements"), "VentricularRate").text = str(ventricular_rate)
    if ecg_sample_base is not None:
        orig = ET.SubElement(root, "OriginalRestingECGMeasurements")
        ET.SubElement(orig, "ECGSampleBase").text = str(ecg_sample_base)
        ET.SubElement(orig, "ECGSampleExponent").text = "0"
    diag = ET.SubElement(root, "Diagnosis")
    for s in statements:
        st = ET.SubElement(diag, "DiagnosisStatement")
        ET.SubElement(st, "StmtFlag").text = "ENDSLINE"
        ET.SubElement(st, "StmtText").text = s
    wave = ET.SubElement(root, "Waveform")
    ET.SubElement(wave, "WaveformType").text = "Rhythm"
    ET.SubElement(wave, "SampleBase").text = str(fs)
    ET.SubElement(wave, "SampleExponent").text = "0"
    digital = np.round(signal_mv * 1000 / uv_per_bit)
    for name in leads:
        ld = ET.SubElement(wave, "LeadData")
        for tag, value in (("LeadByteCountTotal", 2 * digital.shape[1]), ("LeadSampleCountTotal", digital.shape[1]),
                           ("LeadAmplitudeUnitsPerBit", uv_per_bit), ("LeadAmplitudeUnits", "MICROVOLTS"),
                           ("LeadID", name), ("LeadSampleSize", 2)):
            ET.SubElement(ld, tag).text = str(value)
        ET.SubElement(ld, "WaveFormData").text = b64_override if b64_override is not None else _b64(digital[NAMES.index(name)])
    ET.ElementTree(root).write(path, encoding="ISO-8859-1", xml_declaration=True)
    return path


def write_cardiosoft(path: Path, signal_mv: np.ndarray, fs: int = 500, uv_per_lsb: float = 5.0, leads=None,
                     count_override: int | None = None, text_override: str | None = None) -> Path:
    """A GE CardioSoft XML file as UK Biobank's (CardioSoft V6.73): median beats first, then the 10 s
    <StripData> as comma-separated integers in lines of 300 values, tab-indented (the layout of a real export)."""
    leads = leads or ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    order = [n.upper() for n in NAMES]
    digital = np.round(signal_mv * 1000 / uv_per_lsb).astype(int)

    def waveform(parent, values, lead):
        chunks = [",".join(map(str, values[i:i + 300])) for i in range(0, len(values), 300)]
        ET.SubElement(parent, "WaveformData", lead=lead).text = "\t\t" + ",\n\t\t".join(chunks)

    root = ET.Element("CardiologyXML")
    ET.SubElement(root, "ObservationType").text = "RestECG"
    when = ET.SubElement(root, "ObservationDateTime")
    for tag, value in (("Hour", 9), ("Minute", 30), ("Second", 5), ("Day", 2), ("Month", 1), ("Year", 2024)):
        ET.SubElement(when, tag).text = str(value)
    device = ET.SubElement(ET.SubElement(root, "ClinicalInfo"), "DeviceInfo")
    ET.SubElement(device, "Desc").text, ET.SubElement(device, "SoftwareVer").text = "CardioSoft", "V6.73"
    info = ET.SubElement(root, "PatientInfo")
    ET.SubElement(info, "PID").text = "UKB-1"
    ET.SubElement(info, "Age", units="YEARS").text = "61"
    born = ET.SubElement(info, "BirthDateTime")
    for tag, value in (("Day", 3), ("Month", 4), ("Year", 1962)):
        ET.SubElement(born, tag).text = str(value)
    ET.SubElement(info, "Gender").text = "FEMALE"
    diagnosis = ET.SubElement(ET.SubElement(root, "Interpretation"), "Diagnosis")
    for line in ("Normal sinus rhythm", "Normal ECG", "---", "Arrhythmia results of the full-disclosure ECG",
                 "   QRS Complexes: 22"):
        ET.SubElement(diagnosis, "DiagnosisText").text = line
    median = ET.SubElement(ET.SubElement(root, "RestingECGMeasurements"), "MedianSamples")
    ET.SubElement(median, "NumberOfLeads").text = str(len(leads))
    ET.SubElement(median, "SampleRate", units="Hz").text = str(fs)
    ET.SubElement(median, "ChannelSampleCountTotal").text = str(fs * 6 // 5)
    ET.SubElement(median, "Resolution", units="uVperLsb").text = f"{uv_per_lsb:g}"
    for lead in leads:
        waveform(median, digital[order.index(lead.upper())][:fs * 6 // 5], lead)
    strip = ET.SubElement(root, "StripData")
    ET.SubElement(strip, "NumberOfLeads").text = str(len(leads))
    ET.SubElement(strip, "SampleRate", units="Hz").text = str(fs)
    ET.SubElement(strip, "ChannelSampleCountTotal").text = str(count_override or digital.shape[1])
    ET.SubElement(strip, "Resolution", units="uVperLsb").text = f"{uv_per_lsb:g}"
    for lead in leads:
        waveform(strip, digital[order.index(lead.upper())], lead)
        if text_override is not None:
            strip[-1].text = text_override
    ET.SubElement(ET.SubElement(strip, "ArrhythmiaResults"), "QRSNum").text = "12"
    full = ET.SubElement(root, "FullDisclosure")  # a longer record of its own (here: the strip twice, 3 leads)
    ET.SubElement(full, "LeadOrder").text = "I,II,V1"
    ET.SubElement(full, "FullDisclosureData").text = ",".join(map(str, np.tile(digital[[0, 1, 6]], 2).T.ravel()))
    ET.ElementTree(root).write(path, encoding="ISO-8859-1", xml_declaration=True)
    return path


def write_philips(path: Path, signal_mv: np.ndarray, fs: int = 500, resolution_uv: float = 5.0, version: str = "1.04",
                  encoding: str = "utf-8", wave_rate: int | None = None, leads=NAMES) -> Path:
    """An uncompressed Philips XML file (lead after lead, int16, ``resolution_uv`` µV per unit)."""
    ns = "http://www3.medical.philips.com"
    ET.register_namespace("", ns)
    q = lambda tag: f"{{{ns}}}{tag}"  # noqa: E731
    root = ET.Element(q("restingecgdata"))
    info = ET.SubElement(root, q("documentinfo"))
    ET.SubElement(info, q("documenttype")).text = "PhilipsECG"
    ET.SubElement(info, q("documentversion")).text = version
    acq = ET.SubElement(root, q("dataacquisition"), date="2024-01-02", time="10:11:12")
    chars = ET.SubElement(acq, q("signalcharacteristics"))
    ET.SubElement(chars, q("samplingrate")).text = str(fs)
    ET.SubElement(chars, q("resolution")).text = str(resolution_uv)
    ET.SubElement(chars, q("acquisitiontype")).text = "STD-12"
    ET.SubElement(chars, q("numberchannelsallocated")).text = str(len(leads))
    patient = ET.SubElement(ET.SubElement(root, q("patient")), q("generalpatientdata"))
    ET.SubElement(patient, q("patientid")).text = "P-9"
    ET.SubElement(ET.SubElement(patient, q("age")), q("years")).text = "70"
    ET.SubElement(patient, q("sex")).text = "Male"
    interp = ET.SubElement(ET.SubElement(root, q("interpretations")), q("interpretation"))
    st = ET.SubElement(interp, q("statement"))
    ET.SubElement(st, q("leftstatement")).text = "Sinus rhythm"
    digital = np.round(signal_mv * 1000 / resolution_uv)[[NAMES.index(n) for n in leads]]
    wave = ET.SubElement(ET.SubElement(root, q("waveforms")), q("parsedwaveforms"), dataencoding="Base64",
                         compression="Uncompressed", numberofleads=str(len(leads)), leadlabels=" ".join(leads),
                         durationperchannel=str(int(digital.shape[1] * 1000 / fs)),
                         samplespersecond=str(wave_rate or fs), resolution=str(resolution_uv))
    wave.text = _b64(digital.ravel())
    ET.ElementTree(root).write(path, encoding=encoding, xml_declaration=True)
    return path


def write_hl7(path: Path, signal_mv: np.ndarray, fs: int = 500, scale_uv: float = 2.5, leads=NAMES,
              increments=None, digits_override=None) -> Path:
    ns = "urn:hl7-org:v3"
    ET.register_namespace("", ns)
    q = lambda tag: f"{{{ns}}}{tag}"  # noqa: E731
    root = ET.Element(q("AnnotatedECG"))
    ET.SubElement(ET.SubElement(root, q("effectiveTime")), q("center"), value="20240102101112")
    series = ET.SubElement(ET.SubElement(root, q("component")), q("series"))
    ET.SubElement(series, q("code"), code="RHYTHM")
    sset = ET.SubElement(ET.SubElement(series, q("component")), q("sequenceSet"))
    for inc in increments or [1 / fs]:
        seq = ET.SubElement(ET.SubElement(sset, q("component")), q("sequence"))
        ET.SubElement(seq, q("code"), code="TIME_ABSOLUTE")
        value = ET.SubElement(seq, q("value"))
        ET.SubElement(value, q("increment"), value=f"{inc:.9g}", unit="s")
    digital = np.round(signal_mv * 1000 / scale_uv).astype(int)
    for name in leads:
        seq = ET.SubElement(ET.SubElement(sset, q("component")), q("sequence"))
        ET.SubElement(seq, q("code"), code=f"MDC_ECG_LEAD_{name.upper()}")
        value = ET.SubElement(seq, q("value"))
        ET.SubElement(value, q("origin"), value="0", unit="uV")
        ET.SubElement(value, q("scale"), value=str(scale_uv), unit="uV")
        ET.SubElement(value, q("digits")).text = digits_override if digits_override is not None else \
            " ".join(map(str, digital[NAMES.index(name)]))
    ann = ET.SubElement(ET.SubElement(ET.SubElement(series, q("subjectOf")), q("annotationSet")), q("component"))
    a = ET.SubElement(ann, q("annotation"))
    ET.SubElement(a, q("code"), code="MDC_ECG_INTERPRETATION_STATEMENT")
    ET.SubElement(a, q("value")).text = "Normal sinus rhythm"
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_dicom(path: Path, signal_mv: np.ndarray, fs: int = 500, sop_class: str = "1.2.840.10008.5.1.4.1.1.9.1.1",
                leads=NAMES, uv_per_unit: float = 2.5) -> Path:
    """A DICOM waveform written with pydicom (channel codes by SCP-ECG lead code and meaning)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    codes = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8, "III": 61, "aVR": 62, "aVL": 63, "aVF": 64}
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.PatientName, ds.PatientSex, ds.PatientAge = "ECG", "D-7", "Roe^Richard", "M", "055Y"
    group = Dataset()
    group.MultiplexGroupLabel, group.WaveformOriginality = "RHYTHM", "ORIGINAL"
    group.NumberOfWaveformChannels, group.NumberOfWaveformSamples = len(leads), signal_mv.shape[1]
    group.SamplingFrequency, group.WaveformBitsAllocated, group.WaveformSampleInterpretation = fs, 16, "SS"
    channels = []
    for name in leads:
        ch, src, unit = Dataset(), Dataset(), Dataset()
        src.CodeValue, src.CodingSchemeDesignator, src.CodeMeaning = f"5.6.3-9-{codes[name]}", "SCPECG", f"Lead {name}"
        unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "uV", "UCUM", "microvolt"
        ch.ChannelSourceSequence, ch.ChannelSensitivityUnitsSequence = [src], [unit]
        ch.ChannelSensitivity, ch.ChannelSensitivityCorrectionFactor, ch.ChannelBaseline = uv_per_unit, 1, 0
        ch.WaveformBitsStored = 16
        channels.append(ch)
    group.ChannelDefinitionSequence = channels
    digital = np.round(signal_mv * 1000 / uv_per_unit)[[NAMES.index(n) for n in leads]].astype("<i2")
    group.WaveformData = digital.T.tobytes()  # multiplexed: sample by sample, channel by channel
    ann = Dataset()
    ann.UnformattedTextValue = "Sinus rhythm"
    ds.WaveformSequence, ds.WaveformAnnotationSequence = [group], [ann]
    ds.save_as(path, enforce_file_format=True)
    return path


def write_edf_pyedflib(path: Path, signal_mv: np.ndarray, fs: int = 500, labels=None, dimension: str = "mV") -> Path:
    import pyedflib

    labels = labels or NAMES
    f = pyedflib.EdfWriter(str(path), len(labels), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        scale = 1000.0 if dimension == "uV" else 1.0
        f.setSignalHeaders([{"label": name, "dimension": dimension, "sample_frequency": fs,
                             "physical_max": 10 * scale, "physical_min": -10 * scale,
                             "digital_max": 32767, "digital_min": -32768} for name in labels])
        f.writeSamples([signal_mv[NAMES.index(re.sub(r"^(ECG|EKG)[ _-]", "", n))] * scale for n in labels])
    finally:
        f.close()
    return path

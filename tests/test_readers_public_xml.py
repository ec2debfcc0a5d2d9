"""Variants of real vendor XML files found in public repositories (an audit of the readers against files from
other carts and software versions than ../shared/external/formats holds). No third-party file is copied here:
each test writes a file of the real one's structure with synthetic samples.

- seanvelasco/philips-ecg ``sample/sample.xml``: a PageWriter TC (A.01.05.08) 1.04.01 export, XLI, recorded with
  every electrode off — 11 s of zeros and the cart's 1 mV calibration pulse, III/aVR/aVL/aVF stored as residuals.
  The limb leads were read as stored (the pulse fits neither reading, so a tie kept the residuals: III −1 mV while I,
  II and V1–V6 said +1 mV) with a spurious "III does not equal II − I" warning; nothing said no ECG was recorded.
- sixlettervariables/sierra-ecg-tools ``examples/xml/1_04/ad4d3d80-d165_1-04_converted.xml``: a PageWriter Touch
  ECG exported by Philips as HL7 aECG, whose reported age (LOINC 21612-7) has a unit and no value: the age was
  None though the subject's birthTime gives it.
- BIVectors/BRAVEHEART ``Example ECGs/example1.xml``: MUSE 9.0.7, 8 leads at 500 Hz, de-identified (no patient or
  test demographics, no diagnosis): read as it should be; kept as a regression test.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from ecg_writers import NAMES, ecg, write_hl7, write_muse, write_philips

from ecgnet.data.readers import read_ecg_any, read_source
from ecgnet.data.records import LEADS

# --- Philips XLI, written the way the carts write it -------------------------------------------------------------


def _lzw(data: bytes, bits: int = 10) -> bytes:
    """LZW codes of ``bits`` bits, most significant bit first, the dictionary frozen when full (XLI's variant)."""
    table, next_code, codes, word = {bytes([k]): k for k in range(256)}, 256, [], b""
    for byte in data:
        grown = word + bytes([byte])
        if grown in table:
            word = grown
            continue
        codes.append(table[word])
        if next_code <= (1 << bits) - 2:
            table[grown], next_code = next_code, next_code + 1
        word = bytes([byte])
    codes.append(table[word])
    out, acc, held = bytearray(), 0, 0
    for code in codes:
        acc, held = (acc << bits) | code, held + bits
        while held >= 8:
            held -= 8
            out.append((acc >> held) & 0xFF)
        acc &= (1 << held) - 1
    if held:
        out.append((acc << (8 - held)) & 0xFF)
    return bytes(out)


def _xli_chunk(values: np.ndarray) -> bytes:
    """One lead as XLI: second differences (offset 64) whose first one is the header's start value, split into high
    and low bytes, LZW-coded."""
    v = [int(x) for x in values]
    deltas = [v[0], v[1], *(64 + 2 * v[k] - v[k - 1] - v[k + 1] for k in range(2, len(v) - 1)), 0]
    start = 2 * v[1] - v[0] - v[2]
    raw = np.asarray(deltas, np.int64).astype(np.int16).view(np.uint16)
    packed = _lzw(bytes((raw >> 8).astype(np.uint8)) + bytes((raw & 0xFF).astype(np.uint8)))
    return len(packed).to_bytes(4, "little") + b"\0\0" + start.to_bytes(2, "little", signed=True) + packed


def _as_residuals(digital: np.ndarray) -> np.ndarray:
    """The 12 leads (NAMES order, units) with III, aVR, aVL, aVF stored as the carts store them: residuals against
    I and II, the inverse of the reference decoder's rebuild."""
    i, ii, iii, avr, avl, avf = digital[:6]
    out = digital.copy()
    out[2] = ii - i - iii
    out[3] = -avr - np.floor_divide(i + ii, 2)
    out[4] = np.floor_divide(i - iii, 2) - avl
    out[5] = np.floor_divide(ii + iii, 2) - avf
    return out


def write_philips_xli(path, digital: np.ndarray, fs: int = 500, resolution_uv: float = 5.0):
    """A PageWriter TC 1.04.01 export's layout (UTF-16, `<resolution>`, 10-WIRE, XLI waveform) holding ``digital``
    (12 leads in NAMES order, units of ``resolution_uv``)."""
    ns = "http://www3.medical.philips.com"
    ET.register_namespace("", ns)

    def q(tag):
        return f"{{{ns}}}{tag}"

    root = ET.Element(q("restingecgdata"))
    info = ET.SubElement(root, q("documentinfo"))
    ET.SubElement(info, q("documenttype")).text = "PhilipsECG"
    ET.SubElement(info, q("documentversion")).text = "1.04.01"
    acq = ET.SubElement(root, q("dataacquisition"), date="2022-05-28", time="14:15:28")
    ET.SubElement(acq, q("machine")).text = "PageWriter TC"
    chars = ET.SubElement(acq, q("signalcharacteristics"))
    for tag, value in (("samplingrate", fs), ("resolution", resolution_uv), ("acquisitiontype", "10-WIRE"),
                       ("numberchannelsallocated", 12), ("numberchannelsvalid", 12)):
        ET.SubElement(chars, q(tag)).text = str(value)
    patient = ET.SubElement(ET.SubElement(root, q("patient")), q("generalpatientdata"))
    ET.SubElement(ET.SubElement(patient, q("age"), defaultage="50"), q("dateofbirth")).text = "2011-11-11"
    ET.SubElement(patient, q("sex")).text = "Male"
    interp = ET.SubElement(ET.SubElement(root, q("interpretations")), q("interpretation"))
    ET.SubElement(interp, q("severity"), code="DE").text = "- DEFECTIVE ECG -"
    wave = ET.SubElement(ET.SubElement(root, q("waveforms")), q("parsedwaveforms"), dataencoding="Base64",
                         compression="XLI", numberofleads="12", leadlabels=" ".join(NAMES),
                         durationperchannel=str(digital.shape[1] * 1000 // fs), samplespersecond=str(fs),
                         resolution=f"{resolution_uv:g}")
    wave.text = base64.b64encode(b"".join(_xli_chunk(lead) for lead in _as_residuals(digital))).decode()
    ET.ElementTree(root).write(path, encoding="utf-16", xml_declaration=True)
    return path


def _pulse(n: int, fs: int = 500, units: int = 200) -> np.ndarray:
    """The last 0.2 s of ``n`` samples: the 1 mV calibration pulse (200 units of 5 µV) that every lead shows."""
    out = np.zeros(n, np.int64)
    out[n - fs // 5:] = units
    return out


def test_the_writer_is_what_the_reference_decoder_reads(tmp_path):
    """The test's XLI writer against sierraecg (the reference decoder), so the tests below test the reader."""
    sierraecg = pytest.importorskip("sierraecg")
    digital = np.round(ecg(500, seconds=11) * 200).astype(np.int64)
    path = write_philips_xli(tmp_path / "ecg.xml", digital)
    leads = sierraecg.read_file(str(path)).leads
    np.testing.assert_array_equal(np.stack([np.asarray(lead.samples) for lead in leads]), digital)


def test_a_leads_off_recording_is_rebuilt_and_said_to_hold_no_ecg(tmp_path):
    """Every lead shows the same calibration pulse on zeros: the pulse decides nothing between the stored and the
    rebuilt limb leads, so the XLI reading (rebuilt) stands — III +1 mV like I and II, as sierraecg reads it — and
    one warning says no ECG was recorded (not "III does not equal II − I")."""
    digital = np.tile(_pulse(5500), (12, 1))
    path = write_philips_xli(tmp_path / "leads_off.xml", digital)
    rec = read_source(path)
    assert rec.format == "philips-xml" and rec.source_rate == 500 and rec.signal.shape == (12, 5500)
    np.testing.assert_allclose(rec.signal, digital * 0.005)
    assert not any("II − I" in w for w in rec.warnings), rec.warnings
    assert any("all 12 leads are identical throughout" in w for w in rec.warnings), rec.warnings
    assert rec.statements == ["DEFECTIVE ECG"] and rec.sex == "male" and rec.age == 10
    assert not read_ecg_any(path, 100, resample=True).amplitude_trusted


def test_an_ecg_with_a_calibration_tail_is_still_decided_by_its_beats(tmp_path):
    """The same layout with a real signal before the pulse: the beats decide (rebuilt), the pulse is trimmed."""
    x = ecg(500, seconds=11)
    digital = np.round(x * 200).astype(np.int64)
    digital[2], digital[3] = digital[1] - digital[0], -np.floor_divide(digital[0] + digital[1], 2)
    digital[:, -100:] = 200
    rec = read_source(write_philips_xli(tmp_path / "ecg.xml", digital))
    assert rec.warnings == [] and rec.signal.shape == (12, 5400), rec.warnings
    np.testing.assert_allclose(rec.signal, digital[:, :5400] * 0.005)
    iii, i, ii = (rec.signal[LEADS.index(n)] for n in ("III", "I", "II"))
    assert np.abs(iii - (ii - i)).max() < 1e-9


def test_an_uncompressed_flat_record_keeps_its_leads(tmp_path):
    """Uncompressed leads are stored as they are: a flat record with a pulse keeps them (no rebuild, no warning but
    the one that no ECG was recorded)."""
    signal = np.tile(_pulse(5000), (12, 1)) * 0.005
    rec = read_source(write_philips(tmp_path / "flat.xml", signal))
    np.testing.assert_allclose(rec.signal, signal)
    assert rec.warnings == [("all 12 leads are identical throughout: no ECG was recorded (electrodes off?), only a "
                             "flat line or the device's calibration pulse")]


# --- HL7 aECG: Philips' export -----------------------------------------------------------------------------------

def test_hl7_reported_age_without_a_value_falls_back_to_birth_time(tmp_path):
    """Philips' aECG export writes `<value xsi:type="PQ" unit="a"/>` under the reported-age observation: the age is
    the subject's birthTime to the ECG's effectiveTime (1976-01-01 to 2024-01-02: 48), not unknown."""
    ns = "urn:hl7-org:v3"
    path = write_hl7(tmp_path / "h.xml", ecg(500))
    tree = ET.parse(path)
    root = tree.getroot()

    def q(tag):
        return f"{{{ns}}}{tag}"

    person = ET.SubElement(ET.SubElement(root, q("trialSubject")), q("subjectDemographicPerson"))
    ET.SubElement(person, q("administrativeGenderCode"), code="F")
    ET.SubElement(person, q("birthTime"), value="19760101")
    obs = ET.SubElement(ET.SubElement(root, q("controlVariable")), q("relatedObservation"))
    ET.SubElement(obs, q("code"), code="21612-7", codeSystem="2.16.840.1.113883.6.1")
    ET.SubElement(obs, q("value"), unit="a")
    tree.write(path)
    rec = read_source(path)
    assert rec.age == 48 and rec.sex == "female"
    obs.find(q("value")).set("value", "47")  # a reported age, when there is one, is what the file says
    tree.write(path)
    assert read_source(path).age == 47


# --- GE MUSE: a de-identified MUSE 9 export ----------------------------------------------------------------------

def test_muse_export_without_demographics_or_diagnosis(tmp_path):
    """MUSE 9.0.7 as BRAVEHEART publishes it: no PatientDemographics, TestDemographics or Diagnosis, PharmaData at
    the end, 8 leads at 500 Hz with equal SampleBase and ECGSampleBase: read with no age, sex or statements and no
    warning."""
    x = ecg(500)
    path = write_muse(tmp_path / "m.xml", x, ecg_sample_base=500, ventricular_rate=75)
    text = path.read_text(encoding="ISO-8859-1")
    text = re.sub(r"<PatientDemographics>.*?</PatientDemographics>|<Diagnosis>.*?</Diagnosis>", "", text,
                  flags=re.DOTALL)
    text = text.replace("</RestingECG>", "<PharmaData><PharmaCartID>X</PharmaCartID></PharmaData></RestingECG>")
    path.write_text(text, encoding="ISO-8859-1")
    rec = read_source(path)
    assert rec.source_rate == 500 and rec.signal.shape == (12, 5000) and rec.warnings == []
    assert rec.age is None and rec.sex is None and rec.statements == [] and rec.patient == {}
    assert np.abs(rec.signal - x).max() < 0.005

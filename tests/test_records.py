"""Records from outside PTB-XL: Challenge .mat files, signed checksums, other rates and lengths, header
quirks, and amplitudes that cannot be trusted — on records the tests write and on the real shared samples."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from ecgnet.data.record_files import find_records
from ecgnet.data.records import LEADS, header_demographics, read_ecg, resample_signal
from ecgnet.errors import ECGNetError

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "external" / "cinc2021-samples"
NAMES = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def signed16(x: int) -> int:
    return (x + 32768) % 65536 - 32768


def write_challenge(directory: Path, name: str = "X0001", fs: int = 500, seconds: float = 10, gain: float = 1000,
                    per_lead_uv=None, flat=(), record_line: str | None = None, seed: int = 0,
                    comments=("Age: 61", "Sex: Female", "Dx: 164889003")) -> tuple[Path, np.ndarray]:
    """A Challenge-style record (MAT v4 ``val`` int16 [12, samples], format ``16+24``, signed checksums;
    leads in ``flat`` all zero) → (header path, the digital signal)."""
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    beats = np.exp(-((t % 0.8) - 0.4) ** 2 / 0.0005)  # a QRS-like spike every 0.8 s
    scale = np.asarray(per_lead_uv if per_lead_uv is not None else np.linspace(400, 1500, 12))[:, None]
    val = np.round(beats * scale * gain / 1000 + rng.normal(0, 20, (12, n))).astype(np.int16)
    val[list(flat)] = 0
    directory.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(directory / f"{name}.mat", {"val": val}, format="4")
    checksums = [signed16(int(v.astype(np.int64).sum())) for v in val]
    lines = [record_line or f"{name} 12 {fs} {n}"]
    lines += [f"{name}.mat 16+24 {gain:g}/mV 16 0 {val[i, 0]} {checksums[i]} 0 {lead}" for i, lead in enumerate(NAMES)]
    (directory / f"{name}.hea").write_text("\n".join(lines + [f"#{c}" for c in comments]) + "\n")
    return directory / f"{name}.hea", val


def test_challenge_mat_with_negative_checksums(tmp_path):
    path, val = write_challenge(tmp_path)
    assert min(int(line.split()[6]) for line in path.read_text().splitlines()[1:13]) < 0
    rec = read_ecg(path, 500)
    np.testing.assert_allclose(rec.signal, val / 1000, atol=1e-6)
    assert rec.warnings == [] and rec.amplitude_trusted
    assert (rec.age, rec.sex) == (61.0, "female")


def test_a_flipped_sample_is_still_refused(tmp_path):
    path, _ = write_challenge(tmp_path)
    mat = path.with_suffix(".mat")
    data = bytearray(mat.read_bytes())
    data[24 + 2 * 12 * 100 + 1] ^= 0x10  # one byte of sample 100 of lead I
    mat.write_bytes(bytes(data))
    with pytest.raises(ECGNetError, match="does not match the header's checksums") as info:
        read_ecg(path, 500)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fs", [500, 1000])
def test_other_rates_are_resampled_with_a_note(tmp_path, fs):
    path, val = write_challenge(tmp_path, fs=fs)
    with pytest.raises(ECGNetError, match=f"{fs} Hz.*resampling is off"):
        read_ecg(path, 100)
    rec = read_ecg(path, 100, resample=True)
    assert rec.signal.shape == (12, 1000) and rec.source_rate == fs
    assert rec.notes == [f"resampled: {fs} Hz → 100 Hz"] and not any("resampled" in w for w in rec.warnings)
    # the QRS-like spikes survive: lead V6's range is close to the original's
    assert abs(np.ptp(rec.signal[11]) - np.ptp(val[11]) / 1000) < 0.35


@pytest.mark.parametrize("fs", [250, 500, 1000])
def test_resampling_keeps_a_baseline_offset_at_the_record_ends(fs):
    """Zero padding beyond the ends pulled a lead's first and last samples toward 0 (0.26 mV off on a
    real offset); the line through the ends keeps them: an offset with a slow wave on it, resampled to
    100 Hz, matches the same signal sampled at 100 Hz to the first and last sample."""
    def lead(rate):
        t = np.arange(10 * rate) / rate
        return 0.8 - 0.05 * t + 0.3 * np.sin(2 * np.pi * 1.1 * t)

    out = resample_signal(lead(fs), fs, 100)
    assert out.shape == (1000,)
    assert np.abs(out - lead(100)).max() < 0.01  # zero padding: 0.24 (250 Hz) to 0.36 (1000 Hz) off


def test_a_30_second_record_is_read_whole(tmp_path):
    path, _ = write_challenge(tmp_path, seconds=30)
    rec = read_ecg(path, 100, resample=True)
    assert rec.signal.shape == (12, 3000) and rec.seconds == 30


def test_gain_zero_is_read_as_uncalibrated(tmp_path):
    path, _ = write_challenge(tmp_path)
    path.write_text(path.read_text().replace(" 1000/mV ", " 0/mV "))
    rec = read_ecg(path, 500)
    assert not rec.amplitude_trusted
    assert any(w.startswith("uncalibrated") for w in rec.warnings)
    assert np.isfinite(rec.signal).all()


def test_gain_zero_on_a_channel_left_out_keeps_the_calls(tmp_path):
    """A respiration channel at gain 0 beside 12 calibrated leads made the whole record 'uncalibrated': every
    call was withheld (found in a WFDB audit)."""
    import wfdb

    names = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6", "RESP"]
    t = np.arange(5000) / 500
    signal = np.stack([(0.3 + 0.1 * k) * np.exp(-((t % 0.8) - 0.4) ** 2 / 0.0005) for k in range(13)], axis=1)
    wfdb.wrsamp("resp", 500, ["mV"] * 13, names, p_signal=signal, fmt=["16"] * 13, adc_gain=[1000.0] * 13,
                baseline=[0] * 13, write_dir=str(tmp_path))
    header = tmp_path / "resp.hea"
    lines = header.read_text().splitlines()
    lines[13] = lines[13].replace(" 1000", " 0", 1)  # the RESP line: gain 0
    header.write_text("\n".join(lines) + "\n")
    rec = read_ecg(header, 500)
    assert rec.amplitude_trusted and not any("uncalibrated" in w for w in rec.warnings), rec.warnings
    lines[2] = lines[2].replace(" 1000", " 0", 1)  # lead II: gain 0 — now the record is uncalibrated, by name
    header.write_text("\n".join(lines) + "\n")
    rec = read_ecg(header, 500)
    assert not rec.amplitude_trusted and any(w.startswith("uncalibrated: gain 0 in the header for II") for w in rec.warnings)


def test_every_lead_with_the_same_range_is_flagged(tmp_path):
    path, _ = write_challenge(tmp_path, per_lead_uv=[1000] * 12)
    rec = read_ecg(path, 500)
    assert not rec.amplitude_trusted
    assert any("every lead spans the same" in w for w in rec.warnings)


@pytest.mark.parametrize("gain, fragment", [(20000, "median lead range"), (1000, None)])
def test_median_lead_range_outside_physiology(tmp_path, gain, fragment):
    path, _ = write_challenge(tmp_path, gain=1000)
    path.write_text(path.read_text().replace(" 1000/mV ", f" {gain}/mV "))  # same data, other gain
    rec = read_ecg(path, 500)
    assert rec.amplitude_trusted is (fragment is None)
    assert any(fragment in w for w in rec.warnings) if fragment else rec.warnings == []


def test_a_flat_lead_is_flagged(tmp_path):
    path, _ = write_challenge(tmp_path, flat=(11,))
    rec = read_ecg(path, 500)
    assert not rec.amplitude_trusted and any(w.startswith("flat lead: V6") for w in rec.warnings)


def test_record_line_naming_its_mat_file_is_read_with_a_note(tmp_path):
    path, val = write_challenge(tmp_path, name="E00015", record_line="E00015.mat 12 500 5000 05-May-2020 14:50:55")
    rec = read_ecg(path, 500)
    np.testing.assert_allclose(rec.signal, val / 1000, atol=1e-6)
    assert any("header quirk" in n and "E00015.mat" in n for n in rec.notes) and not rec.warnings


def test_record_line_naming_another_record_is_refused(tmp_path):
    path, _ = write_challenge(tmp_path, name="E00015", record_line="E99999.mat 12 500 5000")
    with pytest.raises(ECGNetError, match="cannot be read as a WFDB record") as info:
        read_ecg(path, 500)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_lead_name_variants(tmp_path):
    path, _ = write_challenge(tmp_path)
    text = path.read_text()
    for old, new in ((" I\n", " i\n"), (" aVR\n", " AVR\n"), (" aVL\n", " avl\n")):
        text = text.replace(old, new, 1)
    path.write_text(text)
    assert read_ecg(path, 500).signal.shape == (12, 5000)


@pytest.mark.parametrize("comments, expected", [
    (["Age: 74", "Sex: Male"], (74.0, "male")),
    (["age 5", "sex F"], (5.0, "female")),
    (["Age: NaN", "Sex: Unknown"], (None, None)),
    (["Age: -1", "Dx: 1"], (None, None)),
    ([], (None, None)),
    (["<age>: 51", "<sex>: F", "<diagnoses>:", "Rhythm: Sinus rhythm."], (51.0, "female")),  # LUDB's headers
    (["<age>: >89", "<sex>: M"], (90.0, "male")),  # an age withheld for privacy, read as PTB-XL's 300 is
    (["Age: 300"], (90.0, None)), (["Age: 150"], (None, None)), (["age >40"], (None, None)),
    ([" <age>: 65 <sex>: F <diagnoses> Coronary artery disease, arterial hypertension"], (65.0, "female")),  # INCART
    (["<age>:  <sex>: M"], (None, "male")), (["Diagnoses: age-related <none>"], (None, None)),
])
def test_header_demographics(comments, expected):
    """LUDB writes '#<age>: 51': its patients were read without age or sex (a metadata model saw 'unknown')."""
    assert header_demographics(comments) == expected


def test_a_ludb_style_record_reads_its_age_and_sex(tmp_path):
    path, _ = write_challenge(tmp_path, comments=("<age>: 51", "<sex>: F", "<diagnoses>:", "Rhythm: Sinus rhythm."))
    rec = read_ecg(path, 500)
    assert (rec.age, rec.sex) == (51.0, "female")


def test_find_records_in_folders_and_records_lists(tmp_path):
    a, _ = write_challenge(tmp_path / "db" / "g1", name="A1")
    b, _ = write_challenge(tmp_path / "db" / "g2", name="B1")
    (tmp_path / "db" / "RECORDS").write_text("g2/B1\ng1/\n")
    assert find_records([tmp_path / "db"]) == [a, b]
    assert find_records([tmp_path / "db" / "RECORDS"]) == [b, a]
    assert find_records([b.with_suffix(".mat"), b, tmp_path / "db"]) == [b, a]  # each once, in order given
    assert find_records([tmp_path / "missing.hea"]) == [tmp_path / "missing.hea"]


def test_a_folder_s_empty_damaged_and_headerless_ecg_files_are_found_to_fail_on_their_own_rows(tmp_path):
    """An empty .dcm, a .scp of noise, a damaged or empty .xml and a .mat without its header vanished from `predict
    FOLDER` (counted nowhere, found in a user-workflow audit); files not named as ECGs are still passed over, and so
    is an XML file of another kind (a cart export's settings.xml failed as a record: a hospital audit)."""
    a, _ = write_challenge(tmp_path / "db", name="A1")
    (tmp_path / "db" / "empty.dcm").write_bytes(b"")
    (tmp_path / "db" / "noise.scp").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "db" / "cut.xml").write_text("<?xml version='1.0'?><RestingECG><Waveform><Lead")  # a MUSE file cut
    (tmp_path / "db" / "empty.xml").write_bytes(b"")
    (tmp_path / "db" / "settings.xml").write_text("<?xml version='1.0'?><settings><export>on</export></settings>")
    orphan = tmp_path / "db" / "B1.mat"
    orphan.write_bytes(a.with_suffix(".mat").read_bytes())
    (tmp_path / "db" / "README.txt").write_text("the site's notes")
    (tmp_path / "db" / "labels.csv").write_text("record,NORM\nA1,1\n")
    names = [p.name for p in find_records([tmp_path / "db"])]
    assert names == ["A1.hea", "B1.mat", "cut.xml", "empty.dcm", "empty.xml", "noise.scp"]
    assert find_records([tmp_path / "db" / "settings.xml"]) == [tmp_path / "db" / "settings.xml"]  # named: read


# --- the real shared samples (PhysioNet/CinC Challenge 2020/2021) --------------------------------

@pytest.fixture(scope="module")
def shared_samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"the shared Challenge samples are not at {SAMPLES}")
    return SAMPLES


def test_every_shared_sample_is_read(shared_samples):
    headers = find_records([shared_samples])
    assert len(headers) == 122
    warnings, notes = collections.Counter(), collections.Counter()
    untrusted = []
    for h in headers:
        rec = read_ecg(h, 100, resample=True)
        assert rec.signal.shape[0] == 12 and rec.seconds >= 10 and np.isfinite(rec.signal).all()
        warnings.update({w.split(":")[0] for w in rec.warnings})
        notes.update({n.split(":")[0] for n in rec.notes})
        if not rec.amplitude_trusted:
            untrusted.append(h.stem)
    assert warnings == {"implausible amplitude": 2, "flat lead": 5}  # the routine is kept apart:
    assert notes == {"resampled": 122, "header quirk": 3}
    # the two 2020-release Georgia headers whose gain (4880/mV) shrinks the signal, and five Ningbo
    # records with leads off
    assert sorted(untrusted) == ["E00015", "E00018", "JS20004", "JS20008", "JS45542", "JS45544", "JS45551"]


def test_the_georgia_2020_header_reads_the_2021_data(shared_samples):
    rec = read_ecg(shared_samples / "georgia" / "E00793.hea", 500)
    assert rec.signal.shape == (12, 5000) and "header quirk" in rec.notes[0]
    assert LEADS[0] == "I"


@pytest.mark.parametrize("median_mv, flagged", [(0.2, True), (0.5, False), (11.0, False), (13.0, True), (1000.0, True)])
def test_median_lead_range_bounds(median_mv, flagged):
    """Both ends of the plausible median lead range (0.3–12 mV) are checked: above 12 mV is the µV-labelled-
    as-mV error (×1000), below 0.3 mV a gain too high; lead ranges differ so no other warning fires."""
    from ecgnet.data.records import amplitude_problems

    t = np.linspace(0, 10, 1000)
    scales = np.linspace(0.6, 1.4, 12)[:, None] * median_mv  # median of the ranges = median_mv
    signal = scales * (np.sin(2 * np.pi * 1.2 * t) / 2)[None]
    problems = amplitude_problems(signal)
    assert any("median lead range" in p for p in problems) is flagged, problems
    assert all("median lead range" in p for p in problems)


def test_a_dotted_record_name_reads_its_own_header(tmp_path):
    """header_path('rec.copy.hea') was 'rec.hea': with both present the other record was read and diagnosed in
    silence (a renamed copy of a header, found in a WFDB audit)."""
    import shutil

    from ecgnet.data.readers import detect, read_ecg_any

    write_challenge(tmp_path, name="rec", seed=1)
    _, other = write_challenge(tmp_path, name="other", seed=2)
    shutil.copy(tmp_path / "other.hea", tmp_path / "rec.copy.hea")  # describes other.mat
    for given in ("rec.copy.hea", "rec.copy"):
        assert detect(tmp_path / given) == "wfdb"
        rec = read_ecg_any(tmp_path / given, 500)
        assert rec.path == tmp_path / "rec.copy.hea"
        np.testing.assert_allclose(rec.signal, other / 1000, atol=1e-6)


def test_several_samples_per_frame_are_read_as_wfdb_reads_them(tmp_path):
    """A record with two samples per frame on the chest leads ('16x2', written by wfdb) was refused as corrupt:
    its checksums were compared with those of the frame-averaged samples (found in a WFDB audit); then it was read
    twice (once averaged, once to check every sample)."""
    import wfdb

    fs, n = 500, 5000
    t = np.arange(2 * n) / (2 * fs)
    fine = np.stack([(0.3 + 0.1 * k) * np.exp(-((t % 0.8) - 0.4) ** 2 / 0.0005) for k in range(12)], axis=1)
    lanes = [fine[::2, k] for k in range(6)] + [fine[:, k] for k in range(6, 12)]
    rec = wfdb.Record(record_name="spf2", n_sig=12, fs=fs, sig_len=n, e_p_signal=lanes, file_name=["spf2.dat"] * 12,
                      fmt=["16"] * 12, samps_per_frame=[1] * 6 + [2] * 6, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                      units=["mV"] * 12, sig_name=["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"])
    rec.set_d_features(do_adc=True, expanded=True)
    rec.set_defaults()
    rec.wrsamp(expanded=True, write_dir=str(tmp_path))
    reads = []
    original = wfdb.rdrecord
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(wfdb, "rdrecord", lambda *a, **k: reads.append(a) or original(*a, **k))
        ours = read_ecg(tmp_path / "spf2.hea", fs)
    assert len(reads) == 1  # the samples are read once: checksums over every sample, then averaged per frame
    np.testing.assert_allclose(ours.signal, wfdb.rdrecord(str(tmp_path / "spf2")).p_signal.T, atol=1e-6)
    assert ours.signal.shape == (12, n) and any("V1 (2×)" in note and "averaged per frame" in note for note in ours.notes)
    data = bytearray((tmp_path / "spf2.dat").read_bytes())  # a damaged sample of V6 is still caught
    data[-2] ^= 0x40
    (tmp_path / "spf2.dat").write_bytes(bytes(data))
    with pytest.raises(ECGNetError, match="does not match the header's checksums"):
        read_ecg(tmp_path / "spf2.hea", fs)


def test_a_skewed_signal_is_refused_by_name(tmp_path):
    """A skewed signal (format '16:3') was refused as 'corrupt' or 'contains NaN' (wfdb aligns it and leaves its
    last samples invalid): it is named instead."""
    path, _ = write_challenge(tmp_path)
    lines = path.read_text().splitlines()
    lines[7] = lines[7].replace(" 16+24 ", " 16:3+24 ", 1)  # V1
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ECGNetError, match=r"skewed signal\(s\) V1 .* are not read"):
        read_ecg(path, 500)


def test_ages_from_birth_dates_as_files_write_them():
    """DICOM/HL7 'YYYYMMDD' with a time ('20200501T103000', '20240102101112.000') gave no age (found in review)."""
    from datetime import date

    from ecgnet.data.patient import age_on

    assert age_on("19610520", "20200501T103000") == 58 and age_on("1961-05-20", "20210520") == 60
    assert age_on("19580710", "20240102101112.000") == 65 and age_on(date(1950, 6, 1), date(2020, 5, 31)) == 69
    assert age_on("1961", "2020") is None and age_on("", "20200101") is None and age_on("x", "y") is None


def test_a_stated_age_the_files_own_dates_contradict_is_a_warning():
    """A real MUSE export states 66 where its birth and acquisition dates give 59, the HL7 example 46 for 49: the
    stated age is what a model reads, so the disagreement is said; a birthday's year of rounding and a '>89'
    age are not disagreements."""
    from ecgnet.data.patient import stated_age_warning

    muse = {"birth_date": "03-21-1941", "acquired": "04-22-2000 11:34:00"}  # GE's MM-DD-YYYY
    assert "states age 66, but its birth and acquisition dates give 59" in stated_age_warning(66, muse, "muse-xml")
    assert stated_age_warning(59, muse, "muse-xml") is None and stated_age_warning(60, muse, "muse-xml") is None
    assert stated_age_warning(66, muse, "dicom") is None  # MM-DD-YYYY read only where GE writes it
    hl7 = {"birth_date": "19530508", "acquired": "20021122091000"}
    assert "give 49" in stated_age_warning(46, hl7) and stated_age_warning(90, {"birth_date": "19200101",
                                                                                "acquired": "20150101"}) is None
    assert stated_age_warning(None, hl7) is None and stated_age_warning(46, {"birth_date": "1953"}) is None


def _wfdb_written(folder: Path, name: str = "w0") -> tuple[Path, np.ndarray]:
    """A 12-lead record written by wfdb (checksums and all), with a base time after its length → (header,
    the signal wfdb reads back)."""
    import datetime

    import wfdb

    x = np.random.default_rng(3).normal(0, 0.3, (1000, 12))
    wfdb.wrsamp(name, fs=100, units=["mV"] * 12, sig_name=list(NAMES), p_signal=x, fmt=["16"] * 12,
                write_dir=str(folder), base_time=datetime.time(10, 30))
    return folder / f"{name}.hea", wfdb.rdrecord(str(folder / name)).p_signal.T


def _header_fields(path: Path, length: str | None = None, checksum: str | None = None) -> None:
    lines = path.read_text().splitlines()
    if length is not None:
        record = lines[0].split()
        lines[0] = " ".join(record[:3] + [length] + record[4:])
    if checksum is not None:
        lines[1:] = [" ".join(f[:6] + [checksum] + f[7:]) for f in (ln.split() for ln in lines[1:])]
    path.write_text("\n".join(lines) + "\n")


def test_a_header_giving_0_samples_reads_what_its_files_hold(tmp_path):
    """header(5): a length of 0 is 'unspecified' and turns checksum verification off; wfdb cannot read it
    ('sampto must be greater than sampfrom') and neither could we (found in a WFDB audit)."""
    path, x = _wfdb_written(tmp_path)
    _header_fields(path, length="0", checksum="0")
    assert "10:30:00" in path.read_text()  # the base time after the length stays
    rec = read_ecg(path, 100)
    np.testing.assert_allclose(rec.signal, x, atol=1e-6)
    assert any("gives 0 samples (unspecified): read the 1000" in n and "not verified" in n for n in rec.notes)
    (tmp_path / "w0.dat").write_bytes(b"")  # and nothing to read is refused as such
    with pytest.raises(ECGNetError, match=r"w0\.hea: .*its signal files hold no samples"):
        read_ecg(path, 100)


def test_checksums_all_0_are_not_computed_ones_but_one_wrong_checksum_is_corruption(tmp_path):
    """A writer that fills every checksum field with 0 was refused as 'corrupt': read, with a note; a damaged
    file whose header has its checksums is still refused."""
    path, x = _wfdb_written(tmp_path)
    _header_fields(path, checksum="0")
    rec = read_ecg(path, 100)
    np.testing.assert_allclose(rec.signal, x, atol=1e-6)
    assert any("checksums are all 0" in n for n in rec.notes)
    good, _ = _wfdb_written(tmp_path, "w1")
    lines = good.read_text().splitlines()
    fields = lines[3].split()
    lines[3] = " ".join(fields[:6] + ["0"] + fields[7:])  # one checksum 0 (lead III), the others right
    good.write_text("\n".join(lines) + "\n")
    with pytest.raises(ECGNetError, match="does not match the header's checksums"):
        read_ecg(good, 100)


def test_a_header_giving_0_samples_reads_signal_files_named_otherwise(tmp_path):
    """The header was rewritten beside links to the files named like the record only: a FLAC record as wfdb
    writes it (fl_1.dat, fl_2.dat beside fl.hea) gave 'FileNotFoundError: /tmp/tmp…/fl_1.dat' (found in review)."""
    import hostile

    header = hostile.flac_record(tmp_path, "fl", 100, 10, declared=0)
    rec = read_ecg(header, 100)
    assert rec.signal.shape == (12, 1000) and any("gives 0 samples" in n for n in rec.notes)
    (tmp_path / "fl_2.dat").unlink()
    with pytest.raises(ECGNetError) as e:
        read_ecg(header, 100)
    assert "/tmp/tmp" not in str(e.value).replace(str(tmp_path), "") and "fl_2.dat" in str(e.value)


@pytest.mark.parametrize("fmt, samples", [("212", 1001), ("212", 1000), ("24", 1000), ("32", 1000), ("80", 1000)])
def test_other_wfdb_sample_formats_read_as_wfdb_reads_them(tmp_path, fmt, samples):
    """Every shared record is format 16: a wrong byte count for another format in the header check would
    refuse each valid MIT-format record as 'truncated' unnoticed. Each is written by wfdb and read as its own
    rdrecord reads it (212 with an odd length: the last byte pair is half used)."""
    import wfdb

    rng = np.random.default_rng(1)
    gain = 50.0 if fmt == "80" else 200.0  # 8 bits: a coarse step, so that 2 mV fits
    digital = np.clip(np.round(rng.normal(0, 0.4, (samples, 12)) * gain), -100, 100).astype(int)
    wfdb.wrsamp(f"f{fmt}", fs=100, units=["mV"] * 12, sig_name=list(LEADS), d_signal=digital, fmt=[fmt] * 12,
                adc_gain=[gain] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    header = tmp_path / f"f{fmt}.hea"
    expected = wfdb.rdrecord(str(header.with_suffix(""))).p_signal.T
    record = read_ecg(header, 100)
    np.testing.assert_allclose(record.signal, expected, atol=1e-6)


def test_a_record_exactly_at_the_read_limits_is_read(tmp_path):
    """The limits are maxima: a 10 s, 12-lead, 12,000-value record is read under limits of exactly that,
    and refused one step below each."""
    from ecgnet.data.limits import ReadLimits
    from conftest import write_wfdb

    header, _ = write_wfdb(tmp_path, "edge", fs=100)
    assert read_ecg(header, 100, limits=ReadLimits(max_seconds=10, max_signals=12, max_values=12_000)).signal.shape \
        == (12, 1000)
    for tight, field in ((dict(max_seconds=9.99), "max_seconds"), (dict(max_signals=11), "max_signals"),
                         (dict(max_values=11_999), "max_values")):
        with pytest.raises(ECGNetError, match=field):
            read_ecg(header, 100, limits=ReadLimits(**tight))


def test_a_one_sample_record_is_refused_before_resampling(tmp_path):
    """The line through a lead's ends needs two samples: one sample resampled gave NaN and the message 'beyond
    float32's range … a wrong gain?' (found in review)."""
    import wfdb

    wfdb.wrsamp("one", fs=500, units=["mV"] * 12, sig_name=list(NAMES), p_signal=np.full((1, 12), 0.1),
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    with pytest.raises(ECGNetError, match=r"one.hea: 1 sample\(s\) per lead: too short to resample"):
        read_ecg(tmp_path / "one.hea", 100, resample=True, quality=False)


def test_a_records_fingerprint_follows_its_signal_bytes_not_its_name(tmp_path):
    """What RUN/trained_on.txt keeps beside each path: the same ECG moved elsewhere has the same fingerprint, a
    changed sample another one; a single-file format is its file's bytes; a missing record has none."""
    from conftest import write_wfdb

    from ecgnet.data.fingerprints import fingerprint, signal_size

    write_wfdb(tmp_path, "r0")
    first = fingerprint(tmp_path / "r0.hea")
    assert len(first) == 64 and fingerprint(tmp_path / "r0") == first  # the record name names the same record
    (tmp_path / "moved").mkdir()
    for f in tmp_path.glob("r0.*"):
        (tmp_path / "moved" / f.name).write_bytes(f.read_bytes())
    assert fingerprint(tmp_path / "moved" / "r0.hea") == first
    data = bytearray((tmp_path / "moved" / "r0.dat").read_bytes())
    data[100] ^= 1
    (tmp_path / "moved" / "r0.dat").write_bytes(bytes(data))
    assert fingerprint(tmp_path / "moved" / "r0.hea") != first
    (tmp_path / "ecg.xml").write_text("<RestingECG/>")
    (tmp_path / "moved" / "copy.xml").write_text("<RestingECG/>")  # a single-file record, copied under a new name
    assert fingerprint(tmp_path / "ecg.xml") == fingerprint(tmp_path / "moved" / "copy.xml") is not None
    (tmp_path / "moved" / "copy.xml").write_text("<RestingECG />")
    assert fingerprint(tmp_path / "ecg.xml") != fingerprint(tmp_path / "moved" / "copy.xml")  # rewritten: recomputed
    assert signal_size(tmp_path / "r0.hea") == (tmp_path / "r0.dat").stat().st_size  # the signal, not the header
    assert fingerprint(tmp_path / "gone.hea") is None and fingerprint(tmp_path / "gone.xml") is None


def test_trained_on_lists_of_every_age_are_read(tmp_path):
    """RUN/trained_on.txt as runs wrote it over time — paths; path and fingerprint; path, size and fingerprint —
    matches a record by path, or by fingerprint where its size is a trained one (an unsized list: any size)."""
    from conftest import write_wfdb

    from ecgnet.data.fingerprints import fingerprint, signal_size
    from ecgnet.evaluation.labelled import trained_on_matcher

    write_wfdb(tmp_path / "a", "r0")
    write_wfdb(tmp_path / "b", "r0")  # the same bytes elsewhere
    write_wfdb(tmp_path / "c", "r0", seed=1)  # another ECG of the same size
    a, b, c = (str((tmp_path / d / "r0.hea").resolve()) for d in "abc")
    listed = tmp_path / "trained_on.txt"
    for text in (f"{a}\n", f"{a}\t{fingerprint(a)}\n", f"{a}\t{signal_size(a)}\t{fingerprint(a)}\n"):
        listed.write_text(text)
        trained = trained_on_matcher(listed)
        assert trained(a) and not trained(c) and trained(b) == ("\t" in text), text

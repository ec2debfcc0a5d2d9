"""Per-lead quality flags (ecgnet.data.quality): each flag fires on a real PTB-XL record given that defect,
in that lead only, at 100 and 500 Hz; clean records get none; the flag rates on fold 10 stay in the band
measured by reports/quality (bounds.py); PTB-XL's free-text lead lists parse as documented."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ecgnet.data import quality as Q
from ecgnet.data.leads import display
from ecgnet.data.records import LEADS, ECGRecord, read_ecg, read_record, resample_signal

ROOT = Path(__file__).resolve().parents[1]
ANNOTATIONS = ["baseline_drift", "static_noise", "burst_noise", "electrodes_problems"]


@pytest.fixture(scope="module")
def fold10(ptbxl_root):
    """(database rows of fold 10, their signals at 100 Hz) from the signal cache."""
    from ecgnet.data.ptbxl import read_database
    from ecgnet.data.signals import load_signals

    db = read_database(ptbxl_root)
    ids, signals = load_signals(ptbxl_root, db["filename_lr"].to_dict())
    db = db.loc[ids]
    test = (db["strat_fold"] == 10).to_numpy()
    return db[test], np.asarray(signals[test], dtype=np.float64)


@pytest.fixture(scope="module")
def clean(fold10):
    """The first 8 fold-10 records without any quality annotation."""
    db, x = fold10
    keep = np.flatnonzero(db[ANNOTATIONS].isna().all(axis=1).to_numpy())[:8]
    return x[keep]


def flagged(signal, rate):
    return {q.lead: q.flags for q in Q.lead_quality(signal, rate, LEADS) if q.flags}


def test_clean_records_have_no_flags(clean):
    for x in clean:
        assert flagged(x, 100) == {}
        assert flagged(resample_signal(x, 100, 500), 500) == {}  # the bounds hold at the source rates devices use


def defect(x: np.ndarray, rate: float, kind: str) -> tuple[np.ndarray, str]:
    """``x`` with one defect in one lead → (signal, the lead's name)."""
    x = x.copy()
    t = np.arange(x.shape[-1]) / rate
    rng = np.random.default_rng(0)
    if kind == "flat":  # 3 s of a lead stuck at one value
        x[7, int(3 * rate):int(6 * rate)] = x[7, int(3 * rate)]
        return x, "V2"
    if kind == "saturated":  # lead II pushed against the amplifier's rail: clipped at its 80th percentile
        x[1] = np.minimum(x[1], np.percentile(x[1], 80))
        return x, "II"
    if kind == "disconnected":
        x[6] = 0.0
        return x, "V1"
    if kind == "noise":  # 0.15 mV RMS broadband noise (EMG-like)
        x[8] += rng.normal(0, 0.15, x.shape[-1])
        return x, "V3"
    if kind == "wander":  # a 0.2 Hz swing of 3 mV peak to peak
        x[9] += 1.5 * np.sin(2 * np.pi * 0.2 * t)
        return x, "V4"
    raise ValueError(kind)


@pytest.mark.parametrize("rate", [100, 500])
@pytest.mark.parametrize("kind", ["flat", "saturated", "disconnected", "noise", "wander"])
def test_each_flag_fires_on_its_defect_in_its_lead_only(clean, kind, rate):
    x = clean[0] if rate == 100 else resample_signal(clean[0], 100, rate)
    bad, lead = defect(x, rate, kind)
    assert flagged(bad, rate) == {lead: (kind,)}


def test_disconnected_replaces_flat_and_a_record_carries_its_quality(clean):
    x = clean[1].astype(np.float32)
    x[0] = 0.0
    record = ECGRecord(Path("x"), x, 100.0, 100.0)  # measured on construction when not given
    assert [q.lead for q in record.quality if q.flags] == ["I"]
    assert record.quality[0].flags == ("disconnected",)
    assert Q.summary(record.quality) == [
        f"disconnected (lead off): I (flat or at the rail ≥ {Q.DISCONNECTED_FRACTION:.0%} of the record)"]
    assert record.quality[0].to_dict()["flags"] == ["disconnected"]


def test_read_ecg_measures_the_signal_as_recorded(ptbxl_root):
    record = read_ecg(ptbxl_root / "records100" / "00000" / "00001_lr")
    assert [q.lead for q in record.quality] == list(LEADS)
    assert all(q.flags == () for q in record.quality)


def test_the_signal_caches_reader_skips_the_flags(write_record):
    """read_record (behind the PTB-XL and manifest caches) keeps only the signal: no flags are measured."""
    path, _ = write_record()
    assert read_ecg(path, quality=False).quality == [] and len(read_ecg(path).quality) == 12
    np.testing.assert_array_equal(read_record(path), read_ecg(path).signal)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        Q.lead_quality(np.zeros((3, 1000)), 100, LEADS)
    with pytest.raises(ValueError):
        Q.measure(np.zeros((12, 1)), 100)


def test_flag_rates_on_fold10_stay_in_the_measured_band(fold10):
    """reports/quality/agreement.md: 41 of 2,203 fold-10 records flagged for noise (1.9 %), 146 for wander
    (6.6 %), 188 for any flag (8.5 %); a change of the measurements or bounds that moves these fails here."""
    _, x = fold10
    flags = Q.flags_from(Q.measure(x, 100))  # (records, 12, FLAGS)
    per_record = flags.any(1).sum(0)
    counts = dict(zip(Q.FLAGS, per_record.tolist()))
    assert len(x) == 2203
    assert 30 <= counts["noise"] <= 55
    assert 120 <= counts["wander"] <= 175
    assert counts["saturated"] <= 10 and counts["disconnected"] <= 5 and counts["flat"] <= 10
    assert 160 <= int(flags.any((1, 2)).sum()) <= 225


def test_ptbxl_lead_lists_parse():
    spec = importlib.util.spec_from_file_location("bounds", ROOT / "reports" / "quality" / "bounds.py")
    bounds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bounds)
    names = lambda text: [LEADS[i] for i in np.flatnonzero(bounds.annotated_leads(text))]  # noqa: E731
    assert names(" , I-AVF,  ") == ["I", "II", "III", "AVR", "AVL", "AVF"]
    assert names(" , V5,V6") == ["V5", "V6"]
    assert names("v5-6") == ["V5", "V6"]
    assert names(" , alles,  ") == list(LEADS)
    assert names("I - AVF") == ["I", "II", "III", "AVR", "AVL", "AVF"]
    assert names("Kontaktprobleme aVL ???") == ["AVL"]
    assert names("V3,V4-V6") == ["V3", "V4", "V5", "V6"]
    assert bounds.annotated_leads(" , leicht,  ") is None
    assert bounds.annotated_leads(float("nan")) is None


FORMATS_DIR = ROOT.parent / "shared" / "external" / "formats"


@pytest.mark.skipif(not FORMATS_DIR.is_dir(), reason="needs ../shared/external/formats")
def test_real_device_files_are_measured_at_their_source_rate_and_unflagged():
    """Six real files from five vendors' carts (250–1,000 Hz): none crosses a bound (reports/quality/README.md
    lists their measurements; the MUSE file's own 'BASELINE ARTIFACT' statement is not matched)."""
    from ecgnet.data.readers import read_ecg_any

    files = sorted(p for p in FORMATS_DIR.glob("*/*") if p.suffix.lower() != ".md")
    assert len(files) == 6
    for path in files:
        record = read_ecg_any(path, 100, resample=True)
        assert record.source_rate in (240, 500, 1000)
        assert [q.lead for q in record.quality] == list(LEADS)
        assert [q.flags for q in record.quality] == [()] * 12, path.name


def test_predict_gives_the_quality_of_every_lead_in_json_and_flags_in_text(clean, tmp_path):
    """`ecgnet predict` (bundled default model) on a real record with a noisy V3, written as WFDB."""
    import json

    import wfdb
    from typer.testing import CliRunner

    from ecgnet.cli import app

    x, _ = defect(clean[2], 100, "noise")
    wfdb.wrsamp("noisy", fs=100, units=["mV"] * 12, sig_name=list(LEADS), p_signal=x.T, fmt=["16"] * 12,
                adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(tmp_path / "noisy.hea"), "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    [out] = json.loads(res.stdout)
    assert [q["lead"] for q in out["quality"]] == out["leads"] == [display(lead) for lead in LEADS]  # aVR, as `leads`
    assert {q["lead"]: q["flags"] for q in out["quality"] if q["flags"]} == {"V3": ["noise"]}
    assert out["quality"][8]["noise_mv"] > Q.NOISE_MV > out["quality"][7]["noise_mv"]
    text = runner.invoke(app, ["predict", str(tmp_path / "noisy.hea"), "--no-progress"]).stdout
    assert "quality: V3 noise" in text

"""The same recording in three formats: PTB-XL fold-10 records (WFDB, 100 Hz) rewritten as EDF+ by pyedflib
and as DICOM 12-lead waveforms by pydicom (tests/ecg_writers.py, independent of ecgnet's readers), each read
back with ecgnet.data.readers.read_ecg_any and diagnosed by the bundled default model; and the six real
device files of ../shared/external/formats with ECGNet's positives beside the device's own statements.

Prints and writes reports/formats/parity.md (with the command, model and git revision). Deterministic:
the first ``--records`` fold-10 records by ecg_id.

    ECGNET_DATA=... .venv/bin/python -m reports.formats.parity --records 200
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ecgnet.data.ptbxl import TEST_FOLD, data_root, read_database
from ecgnet.data.readers import read_ecg_any
from ecgnet.data.records import read_ecg
from ecgnet.inference.predictor import Predictor
from ecgnet.runs.bundled import DEFAULT_MODEL
from tests.ecg_writers import write_dicom, write_edf_pyedflib  # the independent writers the tests use

HERE = Path(__file__).resolve().parent
FORMATS_DIR = HERE.parents[2] / "shared" / "external" / "formats"


def probabilities(result: dict) -> np.ndarray:
    return np.array([d["probability"] for d in sorted(result["diagnoses"], key=lambda d: d["class"])])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    args = parser.parse_args(argv)
    root = data_root()
    db = read_database(root)
    ids = sorted(db.index[db.strat_fold == TEST_FOLD])[: args.records]
    predictor = Predictor(DEFAULT_MODEL)
    diffs = {"edf": [], "dicom": []}
    flips = {"edf": 0, "dicom": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for ecg_id in ids:
            header = root / f"{db.loc[ecg_id, 'filename_lr']}.hea"
            wfdb_rec = read_ecg(header, predictor.rate)
            ref = predictor.predict_record(wfdb_rec)
            x = wfdb_rec.signal.astype(np.float64)
            files = {"edf": write_edf_pyedflib(Path(tmp) / f"{ecg_id}.edf", x, fs=100),
                     "dicom": write_dicom(Path(tmp) / f"{ecg_id}.dcm", x, fs=100, uv_per_unit=1.0)}
            for fmt, path in files.items():
                out = predictor.predict_record(read_ecg_any(path, predictor.rate))
                diffs[fmt].append(float(np.abs(probabilities(out) - probabilities(ref)).max()))
                flips[fmt] += out["positives"] != ref["positives"]
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = ["# The same recording in different formats", "",
             f"Command: `python -m reports.formats.parity --records {args.records}` · model `{DEFAULT_MODEL}` "
             f"(bundled) · git {revision} · deterministic (no seed: the first {len(ids)} fold-10 records by ecg_id).", "",
             "PTB-XL fold-10 records (WFDB, 100 Hz) rewritten by independent writers, read back by "
             "`read_ecg_any`, diagnosed; |Δp| = the largest difference in any class's probability from the WFDB "
             "reading.", "",
             "| written as | by | records | max \\|Δp\\| | mean of per-record max \\|Δp\\| | records whose positives change |",
             "|---|---|---|---|---|---|"]
    for fmt, by in (("edf", "pyedflib (EDF+, 16 bit over ±10 mV)"), ("dicom", "pydicom (12-lead ECG, 1 µV/unit)")):
        d = np.array(diffs[fmt])
        lines.append(f"| {fmt} | {by} | {len(d)} | {d.max():.4f} | {d.mean():.5f} | {flips[fmt]} |")
    lines += ["", "## The real device files", "",
              "ECGNet's positives (bundled default, `--resample`) beside the device's own statements (not a model "
              "input). These files carry no labels: this shows reading, not accuracy.", "",
              "| file | format | derived leads | ECGNet positives | device statements |", "|---|---|---|---|---|"]
    for path in sorted(p for p in FORMATS_DIR.rglob("*") if p.is_file() and p.name != "README.md"):
        rec = read_ecg_any(path, predictor.rate, resample=True)
        out = predictor.predict_record(rec)
        pos = ", ".join(f"{c} {next(d['probability'] for d in out['diagnoses'] if d['class'] == c):.2f}"
                        for c in out["positives"]) or "none"
        lines.append(f"| `{path.relative_to(FORMATS_DIR)}` | {rec.format} | {', '.join(rec.derived_leads) or '–'} | "
                     f"{pos} | {' · '.join(rec.statements).replace('|', '/') or '–'} |")
    text = "\n".join(lines) + "\n"
    (HERE / "parity.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

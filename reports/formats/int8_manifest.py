"""int8 calibrated on a manifest instead of PTB-XL's own draw: how far each int8 model is from fp32 on fold-10
records (docs/export.md quotes the output). The manifest holds 300 PTB-XL training-fold records (seed 0), so the
two calibrations see the same kind of ECG and only the path differs. Needs ECGNET_DATA.

    python -m reports.formats.int8_manifest baseline_time intermediate_concat_weighted_bce late_stacking_time_spectrogram
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ecgnet.data.dataset import PTBXL
from ecgnet.export import export
from ecgnet.inference.engines import OnnxModel
from ecgnet.models.windows import windowed_proba

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="committed runs (names under runs/)")
    parser.add_argument("--records", type=int, default=100, help="fold-10 records scored (a seeded sample)")
    args = parser.parse_args()
    root = Path(os.environ["ECGNET_DATA"])
    db = pd.read_csv(root / "ptbxl_database.csv", index_col="ecg_id")
    train = db[db.strat_fold <= 8].sample(300, random_state=0)
    test = PTBXL(root, "superdiagnostic", 100).split("test", max_records=args.records, seed=0)
    signal, metadata = torch.as_tensor(np.asarray(test.signal)), torch.as_tensor(np.asarray(test.metadata))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        manifest = out / "ptbxl_train.csv"
        pd.DataFrame({"record": [str(root / f) for f in train.filename_lr],
                      "age": train.age.where(train.age < 300, 90),
                      "sex": train.sex.map({0: "male", 1: "female"})}).to_csv(manifest, index=False)
        print(f"{len(test.ecg_ids)} fold-10 records (seed 0); manifest of 300 training-fold records (seed 0)")
        for run in args.runs:
            run_dir = REPO / "runs" / run
            fp32 = OnnxModel(export(run_dir, out=out / f"{run}.onnx"))
            pre = fp32.preprocessing
            how = (pre["window"], pre["stride"], pre["aggregate"])
            p32 = windowed_proba(fp32, signal, metadata, *how).numpy()
            for name, kwargs in (("PTB-XL", {"data": root}), ("manifest", {"calibration_manifest": manifest})):
                int8 = export(run_dir, out=out / f"{run}.{name}.int8.onnx", quantize="int8", **kwargs)
                dp = np.abs(windowed_proba(OnnxModel(int8), signal, metadata, *how).numpy() - p32)
                print(f"{run} calibrated on {name}: mean |dp| {dp.mean():.4f}, p99 {np.quantile(dp, .99):.3f}, "
                      f"max {dp.max():.3f}", flush=True)


if __name__ == "__main__":
    main()

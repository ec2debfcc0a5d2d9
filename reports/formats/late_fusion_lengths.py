"""Late-fusion ONNX graphs on segments shorter than 10 s: the largest |Δp| between ONNX Runtime and torch on
fold-10 records, whole and cut to their first 5 s (docs/export.md quotes the output). Needs ECGNET_DATA.

    python -m reports.formats.late_fusion_lengths runs/late_stacking_time_spectrogram ensemble_greedy runs/late_average
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ecgnet.data.dataset import PTBXL
from ecgnet.data.ptbxl import data_root
from ecgnet.inference.predictor import Predictor
from ecgnet.models.windows import windowed_proba


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="late-fusion runs (directories or bundled names)")
    parser.add_argument("--records", type=int, default=200, help="fold-10 records (a seeded sample)")
    args = parser.parse_args()
    fold10 = PTBXL(data_root(None), "superdiagnostic", 100).split("test", max_records=args.records, seed=0)
    x, m = torch.as_tensor(np.asarray(fold10.signal)), torch.as_tensor(np.asarray(fold10.metadata))
    print(f"{len(x)} fold-10 records (seed 0)")
    for run in args.runs:
        engines = [Predictor(run, engine=e).engine for e in ("torch", "onnx")]
        for seconds in (10, 5):
            p = [windowed_proba(e, x[..., :seconds * 100], m, 250, 125) for e in engines]
            print(run, f"{seconds} s", f"max |dp| {(p[0] - p[1]).abs().max():.2e}")


if __name__ == "__main__":
    main()

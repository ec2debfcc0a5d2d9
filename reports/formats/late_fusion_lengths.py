"""Late-fusion ONNX graphs at other lengths than 10 s: the largest |Δp| between ONNX Runtime and torch on fold-10
records whole (10 s), cut to their first 5 s, and joined end to end into records of 20 s and 60 s (consecutive
records of the sample), each scored as one segment, as ``predict --long-records windows`` scores a long record
(docs/export.md quotes the output). Needs ECGNET_DATA.

    python -m reports.formats.late_fusion_lengths runs/late_stacking_time_spectrogram ensemble_greedy \
        runs/all_late_stacking runs/late_average
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ecgnet.data.dataset import PTBXL
from ecgnet.data.ptbxl import data_root
from ecgnet.data.signals import SECONDS
from ecgnet.inference.predictor import Predictor
from ecgnet.models.windows import windowed_proba

LENGTHS = (5, 10, 20, 60)  # seconds


def records_of(x: torch.Tensor, m: torch.Tensor, seconds: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 10 s records ``x`` cut to ``seconds``, or joined k = seconds / 10 at a time (each joined record keeps
    its first record's metadata)."""
    if seconds <= SECONDS:
        return x[..., :seconds * x.shape[-1] // SECONDS], m
    k = seconds // SECONDS
    n = len(x) // k * k
    joined = x[:n].reshape(n // k, k, *x.shape[1:]).permute(0, 2, 1, 3).reshape(n // k, x.shape[1], -1)
    return joined, m[:n:k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="late-fusion runs (directories or bundled names)")
    parser.add_argument("--records", type=int, default=200, help="fold-10 records (a seeded sample)")
    args = parser.parse_args()
    fold10 = PTBXL(data_root(None), "superdiagnostic", 100).split("test", max_records=args.records, seed=0)
    x, m = torch.as_tensor(np.asarray(fold10.signal)), torch.as_tensor(np.asarray(fold10.metadata))
    print(f"{len(x)} fold-10 records (seed 0); 20 s and 60 s: 2 and 6 of them joined")
    for run in args.runs:
        engines = [Predictor(run, engine=e).engine for e in ("torch", "onnx")]
        for seconds in LENGTHS:
            signal, metadata = records_of(x, m, seconds)
            p = [torch.cat([windowed_proba(e, signal[i:i + 32], metadata[i:i + 32], 250, 125)
                            for i in range(0, len(signal), 32)]) for e in engines]
            print(run, f"{seconds} s ({len(signal)} records)", f"max |dp| {(p[0] - p[1]).abs().max():.2e}", flush=True)


if __name__ == "__main__":
    main()

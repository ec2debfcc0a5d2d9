"""PTB-XL as a collection trains as native PTB-XL does: the baseline config (configs/baseline_time.yaml)
trained twice with the same seed — through the native PTB-XL path and through the PTB-XL collection
(what a PTB-XL manifest is, row for row: tests/test_manifest.py) — and scored on the whole of folds 9
and 10. On 2 shared CPU cores the full 20-epoch training (≈ 32 min each) did not fit the session: the
figure is for ``--records`` training records and ``--epochs`` epochs (say so wherever it is quoted).

    nice -n 5 .venv/bin/python -m reports.own_data.parity --records 2000 --epochs 5
"""

from __future__ import annotations

import argparse

from ecgnet.config import load_config
from ecgnet.data.collections import CollectionData, ptbxl_assignment, ptbxl_collection
from ecgnet.data.ptbxl import data_root
from ecgnet.training.fit import train

from reports.own_data.common import REPO, RUNS, THREADS, provenance_block, save


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=5)
    args = p.parse_args()
    overrides = [f"data.max_train_records={args.records}", f"training.epochs={args.epochs}",
                 f"training.threads={THREADS}"]
    config = load_config(REPO / "configs" / "baseline_time.yaml", overrides)
    root = data_root(None)
    _, native = train(config, root, RUNS / "parity_native", progress=False, n_boot=200)
    c = ptbxl_collection(root, config.data.task).load_signals(config.data.sampling_rate, progress=False)
    _, via = train(config, None, RUNS / "parity_collection", progress=False, n_boot=200,
                   data=CollectionData(c, ptbxl_assignment(c.folds)))
    out = {**provenance_block(config.seed), "config": "configs/baseline_time.yaml", "overrides": overrides,
           **{f"{path}_{split}_macro_auc": r[split]["macro_auc"]["value"] for path, r in (("native", native), ("collection", via))
              for split in ("val", "test")}}
    out["test_difference"] = out["collection_test_macro_auc"] - out["native_test_macro_auc"]
    save("parity.json", out)
    print(out)


if __name__ == "__main__":
    main()

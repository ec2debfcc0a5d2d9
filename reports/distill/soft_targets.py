"""What a teacher's cached soft targets say on fold 9: that they are the teacher's predictions, and how far
a crop's window target is from the record target.

* parity: the record targets (each member's window maximum, members combined) against the teacher run's
  committed ``val/predictions.csv`` — max |Δp| and both macro AUCs;
* window vs record: for the positive (record, class) pairs, the mean record target and the mean window
  target over the 7 windows — how much lower a random crop's target is when the finding is not in every
  window; and the macro AUC of a single window's target (the middle one) against the record's.

    ECGNET_DATA=... .venv/bin/python -m reports.distill.soft_targets runs/all_late_stacking [CACHE_FOLDER]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgnet.data.ptbxl import data_root, make_labels, read_database, read_statements
from ecgnet.data.signals import cache_dir
from ecgnet.distill.teacher import SoftTargets, cache_path
from ecgnet.evaluation import metrics as M
from ecgnet.runs import provenance
from reports import usage


def main(run: str, folder: str | None = None) -> None:
    run_dir = Path(run)
    folder = Path(folder) if folder else cache_path(run_dir, cache_dir())
    targets = SoftTargets.load(folder)
    import yaml

    task = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["task"]
    labels = make_labels(read_database(data_root(None)), read_statements(data_root(None)), task)
    val_ids = labels.ecg_ids[labels.split("val")]
    y = labels.y[labels.split("val")]
    rows = targets.rows(val_ids)
    record, windows = targets.record()[rows], targets.windows()[rows]
    ids, committed, _ = M.read_predictions(run_dir / "val" / "predictions.csv", labels.classes)
    assert np.array_equal(ids, val_ids)
    pos = y == 1
    print(f"# Soft targets of `{run_dir.name}` on fold 9 ({len(val_ids):,} records, {len(labels.classes)} classes)\n")
    print(f"Revision {provenance()['git_revision'][:7]}; cache `{folder.name}` (weights digest "
          f"{targets.weights_sha256[:12]}); command `python -m reports.distill.soft_targets {run}`.\n")
    print("| figure | value |\n|---|---|")
    print(f"| max \\|record target − committed fold-9 prediction\\| | {np.abs(record - committed).max():.2e} |")
    print(f"| macro AUC of the record targets / of the committed predictions | "
          f"{M.macro_auc(y, record):.4f} / {M.macro_auc(y, committed):.4f} |")
    print(f"| mean record target on positives | {record[pos].mean():.3f} |")
    print(f"| mean window target on positives (7 windows) | {windows.transpose(0, 2, 1)[pos].mean():.3f} |")
    print(f"| mean record − window target on positives | {(record[:, None, :] - windows).transpose(0, 2, 1)[pos].mean():.3f} |")
    print(f"| mean record target on negatives / window target | {record[~pos].mean():.3f} / "
          f"{windows.transpose(0, 2, 1)[~pos].mean():.3f} |")
    print(f"| macro AUC of the middle window's target alone | {M.macro_auc(y, windows[:, len(targets.starts) // 2]):.4f} |")


if __name__ == "__main__":
    main(*usage.arguments(__doc__, 1, 2))

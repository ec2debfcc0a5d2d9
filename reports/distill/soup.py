"""Does a weight-space average ("model soup", Wortsman et al. 2022) of the distilled students beat the best one?

The superclass students share long_time's network, seed and therefore their initial weights, and differ only in
α, T and schedule — the case where averaging weights sometimes works. Each soup is the plain mean of the
students' weights; its batch-norm statistics are then re-estimated on 16 batches of 256 random training crops
(folds 1–8; the averaged statistics do not describe the averaged network). Only fold 9 is scored: a soup that
does not beat the best student there is not a candidate, and fold 10 stays unread.

    ECGNET_DATA=... .venv/bin/python -m reports.distill.soup   # → reports/distill/soup.json
"""

from __future__ import annotations

import copy
import json

import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmarks._common import REPO_ROOT, write_results
from ecgnet.data.dataset import PTBXL, CropDataset
from ecgnet.data.ptbxl import data_root
from ecgnet.evaluation.metrics import macro_auc
from ecgnet.inference.batch import predict_proba
from ecgnet.runs import load_run
from reports import usage

STUDENTS = ["distill_long_time", "distill_long_time_e80", "distill_long_time_a08", "distill_long_time_t2"]
SOUPS = {"best two": STUDENTS[:2], "four students": STUDENTS, "four students + long_time": [*STUDENTS, "long_time"]}


def fold9_auc(model, data: PTBXL, config) -> float:
    val = data.split("val")
    p = predict_proba(model, val.signal, val.metadata, config.data.window, config.data.stride,
                      config.data.aggregate, progress=False)
    return macro_auc(val.y, p)


def soup(names: list[str], data: PTBXL, config, batches: int = 16) -> torch.nn.Module:
    models = [load_run(REPO_ROOT / "runs" / n)[0] for n in names]
    states = [m.state_dict() for m in models]
    model = copy.deepcopy(models[0])
    model.load_state_dict({k: (sum(s[k].double() for s in states) / len(states)).to(states[0][k].dtype)
                           for k in states[0]})
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative mean over the batches below
    torch.manual_seed(0)  # the batches' records
    np.random.seed(0)  # their crops (CropDataset draws starts with numpy)
    loader = DataLoader(CropDataset(data.split("train"), config.data.window), batch_size=256, shuffle=True)
    model.train()
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if i == batches:
                break
            model(batch["signal"], batch["metadata"])
    return model.eval()


def main() -> dict:
    torch.set_num_threads(2)
    _, config, _ = load_run(REPO_ROOT / "runs" / STUDENTS[0])
    data = PTBXL(data_root(None), config.data.task, config.data.sampling_rate)
    figures = {"students": {n: round(fold9_auc(load_run(REPO_ROOT / "runs" / n)[0], data, config), 4)
                            for n in [*STUDENTS, "long_time"]},
               "soups": {}}
    for label, names in SOUPS.items():
        figures["soups"][label] = {"members": names, "fold9_macro_auc": round(fold9_auc(soup(names, data, config),
                                                                                        data, config), 4)}
    print(json.dumps(figures, indent=1))
    write_results("soup", figures, {"bn_batches": 16, "bn_batch_size": 256, "seed": 0},
                  path=REPO_ROOT / "reports" / "distill" / "soup.json")
    return figures


if __name__ == "__main__":
    usage.arguments(__doc__)
    main()

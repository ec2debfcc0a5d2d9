"""What distributed training needs beyond Lightning: validation over exactly the fold's records, and a
record of what a run ran on.

Lightning's DistributedSampler pads the validation set so every process gets as many records: with
2 processes and an odd fold, one record is scored twice. Each validation sample therefore carries
its index; the processes' predictions are gathered and :func:`merge_ranks` keeps one row per index,
so the fold-9 macro AUC that selects checkpoints is computed over exactly the fold — no duplicate,
none missing — on any number of processes.
"""

from __future__ import annotations

import platform

import numpy as np
import torch
from torch.utils.data import Dataset


class Indexed(Dataset):
    """A dataset of dicts whose samples also carry their position (``index``)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        return {**self.dataset[i], "index": torch.tensor(i)}


def merge_ranks(index: np.ndarray, *arrays: np.ndarray, expected: int) -> tuple[np.ndarray, ...]:
    """Rows of ``arrays`` ordered by ``index`` with each index once; every index in 0..expected-1 must
    be present (a missing record is an error, not a silently smaller fold)."""
    index = np.asarray(index).reshape(-1)
    unique, first = np.unique(index, return_index=True)
    if len(unique) != expected or unique[0] != 0 or unique[-1] != expected - 1:
        raise RuntimeError(f"distributed validation saw {len(unique)} distinct records of {expected}")
    return tuple(np.asarray(a).reshape(len(index), -1)[first] for a in arrays)


def hardware(trainer) -> dict:
    """What the run ran on, for run.json."""
    accelerator = type(trainer.accelerator).__name__.replace("Accelerator", "").lower()
    if accelerator == "cuda" and torch.cuda.is_available():
        device = torch.cuda.get_device_name(trainer.strategy.root_device)
    else:
        device = _cpu_name()
    return {"accelerator": accelerator, "device_name": device, "devices": trainer.num_devices,
            "num_nodes": trainer.num_nodes, "world_size": trainer.world_size,
            "strategy": type(trainer.strategy).__name__, "precision": str(trainer.precision),
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
            "cpu_threads_per_process": torch.get_num_threads()}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

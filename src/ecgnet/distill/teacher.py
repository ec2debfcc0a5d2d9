"""A teacher run's soft targets for every labelled PTB-XL record (folds 1–10), computed once and cached.

The teacher is any run directory; a late-fusion run (an ensemble or a stack) is read through its members,
so the cache holds each member's probability at each evaluation window of each record —
``probs[record, member, window, class]``, windows at the run's evaluation starts (2.5 s every 1.25 s:
7 windows of a 10 s record). From these :class:`SoftTargets` gives both kinds of target:

- ``record``: the teacher's record probability exactly as the run predicts it (each member aggregates
  its windows — the maximum —, then the members are averaged or stacked);
- ``window``: the teacher's probability for one window (the members combined at that window), the target
  for a training crop that starts nearest to it.

The file's name carries a digest of the teacher's weights (every member's ``model.safetensors``), so a
retrained teacher never reuses stale targets.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from ecgnet.data.dataset import PTBXL
from ecgnet.errors import ECGNetError
from ecgnet.models.windows import window_starts

SPLITS = ("train", "val", "test")
KINDS = ("record", "window")


def _members(model: torch.nn.Module, config) -> tuple[list[torch.nn.Module], list[tuple], str, np.ndarray, np.ndarray]:
    """(member models, their (window, stride, aggregate), method, stack weight (classes, members), bias)."""
    if getattr(model, "member_logits", None) is not None:  # late fusion: average or stack of runs
        members = list(model.members.values())
        windows = [model.windows[m] for m in model.members]
        weight, bias = (t.detach().cpu().numpy().copy() for t in (model.weight, model.bias))
        return members, windows, model.method, weight, bias
    if getattr(model, "whole_record", False):
        raise ECGNetError(f"{config.name}: a teacher must predict windows (a late-fusion run or a windowed model)")
    w = np.ones((1, 1), dtype=np.float32)
    return [model], [(config.data.window, config.data.stride, config.data.aggregate)], "average", w, np.zeros(1)


def _load_teacher(run_dir: Path):
    """(model, config, info) of a run; an averaging ensemble saved without its own weights file (it fits
    no parameter) is built from the member runs its config names."""
    import json

    from ecgnet.config import load_config
    from ecgnet.runs.directory import build_run_model, load_run

    if not (run_dir / "model.safetensors").is_file() and (run_dir / "config.yaml").is_file():
        config = load_config(run_dir / "config.yaml")
        if config.model.name == "late_fusion" and config.model.params.get("method") == "average":
            info = json.loads((run_dir / "run.json").read_text())
            return build_run_model(config, len(info["classes"]), run_dir).eval(), config, info
    return load_run(run_dir)


def weights_digest(run_dir: Path) -> str:
    """SHA-256 over the run's weights and, for late fusion, each member's, in order."""
    import yaml

    h = hashlib.sha256()
    paths = [run_dir / "model.safetensors"]
    params = (yaml.safe_load((run_dir / "config.yaml").read_text()).get("model") or {}).get("params") or {}
    repo = Path(__file__).resolve().parents[3]
    for member in (params.get("members") or {}).values():
        p = Path(member) if Path(member).is_absolute() else repo / member
        paths.append(p / "model.safetensors")
    for p in paths:
        if p.is_file():
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def cache_path(run_dir: Path, cache_dir: Path) -> Path:
    """The folder of a teacher's soft targets: one ``<split>.npz`` per split."""
    return Path(cache_dir) / f"teacher_{run_dir.resolve().name}_{weights_digest(run_dir)[:12]}"


@torch.no_grad()
def member_window_probs(member: torch.nn.Module, signal: torch.Tensor, metadata: torch.Tensor,
                        starts: list[int], window: int) -> torch.Tensor:
    """(batch, windows, classes) probabilities of one member at each window start."""
    crops = torch.cat([signal[..., s:s + window] for s in starts])
    p = torch.sigmoid(member(crops, metadata.repeat(len(starts), 1)).float())
    return p.view(len(starts), signal.shape[0], -1).transpose(0, 1).cpu()


def compute(run_dir: str | Path, data: PTBXL, split: str, batch_size: int = 128, bf16: bool = False,
            progress: bool = True) -> dict:
    """The arrays of one split's soft-target file (see the module docstring). ``bf16``: the members run
    under bfloat16 autocast (faster where the CPU has bf16 units; probabilities differ by < 0.01). On a
    machine with a CUDA GPU the members run there."""
    return compute_split(run_dir, data.split(split), data.classes, split, batch_size, bf16, progress)


def compute_split(run_dir: str | Path, split, classes: list[str], label: str, batch_size: int = 128,
                  bf16: bool = False, progress: bool = True) -> dict:
    """:func:`compute` for any :class:`~ecgnet.data.dataset.Split` (e.g. an unlabelled manifest's records,
    metadata scaled as the teacher's training data); ``label`` names it on the progress bar."""
    run_dir = Path(run_dir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, config, info = _load_teacher(run_dir)
    model.to(device)
    if info["classes"] != classes:
        shown = lambda names: ", ".join(names[:6]) + (f", … ({len(names)} in all)" if len(names) > 6 else "")  # noqa: E731
        raise ECGNetError(f"{run_dir}: the teacher predicts {shown(list(info['classes']))}; the student's task has "
                          f"{shown(list(classes))}: a teacher of the same task is needed")
    members, windows, method, weight, bias = _members(model, config)
    if len({(w, st) for w, st, _ in windows}) != 1:
        raise ECGNetError(f"{run_dir}: members with different windows cannot share window soft targets")
    window, stride, _ = windows[0]
    samples = split.signal.shape[-1]
    window = window or samples
    starts = window_starts(samples, window, stride)
    out = np.zeros((len(split.ecg_ids), len(members), len(starts), len(classes)), dtype=np.float32)
    start = time.perf_counter()
    with Progress(disable=not progress) as bar, torch.autocast(device.type, torch.bfloat16, enabled=bf16):
        task = bar.add_task(f"Teacher {run_dir.name} ({len(members)} members), {label}", total=len(split.ecg_ids))
        for i in range(0, len(split.ecg_ids), batch_size):
            x = torch.as_tensor(np.asarray(split.signal[i:i + batch_size])).to(device)
            m = torch.as_tensor(np.asarray(split.metadata[i:i + batch_size])).to(device)
            for k, member in enumerate(members):
                out[i:i + len(x), k] = member_window_probs(member, x, m, starts, window).numpy()
            bar.advance(task, len(x))
    ids = np.asarray(split.ecg_ids)
    return {"ecg_ids": ids.astype(np.int64) if ids.dtype.kind in "iu" else np.arange(len(ids), dtype=np.int64),
            "probs": out, "starts": np.asarray(starts), "window": np.asarray(window),
            "aggregates": np.asarray([a for _, _, a in windows]), "method": np.asarray(method),
            "weight": np.asarray(weight, dtype=np.float32), "bias": np.asarray(bias, dtype=np.float32),
            "classes": np.asarray(classes), "teacher": np.asarray(str(run_dir)),
            "weights_sha256": np.asarray(weights_digest(run_dir)), "bf16": np.asarray(bf16),
            "seconds": np.asarray(round(time.perf_counter() - start, 1))}


def build(run_dir: str | Path, data: PTBXL, cache_dir: Path, splits: tuple[str, ...] = SPLITS,
          bf16: bool = False, progress: bool = True) -> Path:
    """The cached soft-target folder of ``run_dir``; each missing split is computed and written atomically."""
    run_dir = Path(run_dir)
    folder = cache_path(run_dir, cache_dir)
    for split in splits:
        path = folder / f"{split}.npz"
        if path.is_file():
            continue
        arrays = compute(run_dir, data, split, bf16=bf16, progress=progress)  # a refused teacher writes nothing
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{split}.partial.npz"
        np.savez(tmp, **arrays)
        tmp.replace(path)
    return folder


def resolve(teacher: str | Path, task: str, cache_dir: Path | None = None) -> Path:
    """``training.distill_teacher`` → its soft-target folder: the folder itself, or a teacher run's cached
    folder (computed first if missing)."""
    from ecgnet.data.ptbxl import data_root
    from ecgnet.data.signals import cache_dir as default_cache

    teacher = Path(teacher)
    if (teacher / "train.npz").is_file():
        return teacher
    if not (teacher / "config.yaml").is_file():
        raise ECGNetError(f"{teacher}: neither a teacher run directory nor a folder of soft targets")
    cache = Path(cache_dir or default_cache())
    folder = cache_path(teacher, cache)
    if not (folder / "train.npz").is_file():
        build(teacher, PTBXL(data_root(), task, 100, cache), cache, splits=("train",))
    return folder


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


@dataclass
class SoftTargets:
    """A soft-target file, indexed by ecg_id."""

    ecg_ids: np.ndarray
    probs: np.ndarray  # (records, members, windows, classes)
    starts: np.ndarray
    window: int
    aggregates: tuple[str, ...]
    method: str
    weight: np.ndarray  # (classes, members): stacking coefficients
    bias: np.ndarray  # (classes,)
    classes: list[str]
    weights_sha256: str

    @classmethod
    def load(cls, folder: str | Path) -> "SoftTargets":
        """Every ``<split>.npz`` of a soft-target folder, as one table (or one ``.npz`` file)."""
        folder = Path(folder)
        if folder.suffix == ".npz":  # one file (e.g. an unlabelled manifest's)
            files = [folder]
        else:
            files = [folder / f"{s}.npz" for s in SPLITS if (folder / f"{s}.npz").is_file()]
        if not files:
            raise ECGNetError(f"{folder}: no soft targets (expected {', '.join(s + '.npz' for s in SPLITS)})")
        parts = []
        for path in files:
            try:
                with np.load(path, allow_pickle=False) as f:
                    parts.append({k: f[k] for k in f.files})
            except (OSError, ValueError) as e:
                raise ECGNetError(f"{path}: not a soft-target file of `ecgnet distill` ({e})") from e
        first = parts[0]
        try:
            return cls(np.concatenate([p["ecg_ids"] for p in parts]), np.concatenate([p["probs"] for p in parts]),
                       first["starts"], int(first["window"]), tuple(str(a) for a in first["aggregates"]),
                       str(first["method"]), first["weight"], first["bias"], [str(c) for c in first["classes"]],
                       str(first["weights_sha256"]))
        except KeyError as e:
            raise ECGNetError(f"{folder}: not a soft-target folder of `ecgnet distill` (no {e})") from e

    def _combine(self, member_probs: np.ndarray) -> np.ndarray:
        """(..., members, classes) → (..., classes) as the teacher combines its members."""
        if self.method == "average":
            return member_probs.mean(-2)
        z = (_logit(member_probs) * self.weight.T).sum(-2) + self.bias
        return 1 / (1 + np.exp(-z))

    def record(self) -> np.ndarray:
        """(records, classes): the teacher's record probabilities (each member aggregates its windows)."""
        agg = np.stack([self.probs[:, k].max(1) if a == "max" else self.probs[:, k].mean(1)
                        for k, a in enumerate(self.aggregates)], axis=1)
        return self._combine(agg).astype(np.float32)

    def windows(self) -> np.ndarray:
        """(records, windows, classes): the teacher's probability at each window."""
        return self._combine(self.probs.transpose(0, 2, 1, 3)).astype(np.float32)

    def rows(self, ecg_ids: np.ndarray) -> np.ndarray:
        """Row of each ecg_id; a record without a soft target is an error."""
        index = {int(e): i for i, e in enumerate(self.ecg_ids)}
        missing = [int(e) for e in ecg_ids if int(e) not in index]
        if missing:
            raise ECGNetError(f"{len(missing)} record(s) have no soft target (e.g. ecg_id {missing[0]}); "
                              "the file was computed for other records")
        return np.asarray([index[int(e)] for e in ecg_ids])

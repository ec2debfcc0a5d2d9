"""``encoder.safetensors``: a pretrained model's state dict without its classification head — the frontend
(with its per-lead standardisation statistics, fitted on the pretraining records of folds 1–8) and the
encoder — and loading it into a freshly built model before fine-tuning (``training.init_from``).

Fine-tuning takes the frontend statistics from the file instead of fitting its own, so a lead is
standardised exactly as it was during pretraining.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import save as save_safetensors

from ecgnet.errors import ECGNetError
from ecgnet.fileio import atomic_path
from ecgnet.models.unimodal import UnimodalModel
from ecgnet.runs.directory import parse_safetensors, sorted_metadata

HEAD = "encoder.head."  # the classification head of every single-branch model (UnimodalModel)
FILENAME = "encoder.safetensors"


def encoder_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict (parameters and buffers) without the head, on the CPU."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith(HEAD)}


def save_encoder(path: Path, model: torch.nn.Module, metadata: dict[str, str]) -> str:
    """Write the model minus its head to ``path`` atomically; returns the file's SHA-256."""
    data = sorted_metadata(save_safetensors(encoder_state(model), metadata=metadata))
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_pretrained(model: torch.nn.Module, path: str | Path) -> dict:
    """Load ``path`` (an ``encoder.safetensors``, or the pretraining run folder holding one) into every
    tensor of ``model`` but its head, which keeps its fresh initialisation. ``model`` is a single-branch
    model, or wraps one for training (e.g. with an auxiliary head): the weights go into that one. Returns
    where the weights came from (path and SHA-256, for run.json). A missing or unreadable file, or tensors
    that do not fit the model, is one ECGNetError naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    if not path.is_file():
        raise ECGNetError(f"{path}: no such file — training.init_from must name the encoder written by "
                          f"`ecgnet pretrain` (runs/<name>/{FILENAME})")
    data = path.read_bytes()
    state = parse_safetensors(data, path)
    target = next((m for m in model.modules() if isinstance(m, UnimodalModel)), None)
    if target is None:
        raise ECGNetError(f"{path}: a pretrained encoder loads into a single-branch model (e.g. time_resnet1d), "
                          f"not into a {type(model).__name__}")
    expected = {k: v for k, v in target.state_dict().items() if not k.startswith(HEAD)}
    problems = mismatches(state, expected)
    if problems:
        raise ECGNetError(f"{path}: its tensors do not fit the model ({'; '.join(problems)}) — pretrain with "
                          "the model and params of the config being fine-tuned")
    target.load_state_dict(state, strict=False)  # strict but for the head: every other key was checked above
    return {"init_from": str(path), "init_from_sha256": hashlib.sha256(data).hexdigest()}


def mismatches(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], show: int = 3) -> list[str]:
    """Missing and unexpected keys and shape mismatches, a few of each."""
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    shapes = [f"{k} is {tuple(state[k].shape)}, the model's {tuple(expected[k].shape)}"
              for k in sorted(expected.keys() & state.keys()) if state[k].shape != expected[k].shape]
    out = []
    for what, items in (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes)):
        if items:
            more = f" and {len(items) - show} more" if len(items) > show else ""
            out.append(f"{len(items)} {what}: {', '.join(items[:show])}{more}")
    return out

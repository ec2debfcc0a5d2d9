"""A run directory: everything a trained model needs to be re-evaluated or used, and where it came from.

```
runs/<name>/
  config.yaml          the experiment, as trained
  run.json             seed, git revision, command, versions, classes, parameters, training time,
                       weights_sha256 (the SHA-256 of model.safetensors)
  model.safetensors    weights (frontend statistics included)
  logs/metrics.csv     epoch log (loss, fold-9 macro AUC, seconds)
  val/  test/          predictions.csv + metrics.json per fold (thresholds chosen on val)
  report.html/.md      tables and plots
  checkpoints/         Lightning checkpoints for resuming (not committed)
```

Integrity and safety: :func:`load_run` refuses weights whose SHA-256 differs from run.json's
``weights_sha256`` (runs written before the field load without the check), and reads a run directory
through safetensors, JSON and YAML (``yaml.safe_load``) only — never a pickle, so a run from elsewhere
cannot run code. The one exception is ``checkpoints/``: Lightning's ``.ckpt`` files are pickles, loaded
only by ``ecgnet train --resume`` (``last.ckpt``) and at the end of training (``best.ckpt``, with
``torch.load(weights_only=True)``), from the run directory that the same command writes in the user's
own ``--runs-dir``; ``evaluate``, ``predict``, ``compare`` and the server never open them.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from ecgnet.checksum import sha256_file
from ecgnet.config import Config, dump_config, load_config
from ecgnet.errors import ECGNetError
from ecgnet.fileio import atomic_path, write_json, write_text
from ecgnet.models import build_model


def provenance() -> dict:
    """Who made this and from what: git revision (and whether the tree had changes), command, versions."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                                  cwd=Path(__file__).parent).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None
    outputs = [f":(top,exclude,glob)reports/**/*.{ext}" for ext in ("md", "html", "json", "csv", "png", "txt")]
    dirty = (git("diff", "--name-only", "HEAD", "--", ":/", ":!/runs", *outputs) or "").splitlines()  # code, not outputs
    return {"git_revision": git("rev-parse", "HEAD"), "git_dirty": bool(dirty),
            "git_dirty_files": dirty,
            "command": " ".join(["ecgnet", *sys.argv[1:]]) if sys.argv else None,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "cpu_threads": torch.get_num_threads()}


def save_model(run_dir: Path, model: torch.nn.Module, config: Config, info: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", dump_config(config))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(run_dir / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"name": config.name, "classes": json.dumps(info["classes"])})
        digest = sha256_file(tmp)
    write_json(run_dir / "run.json", {**info, "weights_sha256": digest})


def load_run(path: str | Path) -> tuple[torch.nn.Module, Config, dict]:
    """A run directory (or its model.safetensors) → (model in eval mode, config, run info)."""
    path = Path(path)
    run_dir = path.parent if path.suffix == ".safetensors" else path
    for name in ("config.yaml", "run.json", "model.safetensors"):
        if not (run_dir / name).is_file():
            raise ECGNetError(f"{run_dir / name}: missing — {run_dir} is not an ECGNet run directory")
    config = load_config(run_dir / "config.yaml")
    try:
        info = json.loads((run_dir / "run.json").read_text())
        classes = info["classes"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ECGNetError(f"{run_dir / 'run.json'}: not a valid run description ({e})") from e
    model = build_model(config.model.name, len(classes), **config.model.params)
    weights = run_dir / "model.safetensors"
    expected = info.get("weights_sha256")  # absent from runs written before it: no check
    if expected is not None and sha256_file(weights) != expected:
        raise ECGNetError(f"{weights}: its SHA-256 does not match weights_sha256 in run.json — the weights "
                          "are damaged or were replaced; restore them or retrain the run")
    try:
        state = load_file(str(weights))
    except Exception as e:  # safetensors raises its own error type for damaged files
        raise ECGNetError(f"{weights}: not a readable safetensors file ({' '.join(str(e).split())})") from e
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ECGNetError(f"{weights}: weights do not fit the config's model ({first})") from e
    return model.eval(), config, info


def run_summary(run_dir: str | Path) -> dict:
    """What a listing shows of a run without loading it: task, classes, parameters, the model's registry
    name and the fold-10 macro AUC (None for what the run's files do not say)."""
    run_dir = Path(run_dir)

    def read(name: str, parse):
        try:
            return parse((run_dir / name).read_text(errors="replace")) or {}
        except (OSError, ValueError, yaml.YAMLError):
            return {}

    info, test, config = read("run.json", json.loads), read("test/metrics.json", json.loads), \
        read("config.yaml", yaml.safe_load)
    return {"task": info.get("task"), "classes": info.get("classes", []), "parameters": info.get("parameters"),
            "architecture": (config.get("model") or {}).get("name"),
            "test_macro_auc": (test.get("macro_auc") or {}).get("value")}


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

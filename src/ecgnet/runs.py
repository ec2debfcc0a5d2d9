"""A run directory: everything a trained model needs to be re-evaluated or used, and where it came from.

```
runs/<name>/
  config.yaml          the experiment, as trained
  run.json             seed, git revision, command, versions, classes, parameters, training time,
                       weights_sha256 (the SHA-256 of model.safetensors)
  model.safetensors    weights (frontend statistics included)
  logs/metrics.csv     epoch log, one row per epoch (loss, fold-9 macro AUC, seconds), kept in the checkpoints
  val/  test/          predictions.csv + metrics.json per fold (thresholds chosen on val)
  report.html/.md      tables and plots
  checkpoints/         for resuming (not committed): last.ckpt (every epoch), best.ckpt (fold-9 best),
                       config.yaml and versions.json (what a resume must match)
  INCOMPLETE           only while training: see below
```

A run directory is complete, or says it is not: training writes ``INCOMPLETE`` (one line: when and by
what command it started, how to resume) before anything else in the folder, and deletes it as its very
last step, once run.json, model.safetensors, val/, test/ and the report are written. :func:`load_run`
— behind ``evaluate``, ``predict``, ``export``, ``compare`` and the server — refuses a folder with the
marker, so a run killed mid-way (or one being retrained) is never used as if it were whole.

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
import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ecgnet.config import Config, dump_config, load_config
from ecgnet.errors import ECGNetError
from ecgnet.fileio import atomic_path, remove_leftovers, write_json, write_text
from ecgnet.models import build_model

INCOMPLETE = "INCOMPLETE"


REVISION_ENV = "ECGNET_GIT_REVISION"  # names the commit a copy without .git was made from; checked by source_sha256


def source_digest(package: Path = Path(__file__).parent) -> str:
    """SHA-256 over the package's Python files (relative path and bytes, in path order): the code that ran,
    comparable with a checkout of the revision the run names, also where the run had no .git to ask."""
    h = hashlib.sha256()
    for f in sorted(package.rglob("*.py")):
        h.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


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
    revision = git("rev-parse", "HEAD")
    declared = {}
    if revision is None and os.environ.get(REVISION_ENV):  # a copy of the tree without .git (a lent GPU machine)
        revision, declared = os.environ[REVISION_ENV], {"git_revision_declared_by": REVISION_ENV}
    return {"git_revision": revision, "git_dirty": bool(dirty), "git_dirty_files": dirty, **declared,
            "source_sha256": source_digest(),
            "command": " ".join(["ecgnet", *sys.argv[1:]]) if sys.argv else None,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "cpu_threads": torch.get_num_threads()}


def save_model(run_dir: Path, model: torch.nn.Module, config: Config, info: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", dump_config(config))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    data = _sorted_metadata(save_safetensors(state, metadata={"name": config.name,
                                                              "classes": json.dumps(info["classes"])}))
    with atomic_path(run_dir / "model.safetensors") as tmp:
        tmp.write_bytes(data)
    write_json(run_dir / "run.json", {**info, "weights_sha256": hashlib.sha256(data).hexdigest()})


def parse_safetensors(data: bytes, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file's bytes; a damaged or foreign file is one ECGNetError naming it."""
    try:
        return load_safetensors(data)
    except Exception as e:  # safetensors raises its own error type for damaged files
        raise ECGNetError(f"{path}: not a readable safetensors file ({' '.join(str(e).split())[:200]})") from e


def _sorted_metadata(data: bytes) -> bytes:
    """safetensors writes its metadata in hash order, which changes from process to process, so the same
    weights gave files (and SHA-256s) that differed: the header is rewritten with the metadata sorted
    (same length, same tensors and offsets)."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    return data[:8] + text.ljust(n, b" ") + data[8 + n:] if len(text) <= n else data


def resume_command(run_dir: Path) -> str:
    return f"ecgnet train -c {run_dir / 'config.yaml'} --runs-dir {run_dir.parent} --resume"


def mark_incomplete(run_dir: Path, config: Config, started: dict) -> None:
    """A training session's first writes in ``run_dir``: the ``INCOMPLETE`` marker, then the config
    (what ``--resume`` is given). Temporary files a killed session left behind are deleted."""
    when, command = started.get("date", "?"), started.get("command") or "?"
    write_text(run_dir / INCOMPLETE, f"training started {when} by `{command}` and has not finished; resume "
                                     f"with `{resume_command(run_dir)}` or delete this folder\n")
    write_text(run_dir / "config.yaml", dump_config(config))
    if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0":
        remove_leftovers(run_dir)  # one process of a distributed run: the others start while it writes


def mark_complete(run_dir: Path) -> None:
    """The last step of training: everything else in ``run_dir`` is written."""
    (run_dir / INCOMPLETE).unlink(missing_ok=True)


def refuse_incomplete(run_dir: Path) -> None:
    marker = run_dir / INCOMPLETE
    if marker.exists():
        try:
            started = " ".join(marker.read_text(errors="replace").split()).split(" and has not finished")[0]
        except OSError:
            started = "marker unreadable"
        raise ECGNetError(f"{run_dir}: training did not finish ({marker.name}: {started[:300]}); resume with "
                          f"`{resume_command(run_dir)}` or delete it")


def load_run(path: str | Path) -> tuple[torch.nn.Module, Config, dict]:
    """A run directory (or its model.safetensors) → (model in eval mode, config, run info)."""
    path = Path(path)
    run_dir = path.parent if path.suffix == ".safetensors" else path
    refuse_incomplete(run_dir)
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
    data = weights.read_bytes()  # read once: the bytes checked are the bytes loaded
    expected = info.get("weights_sha256")  # absent from runs written before it: no check
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise ECGNetError(f"{weights}: its SHA-256 does not match weights_sha256 in run.json — the weights "
                          "are damaged or were replaced; restore them or retrain the run")
    state = parse_safetensors(data, weights)
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

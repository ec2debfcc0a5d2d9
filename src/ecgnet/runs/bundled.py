"""Models shipped inside the package, so that an installed ``ecgnet`` diagnoses ECGs without a checkout.

Each lives in ``ecgnet/models_bundled/<name>/`` as a trimmed copy of ``runs/<name>/``: what
:func:`ecgnet.runs.load_run` needs (an ensemble's ``members/`` descriptions included, see
:mod:`ecgnet.runs.members`), the fold-9 thresholds that :class:`ecgnet.inference.predictor.Predictor`
uses, and the fold-10 metrics and predictions (so ``ecgnet models`` can show the test AUC and a bundled
model can be the ``compare --baseline``). ``make bundle`` refreshes the copies from ``runs/``; a test
checks they are byte-identical to it.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ecgnet.errors import ECGNetError
from ecgnet.runs.members import MEMBERS

# The default is the single model with the best fold-9 macro AUC (reports/benchmark/table.py): long_time's
# network, data and recipe distilled from the greedy ensemble (distill_long_time: fold 9 0.9395; long_time,
# the same recipe without a teacher, 0.9384; fold 10 0.9354 vs 0.9355, reports/distill/README.md). The
# greedy ensemble scores higher on fold 9 and is bundled too, but it stores its 8 members' weights
# (19.3 MB) and runs all 8 on every record. long_time stays bundled: the own-data reports fine-tune it.
DEFAULT_MODEL = "distill_long_time"
BUNDLED_MODELS = ("distill_long_time", "long_time", "baseline_time", "intermediate_concat_weighted_bce",
                  "ensemble_greedy")
BUNDLED_FILES = ("config.yaml", "run.json", "model.safetensors", "val/metrics.json",
                 "test/metrics.json", "test/predictions.csv")


@dataclass(frozen=True)
class BundledModel:
    name: str
    task: str | None
    classes: list[str]
    parameters: int | None
    test_macro_auc: float | None  # fold 10, None if the run was not evaluated
    path: Path


def bundled_root() -> Path:
    """The folder holding the bundled models (pip unpacks wheels, so this is a real directory)."""
    return Path(str(resources.files("ecgnet").joinpath("models_bundled")))


def is_bundled(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` is one of the bundled models (inside the installed package: not to be written in)."""
    return Path(run_dir).resolve().is_relative_to(bundled_root().resolve())


def bundled_names() -> list[str]:
    root = bundled_root()
    return sorted(d.name for d in root.iterdir() if (d / "run.json").is_file()) if root.is_dir() else []


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """An existing path (run directory or model.safetensors) as given; else a bundled model's folder."""
    path = Path(name_or_path)
    if path.is_file() and path.suffix != ".safetensors":
        hint = (" an exported ONNX model: give the run it was exported from with --engine onnx (or run it in ONNX "
                "Runtime as docs/export.md shows)" if path.suffix == ".onnx" else "")
        raise ECGNetError(f"{path}: a file, not a run directory or its model.safetensors —{hint or ' give the run folder'}")
    if path.exists():
        return path
    names = bundled_names()
    if str(name_or_path) in names:
        return bundled_root() / str(name_or_path)
    hint = f"; the bundled model is given by its name alone: {path.name}" if path.name in names else ""
    raise ECGNetError(f"{name_or_path}: no such run directory or file, nor a bundled model "
                      f"(bundled: {', '.join(names) or 'none'}){hint}")


def list_bundled() -> list[BundledModel]:
    from ecgnet.runs.describe import run_summary

    models = []
    for name in bundled_names():
        path = bundled_root() / name
        summary = run_summary(path)
        models.append(BundledModel(name, summary["task"], summary["classes"], summary["parameters"],
                                   summary["test_macro_auc"], path))
    return models


def bundled_files(run_dir: Path) -> list[str]:
    """The files of ``run_dir`` that a bundled copy holds: :data:`BUNDLED_FILES` and an ensemble's members."""
    members = Path(run_dir) / MEMBERS
    stored = sorted(p.relative_to(run_dir).as_posix() for p in members.rglob("*") if p.is_file()) \
        if members.is_dir() else []
    return [*BUNDLED_FILES, *stored]


def bundle(run_dir: Path, dest: Path) -> None:
    """Replace ``dest`` with a copy of the :func:`bundled_files` of ``run_dir``."""
    run_dir, dest = Path(run_dir), Path(dest)
    missing = [f for f in BUNDLED_FILES if not (run_dir / f).is_file()]
    if missing:
        raise ECGNetError(f"{run_dir}: missing {', '.join(missing)} — cannot bundle it")
    shutil.rmtree(dest, ignore_errors=True)
    for f in bundled_files(run_dir):
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / f, dest / f)


if __name__ == "__main__":  # make bundle: python -m ecgnet.runs.bundled RUNS_DIR DEST
    runs_dir, dest_root = map(Path, sys.argv[1:3])
    for model in BUNDLED_MODELS:
        bundle(runs_dir / model, dest_root / model)
        print(f"bundled {runs_dir / model} -> {dest_root / model}")

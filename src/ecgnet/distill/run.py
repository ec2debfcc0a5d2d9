"""``ecgnet distill``: compute (or reuse) a teacher's soft targets, then train a student config with them.

The student is an ordinary training config (folds 1–8 train, fold 9 selects, folds 9 and 10 evaluated);
``training.distill_teacher`` is set to the teacher, so the run's saved config says what taught it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ecgnet.config import Config, load_config, parse_config
from ecgnet.data.dataset import PTBXL
from ecgnet.distill import teacher as teacher_targets
from ecgnet.errors import ECGNetError


def student_config(student: Path, teacher: Path, overrides: list[str] | tuple[str, ...] = (),
                   unlabelled: Path | None = None) -> Config:
    """The student config with ``training.distill_teacher`` = ``teacher`` — whatever teacher the config
    names is replaced, with a note — (the config's own ``--set`` overrides applied first; a distill_* override of weight, temperature or target is kept) and, when
    given, ``training.distill_unlabelled`` = ``unlabelled``."""
    if any(item.split("=", 1)[0].strip() == "training.distill_teacher" for item in overrides):
        raise ECGNetError("the teacher is --teacher, not --set training.distill_teacher")
    config = load_config(student, overrides)
    named = config.training.distill_teacher
    if named and Path(named).resolve() != Path(teacher).resolve():
        print(f"note: --teacher {teacher} replaces the teacher {student} names ({named})", file=sys.stderr)
    raw = config.model_dump(mode="json")
    raw["training"]["distill_teacher"] = str(teacher)
    if unlabelled is not None:
        if not Path(unlabelled).is_file():
            raise ECGNetError(f"{unlabelled}: no such manifest (--unlabelled)")
        raw["training"]["distill_unlabelled"] = str(unlabelled)
    return parse_config(raw, source=str(student))


def soft_targets(teacher: Path, task: str, data_root: Path, cache_dir: Path | None = None,
                 splits: tuple[str, ...] = teacher_targets.SPLITS, bf16: bool = False,
                 progress: bool = True) -> Path:
    """The teacher's soft-target folder, computed for the splits that are missing."""
    from ecgnet.data.signals import cache_dir as default_cache

    if not (teacher / "config.yaml").is_file():
        raise ECGNetError(f"{teacher}: not a run directory (no config.yaml)")
    cache = Path(cache_dir or default_cache())
    return teacher_targets.build(teacher, PTBXL(data_root, task, 100, cache), cache, splits, bf16, progress)


def distill(teacher: Path, student: Path, data_root: Path, runs_dir: Path = Path("runs"),
            overrides: list[str] | tuple[str, ...] = (), cache_dir: Path | None = None, bf16: bool = False,
            n_boot: int = 1000, progress: bool = True, unlabelled: Path | None = None):
    """Soft targets of ``teacher`` (all ten folds: 1–8 teach, 9 and 10 for diagnostics; and the records of
    the ``unlabelled`` manifest), then the student trained with them. Returns ``(run directory, results)``
    as :func:`ecgnet.training.fit.train`."""
    from ecgnet.training.fit import train

    config = student_config(student, teacher, overrides, unlabelled)
    soft_targets(teacher, config.data.task, data_root, cache_dir, bf16=bf16, progress=progress)
    return train(config, data_root, runs_dir, cache_dir=cache_dir, progress=progress, n_boot=n_boot)

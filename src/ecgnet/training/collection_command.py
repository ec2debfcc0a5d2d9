"""``ecgnet train --manifest M.csv`` / ``--from NAME|RUN``: the options checked against each other, the config
(the file's, or the source run's with the small-data schedule; ``--set`` on top) and the collection (the manifest,
else PTB-XL for the config's task) put together for :func:`~ecgnet.training.collection.train_collection`, and the
summary it prints."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from ecgnet.data.limits import DEFAULT_LIMITS, ReadLimits
from ecgnet.errors import ECGNetError
from ecgnet.runs.directory import described_classes
from ecgnet.evaluation.scoring import few_cases, format_auc
from ecgnet.training.collection import train_collection
from ecgnet.training.once_report import split_warnings

PTBXL_FOLDS = 10  # PTB-XL's own strat_fold: the only K it cross-validates over


def train_command(config_path: Path | None, overrides: list[str], manifest: Path | None = None,
                  label_map: Path | None = None, skip_bad: bool = False, source: str | None = None,
                  mode: str | None = None, folds: int | None = None, leave_out: str | None = None,
                  data_root: Path | None = None, runs_dir: Path = Path("runs"), n_boot: int = 1000,
                  workers: int | None = None, progress: bool = True, resume: bool = False,
                  log: Callable[[str], None] = lambda _: None, forgetting: bool = False,
                  limits: ReadLimits = DEFAULT_LIMITS) -> dict:
    """``ecgnet train`` with ``--manifest`` and/or ``--from``: the config (the file's, or the source run's
    with the small-data schedule; ``--set`` on top), the collection (the manifest, else PTB-XL for the
    config's task), then :func:`train_collection`."""
    from ecgnet.config import load_config

    if mode is not None and source is None:
        raise ECGNetError("--mode applies to fine-tuning: give --from NAME|RUN")
    if folds is not None and leave_out is not None:
        raise ECGNetError("--folds K and --leave-out source are two kinds of cross-validation: give one")
    if forgetting and source is None:  # said before any data is read
        from ecgnet.training.forgetting import check_forgetting

        check_forgetting(None)
    src = None
    if source is not None:
        from ecgnet.training.finetune import NEW_CLASSES_MODE, default_mode, finetune_config, keeps_head, load_source

        src = load_source(source)
        base = load_config(config_path) if config_path else None
        if base is not None and base.model != src.config.model:  # the network is the source's, whatever -c says
            log(f"note: fine-tuning keeps {source}'s model ({src.config.model.name}); the model section of "
                f"{config_path} ({base.model.name}) is not used, its training and data settings are")
        config = finetune_config(src, base, overrides, mode or NEW_CLASSES_MODE)  # the task, until the classes are read
    elif config_path is None:
        raise ECGNetError("train: give --config C.yaml (or --from NAME|RUN to fine-tune a trained model)")
    else:
        config = load_config(config_path, overrides)
    if manifest is not None:
        from ecgnet.data.collections import read_manifest

        collection = read_manifest(manifest, label_map, skip_bad)
    else:
        from ecgnet.data.collections import ptbxl_collection

        if label_map is not None:
            raise ECGNetError("--label-map applies to a manifest: give --manifest M.csv")
        if leave_out is not None:
            raise ECGNetError("--leave-out source: PTB-XL is one source; leave-one-source-out needs a manifest with "
                              "a source column (--manifest M.csv)")
        if folds is not None and folds != PTBXL_FOLDS:  # said before PTB-XL's signals are cached
            raise ECGNetError(f"--folds {folds}: PTB-XL comes in its own {PTBXL_FOLDS} folds — --folds {PTBXL_FOLDS} "
                              "cross-validates over them; other folds need a manifest without its fold column "
                              "(`ecgnet manifest` writes one)")
        collection = ptbxl_collection(data_root, config.data.task)
    for record, why in collection.skipped:
        log(f"skipped {record}: {why}")
    if src is not None:  # the mode (when not given) and the learning rate depend on whether the head is kept
        collection.refuse_misnamed(src.classes, "they would train new classes instead of keeping the run's")
        chosen = mode is None
        mode = mode or default_mode(src, collection.classes)
        kept = keeps_head(src, collection.classes)
        if kept:  # the run's own classes, its output layer kept: they mean what they meant to it
            collection = replace(collection, descriptions={**described_classes(src.info, collection.classes),
                                                           **collection.descriptions})
        if kept and len(collection.classes) < len(src.classes):
            log(f"classes: {', '.join(collection.classes)} (some of the run's {', '.join(src.classes)}: their rows of its "
                "output layer are kept)")
        if not kept:  # a new output layer: say for which classes, and name a likely typo
            new = [c for c in collection.classes if c not in src.classes]
            log(f"classes: {', '.join(collection.classes)} (the run predicts {', '.join(src.classes)}; "
                f"new: {', '.join(new) or 'none'})")
            misses = collection.near_misses(src.classes)
            if misses and chosen and len(misses) == len(new) and len(collection.classes) == len(src.classes):
                # the run's classes but for a typo: as written, a new output layer would replace the run's for all
                said = ", ".join(f"'{c}' (the run's '{r}'?)" for c, r in misses)
                raise ECGNetError(f"{collection.info.get('manifest', collection.name)}: class(es) {said} are not the "
                                  "run's: as written, a new output layer would replace the run's for every class "
                                  "(--mode head). Rename the manifest's column or map it with --label-map; to train "
                                  "new classes of these names, give --mode head or --mode full")
            for c, r in misses:
                log(f"warning: class '{c}': did you mean the run's '{r}'? A class the run does not predict "
                    "gets a new output layer (rename the manifest's column, or map it with --label-map)")
        how = {"full": "every layer trained", "head": "the encoder frozen, the output layer trained"}.get(mode, mode)
        log(f"fine-tuning {src.name}: --mode {mode}, {how}" + (" (the default for " + ("the run's own classes)" if kept
            else "new classes)") if chosen else "") + ("; the run's output layer is kept" if kept else
            f"; a new output layer replaces the run's ({', '.join(src.classes)})"))
        config = finetune_config(src, base, overrides, mode, classes=collection.classes)
    return train_collection(collection, config, runs_dir, src, mode, folds, leave_out, progress=progress,
                            n_boot=n_boot, skip_bad=skip_bad, workers=workers, resume=resume, log=log,
                            forgetting=forgetting, data_root=data_root, limits=limits)


def format_summary(summary: dict) -> str:
    """What ``ecgnet train --manifest`` prints at the end."""
    lines = [f"{summary['records']} records ({summary['skipped']} skipped)"]
    cv = summary.get("cv")
    if cv:
        lines.append(f"{cv['protocol']['kind']} cross-validation, pooled out-of-fold macro AUC "
                     f"{format_auc(cv['pooled']['macro_auc'])}")
        if few := few_cases(cv["pooled"]):
            lines.append(f"warning: {few}")
        if cv.get("zero_shot"):
            lines.append(f"zero-shot on the same records: {format_auc(cv['zero_shot']['macro_auc'])}")
        vs = cv.get("vs_zero_shot")
        if vs:
            lines.append(f"fine-tuned − zero-shot: {vs['diff']:+.3f} [{vs['low']:+.3f}, {vs['high']:+.3f}], "
                         f"one-sided p = {vs['p_value']:.3f} (paired bootstrap)")
        lines += [f"warning: {w}" for w in cv.get("threshold_warnings", [])]
    for split, m in (summary.get("scores") or {}).items():
        lines.append(f"{split}: macro AUC {format_auc(m.get('macro_auc'))}")
        lines += [f"warning: {split}: {w}" for w in split_warnings(split, m)]  # those the run's report lists
    if summary.get("forgetting"):
        from ecgnet.training.forgetting import forgetting_lines

        lines += forgetting_lines(summary["forgetting"])
    lines.append(f"Run written to {summary['run']}")
    return "\n".join(lines)

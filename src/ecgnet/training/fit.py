"""Train one config end to end: folds 1–8 train, fold 9 selects (checkpoint + early stopping on macro
AUC), then the best weights are saved and evaluated on folds 9 and 10 in the run directory."""

from __future__ import annotations

import copy
import json
import os
import random
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, EMAWeightAveraging, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from ecgnet.config import Config, dump_config, load_config
from ecgnet.data.dataset import PTBXL, CropDataset
from ecgnet.evaluation.evaluate import evaluate_model, report_info
from ecgnet.evaluation.metrics import macro_auc
from ecgnet.evaluation.report import write_run_report
from ecgnet.errors import ECGNetError
from ecgnet.fileio import check_writable, write_text
from ecgnet.pretrain.weights import load_pretrained
from ecgnet.quiet import quiet_dependencies
from ecgnet.runs import INCOMPLETE, count_parameters, load_run, mark_complete, mark_incomplete, provenance, save_model
from ecgnet.runs import members as run_members
from ecgnet.runs.directory import (build_run_model, check_resumed_data, check_same_data, first_process,
                                   mark_reports_pending, record_data, reports_pending, resume_command)
from ecgnet.runs.profiles import list_profiles
from ecgnet.training import auxiliary
from ecgnet.training.checkpoint_io import AtomicCheckpointIO, clear_checkpoints
from ecgnet.training.end_of_run import say_reports_only, writing_reports
from ecgnet.training.interrupt import interruptible
from ecgnet.training.length_batches import length_grouped_loader
from ecgnet.training.losses import make_loss
from ecgnet.training.progress import progress_callbacks
from ecgnet.training.distributed import Indexed, hardware
from ecgnet.training.module import ClassifierModule
from ecgnet.training.resume import ResumeState, check_versions, record_session, record_versions
from ecgnet.training.sampling import epoch_sampler
from ecgnet.training.swa import EpochWeightAveraging


def fit_frontends(model: torch.nn.Module, train_signal) -> None:
    """Frontends with training statistics (e.g. per-lead standardisation) learn them from folds 1–8.
    Only the outermost module with a ``fit`` is called: it fits what it contains."""
    fitted: list[str] = []
    for name, module in model.named_modules():
        if module is model or not hasattr(module, "fit") or any(name.startswith(f + ".") for f in fitted):
            continue
        module.fit(train_signal)
        fitted.append(name)


def train(config: Config, data_root: Path, runs_dir: Path = Path("runs"), resume: bool = False,
          cache_dir: Path | None = None, progress: bool = True, n_boot: int = 1000,
          callbacks: list | None = None, data=None, model: torch.nn.Module | None = None,
          extra_info: dict | None = None, post_fit=None, finish: bool = True) -> tuple[Path, dict]:
    """``callbacks``: extra Lightning callbacks for the gradient training (e.g. a sweep's pruner).
    ``data``: another labelled collection instead of PTB-XL (:class:`~ecgnet.data.collections.CollectionData`,
    e.g. a manifest, whose rows its caller scores and reports: :mod:`ecgnet.training.once_report`; PTB-XL as a
    collection is evaluated here, as PTB-XL is); ``model``: start from these weights
    (fine-tuning: the frontends keep their statistics) instead of a new model; ``extra_info``: added to run.json;
    ``post_fit(model)``: applied to the trained model before it is saved and evaluated (fine-tuning's weight
    interpolation, ``training.finetune_alpha``). torch's thread count and the random generators (Python, NumPy,
    torch; Lightning's seed variables) are as they were when this returns: ``training.threads`` and ``seed``
    apply to the training only, so a notebook's own random draws after it are not reseeded.
    Once the model is saved the run is *reports pending* (:mod:`ecgnet.training.end_of_run`), complete once its
    reports are written; ``finish`` False leaves it pending for the caller, which writes more reports (a
    manifest run's cv/ or scores) and marks it complete. ``resume`` of a run whose reports alone are pending
    writes them without training."""
    with process_state_kept():
        return _train(config, data_root, runs_dir, resume, cache_dir, progress, n_boot, callbacks, data, model,
                      extra_info, post_fit, finish)


@contextmanager
def process_state_kept():
    """What training changes for the whole process — torch's thread count, the random generators (Python, NumPy,
    torch, CUDA) and Lightning's seed variables — put back as it was on the way out, also after a refusal or an
    interrupt (Lightning's ``isolate_rng`` restores on success only)."""
    threads = torch.get_num_threads()
    generators = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda_generators = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    seed_variables = {name: os.environ.get(name) for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")}
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        random.setstate(generators[0]), np.random.set_state(generators[1]), torch.set_rng_state(generators[2])
        if cuda_generators is not None:
            torch.cuda.set_rng_state_all(cuda_generators)
        elif torch.cuda.is_initialized():  # first touched by the training, which seeded it: not left at the run's seed
            torch.cuda.seed_all()
        for name, value in seed_variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _train(config: Config, data_root: Path, runs_dir: Path, resume: bool, cache_dir: Path | None, progress: bool,
           n_boot: int, callbacks: list | None, data, model: torch.nn.Module | None, extra_info: dict | None,
           post_fit, finish: bool) -> tuple[Path, dict]:
    if config.training.finetune_alpha is not None and post_fit is None:
        from ecgnet.training.finetune import ALPHA_NEEDS_SOURCE

        raise ECGNetError(ALPHA_NEEDS_SOURCE)
    run_dir = runs_dir / config.name
    origin = provenance()  # at launch: the code that trains, not the tree at the end
    collection, split = (extra_info or {}).get("collection"), (extra_info or {}).get("split_sha256")  # None: PTB-XL
    trained = resume and reports_pending(run_dir)  # saved by an earlier session: only its reports are missing
    continuing = not trained and resume and (run_dir / "checkpoints" / "last.ckpt").is_file()
    if trained or continuing:  # refused before anything is written
        pin_or_check_config(config, run_dir / ("config.yaml" if trained else "checkpoints/config.yaml"), resuming=True)
        check_resumed_data(run_dir, collection, split)
    if not resume:  # a finished run of other data (PTB-XL vs a manifest) is not replaced: refused here
        check_same_data(run_dir, collection)
    check_writable(run_dir / INCOMPLETE)  # a read-only or full runs folder: refused before any data is read
    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    L.seed_everything(config.seed, workers=True, verbose=False)
    if data is None:
        data = PTBXL(data_root, config.data.task, config.data.sampling_rate, cache_dir, config.data.in_memory)
    train_split = data.split("train", config.data.max_train_records, config.seed)
    val_split = data.split("val")
    if trained:
        if not first_process():
            return run_dir, None  # rank 0 writes the reports
        say_reports_only(run_dir)
        model, _, info = load_run(run_dir, reports_pending_ok=True)  # no Lightning, no new session in run.json
        return run_dir, write_reports(run_dir, model, data, config, info, origin, n_boot, progress, finish)
    fit_statistics = model is None
    if model is None:
        model = build_run_model(config, len(data.classes))  # an ensemble: its members loaded from their runs
    if config.training.init_from:  # a missing or ill-fitting encoder is refused before the run folder is touched
        load_pretrained(copy.deepcopy(model), config.training.init_from)
    # the run directory is touched only now, once data and model are known good: a refused config (a bad model
    # parameter, a member not found, an encoder that does not fit) leaves a finished run of the same name as it was
    if not resume and (run_dir / "run.json").is_file() and not (run_dir / INCOMPLETE).exists():
        print(f"note: replacing the finished run {run_dir}" + (" (its site profiles stop applying: calibrate "
              "again)" if list_profiles(run_dir) else ""), file=sys.stderr)
    mark_incomplete(run_dir, config, origin)  # the first write; the last step deletes it
    if not continuing and not hasattr(model, "fit_on_validation"):
        record_data(run_dir, collection, split)  # what a --resume must train on again
    if hasattr(model, "fit_on_validation"):  # late fusion: members are trained runs already
        stats = fit_late(model, val_split, config)
    else:
        fitted, fit_split, loss = model, train_split, None
        if config.training.auxiliary_task:  # a training-only second head; `model` is what is saved
            fitted, fit_split, loss = auxiliary.attach(model, data, train_split, config)
        stats = fit_lightning(fitted, config, fit_split, val_split, run_dir, resume, progress, callbacks, loss,
                              fit_statistics, data, origin)
        if "global_rank" in stats:  # another process of a distributed run: rank 0 writes the run
            return run_dir, None
    model.cpu().eval()
    if post_fit is not None:
        post_fit(model)
    info = {"name": config.name, "task": config.data.task, "classes": data.classes,
            "class_descriptions": data.descriptions, "seed": config.seed,
            "model": config.model.name, "parameters": count_parameters(model),
            "train_records": len(train_split.ecg_ids), **stats,
            "metadata_scaler": {"mean": data.metadata_scaler.mean.tolist(), "std": data.metadata_scaler.std.tolist()},
            **origin, **(extra_info or {})}
    save_model(run_dir, model, config, info)
    mark_reports_pending(run_dir, origin)
    return run_dir, write_reports(run_dir, model, data, config, info, origin, n_boot, progress, finish)


def write_reports(run_dir: Path, model: torch.nn.Module, data, config: Config, info: dict, origin: dict,
                  n_boot: int, progress: bool, finish: bool) -> dict:
    """The saved model's evaluation and report (PTB-XL's folds 9 and 10; nothing for a collection scored by its
    own protocol), then, with ``finish``, the run marked complete. Returns the metrics per split."""
    splits = getattr(data, "evaluated_splits", ("val", "test"))  # () : a collection scored by its own protocol
    with writing_reports(run_dir, origin):
        results, predictions = evaluate_model(model, data, config, run_dir, splits, n_boot=n_boot,
                                              progress=progress) if splits else ({}, {})
        if "test" in results:
            _, y_test, p_test = predictions["test"]
            write_run_report(run_dir, y_test, p_test, data.classes, results["test"], results["val"],
                             report_info(info))
    if finish:
        mark_complete(run_dir)
    return results


def fit_lightning(model, config: Config, train_split, val_split, run_dir: Path, resume: bool,
                  progress: bool, extra_callbacks: list | None = None, loss: torch.nn.Module | None = None,
                  fit_statistics: bool = True, data=None, origin: dict | None = None) -> dict:
    """Gradient training with Lightning; the best fold-9 checkpoint's weights end up in ``model``.
    ``loss``: instead of the config's (multi-task training passes its own); ``fit_statistics``: False
    keeps the frontends' statistics (a fine-tuned model standardises leads as it was trained to);
    ``data``: the dataset the splits come from (distillation from unlabelled records reads its scaling);
    ``origin``: this session's provenance, kept with the earlier sessions' (a resumed run's ``sessions``)."""
    t, crop = config.training, config.data.window
    pretrained = {}
    if t.init_from:  # frontend statistics and encoder from `ecgnet pretrain`, so leads are standardised as then
        pretrained = load_pretrained(model, t.init_from)
    elif fit_statistics:
        fit_frontends(model, train_split.signal)
    main_y = train_split.y[:, :val_split.y.shape[1]]  # without an auxiliary task's targets
    loss = loss or make_loss(t.loss, train_split.y, t.focal_gamma)
    train_set = CropDataset(train_split, crop, draw_segments=True)  # a long record: one of its 10 s segments
    if t.distill_teacher:  # each crop's target: its labels and the teacher's probabilities (ecgnet.distill)
        from ecgnet.distill.data import attach

        train_set, loss = attach(config, train_split, crop, loss, data=data, progress=progress)
    sampler = epoch_sampler(main_y, t.sampler, config.seed, len(train_set), t.min_epoch_crops)
    drawn = len(sampler) if sampler is not None else len(train_set)
    # a whole-record config on records under 10 s: batches of one length, never a repeated row (length_batches.py)
    train_loader = length_grouped_loader(train_set, sampler, config, drop_last=drawn > t.batch_size)
    if train_loader is None:
        train_loader = DataLoader(train_set, batch_size=t.batch_size, shuffle=sampler is None,
                                  sampler=sampler, drop_last=drawn > t.batch_size, num_workers=t.num_workers)
    val_loader = DataLoader(Indexed(CropDataset(val_split)), batch_size=256, num_workers=t.num_workers)
    # a manifest's records over or under 10 s: each epoch scores them as the run is scored (segments, own length)
    whole = val_split.signal if getattr(val_split.signal, "segments", None) is not None else None
    module = ClassifierModule(model, config, loss, val_records=whole)
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val_macro_auc",
                                 mode="max")
    # last.ckpt every epoch, after best.ckpt (save_last=True writes it only with a new best in Lightning 2.6)
    latest = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", enable_version_counter=False)
    drawing = train_loader.sampler  # the oversampler's or the length batches' own generator, if any
    state = ResumeState([drawing.generator] if getattr(drawing, "generator", None) is not None else [])  # resume.py
    callbacks = [checkpoint, latest, EarlyStopping("val_macro_auc", mode="max", patience=t.patience), state]
    shown, progress = progress_callbacks(progress)  # a bar on a terminal, one line an epoch in a log
    callbacks += shown
    if t.ema_decay is not None:  # validation, checkpoints and so the saved model use the averaged weights
        callbacks.append(EMAWeightAveraging(decay=t.ema_decay))
    if t.swa_start_epoch is not None:  # the same for the plain average of epoch ends (swa.py)
        callbacks.append(EpochWeightAveraging(t.swa_start_epoch))
    callbacks += extra_callbacks or []
    quiet_dependencies()  # again now: importing Lightning resets its loggers to INFO
    trainer = L.Trainer(max_epochs=t.epochs, accelerator=t.accelerator, devices=t.devices,
                        num_nodes=t.num_nodes, strategy=t.strategy, precision=t.precision,
                        accumulate_grad_batches=t.accumulate_grad_batches,
                        logger=CSVLogger(run_dir, name="", version="logs"), callbacks=callbacks,
                        plugins=[AtomicCheckpointIO()],
                        enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
                        log_every_n_steps=20, deterministic="warn")
    last, log = run_dir / "checkpoints" / "last.ckpt", run_dir / "logs" / "metrics.csv"
    resuming = resume and last.is_file()
    if not resuming:  # a resume was checked by train() before anything was written
        clear_checkpoints(run_dir / "checkpoints")
        pin_or_check_config(config, run_dir / "checkpoints" / "config.yaml", resuming=False)
    sessions = record_session(run_dir / "checkpoints", origin or provenance(), resuming) if first_process() else []
    start = time.perf_counter()
    advice = resume_command(run_dir, (origin or {}).get("command"))
    with interruptible(trainer, f"training stopped; the run is incomplete — resume with `{advice}`"):
        trainer.fit(module, train_loader, val_loader, ckpt_path=last if resuming else None)
    wall = time.perf_counter() - start
    if not trainer.is_global_zero:
        return {"global_rank": trainer.global_rank}  # rank 0 saves and evaluates the run
    best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
    module.load_state_dict(best["state_dict"])
    history = state.write_history(log)  # every session's epochs, from the checkpoints (resume.py)
    epochs = history.dropna(subset=["val_macro_auc"])
    return {"epochs_run": int(epochs["epoch"].max()) + 1,
            "best_epoch": int(epochs.loc[epochs["val_macro_auc"].idxmax(), "epoch"]) + 1,
            "best_val_macro_auc": float(epochs["val_macro_auc"].max()),
            "training_seconds": round(float(history["epoch_seconds"].sum()), 1),
            "wall_seconds_this_session": round(wall, 1), "hardware": hardware(trainer), **pretrained,
            **({"sessions": sessions} if len(sessions) > 1 else {}),  # resumed: every session, the first first
            **({"unlabelled_records": len(train_set) - len(train_split.ecg_ids)} if t.distill_unlabelled else {})}


def pin_or_check_config(config: Config, saved: Path, resuming: bool) -> None:
    """A fresh start (``resuming`` False) pins its config and the ecgnet version beside its checkpoints (at
    ``saved``); a resumed run must match both (the schedule, data and model are in the checkpoint), or this
    raises naming what changed."""
    if not resuming:
        write_text(saved, dump_config(config))
        record_versions(saved.parent)
        return
    check_versions(saved.parent)
    if not saved.is_file():
        return  # checkpoints from before this check: nothing to compare with
    before = load_config(saved).model_dump()
    now = config.model_dump()
    changed = sorted(f"{section}.{key}" for section in now if isinstance(now[section], dict)
                     for key in now[section] if now[section][key] != before.get(section, {}).get(key)) + \
        sorted(k for k in now if not isinstance(now[k], dict) and now[k] != before.get(k))
    changed = [c for c in changed if c not in ("training.threads", "training.num_workers", "data.in_memory")]
    if changed:
        raise ECGNetError(f"{saved.parent}: cannot resume with a changed config ({', '.join(changed)}); "
                          "resume with the config the run started with, or train afresh without --resume")


def fit_late(model, val_split, config: Config) -> dict:
    """Late fusion learns only its combiner, on fold 9; its cost is its members' training time. Its
    fold-9 score for model selection comes from logits that did not see their record (cross-fitted)."""
    start = time.perf_counter()
    held_out = model.fit_on_validation(val_split.signal, val_split.metadata, val_split.y)
    members = {m: json.loads((p / "run.json").read_text()) for m, (p, _) in run_members.resolve(config).items()}
    return {"fit_seconds": round(time.perf_counter() - start, 1),
            "best_val_macro_auc": macro_auc(val_split.y, held_out),
            "val_macro_auc_source": "out-of-fold fold-9 logits (5-fold cross-fitting of the stack)"
            if model.method == "stacking" else "fold-9 predictions (averaging fits nothing)",
            "training_seconds": round(sum(i.get("training_seconds", 0) for i in members.values()), 1),
            "members": {m: {"run": i["name"], "git_revision": i.get("git_revision")} for m, i in members.items()}}

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
  members/             an ensemble's members, described inside the run (see ecgnet.runs.members)
  trained_on.txt       a run trained on a manifest: its training and validation records, a line each: resolved
                       path, signal size, fingerprint, tab-separated (ecgnet.data.fingerprints; evaluate and
                       calibrate say how many of the records they score are among them, by path or fingerprint)
  checkpoints/         for resuming (not committed): last.ckpt (every epoch), best.ckpt (fold-9 best),
                       config.yaml and versions.json (what a resume must match)
  INCOMPLETE           only while training: see below
```

A run directory is complete, or says it is not: training writes ``INCOMPLETE`` (one line: when and by
what command it started, how to resume) before anything else in the folder, and deletes it as its very
last step, once run.json, model.safetensors, val/, test/ and the report are written. :func:`load_run`
— behind ``evaluate``, ``predict``, ``export``, ``compare`` and the server — refuses a folder with the
marker, so a run killed mid-way (or one being retrained) is never used as if it were whole.

Once the model is saved, the marker is rewritten to say *reports pending* (:func:`mark_reports_pending`): the
training is done and only the reports are missing (val/, test/, a manifest run's cv/ or scores, the report).
A run cut off or failed there is still refused, with the command that writes them; that command
(``ecgnet train … --resume``) writes only the reports, without entering Lightning or adding a training session.

Integrity and safety: :func:`load_run` refuses weights whose SHA-256 differs from run.json's
``weights_sha256`` (runs written before the field load without the check), and reads a run directory
through safetensors, JSON and YAML (``yaml.safe_load``) only — never a pickle, so a run from elsewhere
cannot run code. The one exception is ``checkpoints/``: Lightning's ``.ckpt`` files are pickles, loaded
only by ``ecgnet train --resume`` (``last.ckpt``) and at the end of training (``best.ckpt``, with
``torch.load(weights_only=True)``), from the run directory that the same command writes in the user's
own ``--runs-dir``; ``evaluate``, ``predict``, ``compare`` and the server never open them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ecgnet.config import Config, dump_config, load_config
from ecgnet.errors import ECGNetError
from ecgnet.fileio import atomic_path, remove_leftovers, write_json, write_text
from ecgnet.models import build_model
from ecgnet.models.fusion.late import Member
from ecgnet.runs import members

INCOMPLETE = "INCOMPLETE"
REPORTS_PENDING = "reports pending"  # in INCOMPLETE once the model is saved: see mark_reports_pending
PENDING_LEAD = "without training again, with `"  # before the command a reports-pending marker names
TRAINED_ON = "trained_on.txt"
DATA_FILE = "data.json"  # beside the checkpoints: the data a cut-off training started on


def save_model(run_dir: Path, model: torch.nn.Module, config: Config, info: dict) -> None:
    """config.yaml, model.safetensors and run.json (with the weights' SHA-256); an ensemble's member
    descriptions into ``members/``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", dump_config(config))
    if members.is_ensemble(config):
        members.store(run_dir, config)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    data = sorted_metadata(save_safetensors(state, metadata={"name": config.name,
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


def sorted_metadata(data: bytes) -> bytes:
    """safetensors writes its metadata in hash order, which changes from process to process, so the same
    weights gave files (and SHA-256s) that differed: the header is rewritten with the metadata sorted
    (same length, same tensors and offsets)."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    return data[:8] + text.ljust(n, b" ") + data[8 + n:] if len(text) <= n else data


def resume_command(run_dir: Path, started_by: str | None = None) -> str:
    """How to finish a cut-off run: the command that started it with --resume (a manifest run needs its
    --manifest, --from, --folds … again), a sweep's own command (the study goes on; the cut-off trial is
    marked failed), else ``ecgnet train -c RUN/config.yaml --runs-dir RUNS --resume`` (a PTB-XL run)."""
    words = (started_by or "").split()
    if words[:2] == ["ecgnet", "train"]:
        return started_by if "--resume" in words else f"{started_by} --resume"
    if words[:2] == ["ecgnet", "sweep"]:
        return started_by
    return f"ecgnet train -c {run_dir / 'config.yaml'} --runs-dir {run_dir.parent} --resume"


def require_started_run(run_dir: Path) -> None:
    """``--resume`` needs a run that was started: a mistyped --runs-dir or name would otherwise train it all
    again from scratch without a word."""
    if not Path(run_dir).is_dir():
        raise ECGNetError(f"--resume: no run at {run_dir} to continue (a mistyped --runs-dir or name?); "
                          "leave out --resume to train it from the start")


def mark_incomplete(run_dir: Path, config: Config, started: dict) -> None:
    """A training session's first writes in ``run_dir``: the ``INCOMPLETE`` marker, then the config
    (what ``--resume`` is given). Temporary files a killed session left behind are deleted."""
    when, command = started.get("date", "?"), started.get("command") or "?"
    write_text(run_dir / INCOMPLETE, f"training started {when} by `{command}` and has not finished; resume "
                                     f"with `{resume_command(run_dir, command)}` or delete this folder\n")
    write_text(run_dir / "config.yaml", dump_config(config))
    if first_process():
        remove_leftovers(run_dir)  # one process of a distributed run: the others start while it writes


def mark_reports_pending(run_dir: Path, session: dict) -> None:
    """After the model is saved (config.yaml, run.json, model.safetensors): ``INCOMPLETE`` says the training is
    done and only the reports remain, which ``--resume`` writes without training again (:func:`reports_pending`).
    ``session``: the provenance of the session that saved it (its date and command). A sweep's trial keeps the
    plain marker: the sweep's command goes on with the study, it does not write a trial's reports."""
    when, command = session.get("date", "?"), session.get("command") or "?"
    if command.split()[:2] == ["ecgnet", "sweep"]:
        return
    write_text(run_dir / INCOMPLETE, f"the model was trained and saved by `{command}` (started {when}); "
                                     f"{REPORTS_PENDING}: its reports (val/, test/, cv/, the report) are not written "
                                     f"yet; write them, {PENDING_LEAD}{resume_command(run_dir, command)}` or delete "
                                     "this folder\n")


def reports_pending(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a run whose model is trained and saved and whose reports are not written yet."""
    run_dir = Path(run_dir)
    try:
        said = (run_dir / INCOMPLETE).read_text(errors="replace")
    except OSError:
        return False
    return REPORTS_PENDING in said and (run_dir / "run.json").is_file() and (run_dir / "model.safetensors").is_file()


def first_process() -> bool:
    """Whether this is the first process of a (possibly distributed) run, before Lightning says so: the one
    that writes what every process would otherwise write at once."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def check_same_data(run_dir: Path, collection: dict | None) -> None:
    """A finished run is replaced only by a training on the same data (PTB-XL, or the same manifest): the
    own-data guide's `train --config configs/baseline_time.yaml --manifest my.csv` replaced the committed
    PTB-XL run runs/baseline_time with a note. ``collection``: the new run's (run.json's ``collection``)."""
    run_dir = Path(run_dir)
    if (run_dir / INCOMPLETE).exists():
        return
    try:
        before = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return
    old, new = _trained_on(before.get("collection") if isinstance(before, dict) else None), _trained_on(collection)
    if old != new:
        raise ECGNetError(f"{run_dir} is a finished run trained on {old}; this training is on {new}: give it "
                          "another name (--set name=NAME) or --runs-dir, or delete the folder to replace it")


def check_resumed_data(run_dir: Path, collection: dict | None, split_sha256: str | None = None) -> None:
    """--resume continues a run on the data it started on (resumed without --manifest, a manifest run trained
    on all of PTB-XL and crashed) and, for a collection, on the same split of its records (a
    cross-validation fold resumed under other --folds is another fold)."""
    try:
        before = json.loads((Path(run_dir) / "checkpoints" / DATA_FILE).read_text())
        started_on = before["trained_on"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # checkpoints from before this record
    if started_on != _trained_on(collection):
        raise ECGNetError(f"{run_dir}: started on {started_on}, resumed on {_trained_on(collection)}: resume with "
                          "the data it started on (the command in its INCOMPLETE file), or train afresh without "
                          "--resume")
    if before.get("split_sha256") not in (None, split_sha256):
        raise ECGNetError(SPLIT_CHANGED.format(run_dir=run_dir))


SPLIT_CHANGED = ("{run_dir}: trained on another split of the records (another --folds, --leave-out, manifest or "
                 "seed); resume with the options it started with, or train afresh without --resume")


def record_data(run_dir: Path, collection: dict | None, split_sha256: str | None = None) -> None:
    """What a training session trains on, beside its checkpoints (for :func:`check_resumed_data`)."""
    write_json(Path(run_dir) / "checkpoints" / DATA_FILE,
               {"trained_on": _trained_on(collection), "split_sha256": split_sha256})


def _trained_on(collection: dict | None) -> str:
    if not collection:
        return "PTB-XL"
    manifest = collection.get("manifest")
    return f"the manifest {Path(manifest).resolve()}" if manifest else f"the collection '{collection.get('name')}'"


def mark_complete(run_dir: Path) -> None:
    """The last step of training: everything else in ``run_dir`` is written."""
    (run_dir / INCOMPLETE).unlink(missing_ok=True)


def refuse_incomplete(run_dir: Path, reports_pending_ok: bool = False) -> None:
    """One error for a run with the ``INCOMPLETE`` marker, naming the command that finishes it; a run whose
    reports alone are pending passes with ``reports_pending_ok`` (training writing them)."""
    marker = run_dir / INCOMPLETE
    if marker.exists():
        if reports_pending_ok and reports_pending(run_dir):
            return
        try:
            text = " ".join(marker.read_text(errors="replace").split())
        except OSError:
            text = "marker unreadable"
        said = next((text.split(lead)[1].split("`")[0] for lead in ("resume with `", PENDING_LEAD) if lead in text),
                    resume_command(run_dir))
        if reports_pending(run_dir):
            raise ECGNetError(f"{run_dir}: {REPORTS_PENDING} — its model is trained and saved, but its reports are "
                              f"not written ({marker.name}); write them, without training again, with `{said}`, "
                              "or delete it")
        started = text.split(" and has not finished")[0]
        raise ECGNetError(f"{run_dir}: training did not finish ({marker.name}: {started[:300]}); resume with "
                          f"`{said}` or delete it")


def read_description(run_dir: Path) -> tuple[Config, dict]:
    """(config, run info) of a run directory (or of an ensemble member stored in one)."""
    config = load_config(run_dir / "config.yaml")
    try:
        info = json.loads((run_dir / "run.json").read_text())
        info["classes"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ECGNetError(f"{run_dir / 'run.json'}: not a valid run description ({e})") from e
    return config, info


def build_run_model(config: Config, num_classes: int, run_dir: Path | None = None,
                    weights_inside: bool | None = None) -> torch.nn.Module:
    """The model ``config`` describes. An ensemble's members are built from their descriptions stored in
    ``run_dir`` when its weights come with it (``weights_inside``, by default: ``run_dir`` has its
    model.safetensors), or else loaded, with their weights, from the member runs the config names — how an
    ensemble is made (see :mod:`ecgnet.runs.members`)."""
    if not members.is_ensemble(config):
        return build_model(config.model.name, num_classes, **config.model.params)
    if weights_inside is None:
        weights_inside = run_dir is not None and (Path(run_dir) / "model.safetensors").is_file()
    built = {}
    for name, (path, stored) in members.resolve(config, run_dir, weights_inside).items():
        if stored:
            member_config, info = read_description(path)
            model = build_run_model(member_config, len(info["classes"]), path, weights_inside=True)
        else:
            model, member_config, info = load_run(path)
        if len(info["classes"]) != num_classes:
            raise ECGNetError(f"ensemble member {path} predicts {len(info['classes'])} classes, not {num_classes}")
        data = member_config.data
        built[name] = Member(model.requires_grad_(False), data.window, data.stride, data.aggregate)
    return build_model(config.model.name, num_classes, **{**config.model.params, "members": built})


def check_run_dir(run_dir: Path, reports_pending_ok: bool = False) -> None:
    """A finished run directory (its config, run.json and weights, no training in progress), else one error;
    ``reports_pending_ok``: or a trained one whose reports are being written (:func:`mark_reports_pending`)."""
    refuse_incomplete(run_dir, reports_pending_ok)
    for name in ("config.yaml", "run.json", "model.safetensors"):
        if not (run_dir / name).is_file():
            raise ECGNetError(f"{run_dir / name}: missing — {run_dir} is not an ECGNet run directory")


def load_run(path: str | Path, reports_pending_ok: bool = False) -> tuple[torch.nn.Module, Config, dict]:
    """A run directory (or its model.safetensors), or a bundled model's name as :meth:`Run.open` takes it →
    (model in eval mode, config, run info). ``reports_pending_ok``: training's own reading of a run it saved and
    is writing the reports of (refused everywhere else)."""
    path = Path(path)
    if not path.exists():  # a shipped model's name ('long_time'), else the error naming both
        from ecgnet.runs.bundled import resolve_checkpoint

        path = resolve_checkpoint(path)
    run_dir = path.parent if path.suffix == ".safetensors" else path
    check_run_dir(run_dir, reports_pending_ok)
    config, info = read_description(run_dir)
    model = build_run_model(config, len(info["classes"]), run_dir)
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


def read_thresholds(run_dir: Path, classes: list[str]) -> dict[str, float] | None:
    """The thresholds of ``val/metrics.json`` per class (None if the run has no val/ metrics): chosen on
    fold 9 for a PTB-XL run, elsewhere for a run trained on a manifest (:func:`ecgnet.runs.describe.thresholds_origin`)."""
    path = Path(run_dir) / "val" / "metrics.json"
    if not path.is_file():
        return None
    per_class = json.loads(path.read_text()).get("per_class", {})
    return {c: per_class[c]["threshold"] for c in classes if "threshold" in per_class.get(c, {})}


def described_classes(info: dict, classes: list[str]) -> dict[str, str]:
    """{class: description} of ``classes`` as run.json's ``class_descriptions`` describes them: an empty one, or
    one that is the class's name (what earlier versions stored for a manifest's classes), is no description."""
    stored = info.get("class_descriptions") or {}
    return {c: str(stored[c]) for c in classes if stored.get(c) and stored[c] != c}


@dataclass
class Run:
    """A loaded run directory: its model (eval mode), config and run.json, and what predicting needs of
    them. :meth:`open` takes a path or a bundled model's name."""

    dir: Path
    model: torch.nn.Module
    config: Config
    info: dict = field(repr=False)

    @classmethod
    def open(cls, name_or_path: str | Path) -> "Run":
        from ecgnet.runs.bundled import resolve_checkpoint

        path = resolve_checkpoint(name_or_path)  # a path, or a bundled model's name
        model, config, info = load_run(path)
        return cls(path if path.is_dir() else path.parent, model, config, info)

    @property
    def name(self) -> str:
        return str(self.info.get("name") or self.dir.name)

    @property
    def classes(self) -> list[str]:
        return list(self.info["classes"])

    @property
    def descriptions(self) -> dict[str, str]:
        """{class: its description} for the classes the run describes (run.json's ``class_descriptions``). A class
        without one is absent; so is one whose stored description is its own name, as runs trained on a manifest
        before this version stored a class they did not describe."""
        return described_classes(self.info, self.classes)

    @property
    def rate(self) -> int:
        return self.config.data.sampling_rate

    @property
    def window(self) -> int | None:
        return self.config.data.window

    @property
    def stride(self) -> int:
        return self.config.data.stride

    @property
    def uses_metadata(self) -> bool:
        return model_uses_metadata(self.model)

    @property
    def reads_signal(self) -> bool:
        return model_reads_signal(self.model)

    @property
    def weights_sha256(self) -> str:
        return weights_sha256(self.dir, self.info)

    @cached_property
    def thresholds(self) -> dict[str, float] | None:
        return read_thresholds(self.dir, self.classes)

    @cached_property
    def thresholds_from(self) -> str | None:
        from ecgnet.runs.describe import thresholds_origin

        return thresholds_origin(self.dir)


def model_uses_metadata(model) -> bool:
    """Whether the model reads the patient metadata: its own metadata modality, or a late-fusion member's (an
    ensemble's members are runs: 5 of ensemble_greedy's 8 read it, and predict gave it none)."""
    if "metadata" in getattr(model, "modalities", ()):
        return True
    members = getattr(model, "members", None)
    return members is not None and any(model_uses_metadata(m) for m in members.values())


def model_reads_signal(model) -> bool:
    """Whether the model reads the ECG at all: not when its only modality is the patient metadata (the
    ``metadata`` runs), nor a late-fusion model all of whose members are such."""
    members = getattr(model, "members", None)
    if members is not None:
        return any(model_reads_signal(m) for m in members.values())
    return tuple(getattr(model, "modalities", ())) != ("metadata",)


def weights_sha256(run_dir: str | Path, info: dict | None = None) -> str | None:
    """The SHA-256 of the run's model.safetensors: run.json's record of it (``info``, or read; checked when
    the run loads), else the file's own; None without weights."""
    from ecgnet.checksum import sha256_file

    if info is None:
        try:
            info = json.loads((Path(run_dir) / "run.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            info = {}
    recorded = info.get("weights_sha256") if isinstance(info, dict) else None
    weights = Path(run_dir) / "model.safetensors"
    return recorded or (sha256_file(weights) if weights.is_file() else None)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

"""Kill a training run with SIGKILL again and again, resume it each time, and check what it ends as.

Trains one small config twice with ``ecgnet train``:

1. **uninterrupted**, once;
2. **killed**: started, killed with ``kill -9`` at a moment of the plan, resumed with
   ``ecgnet train -c RUN/config.yaml --resume`` (the command the run's ``INCOMPLETE`` marker names), killed
   again, …, ``--kills`` times, then resumed to the end.

The moments: **mid-epoch** (as a random training batch starts), **validation** (as a random batch of the
fold-9 validation starts), **checkpoint** (while ``last.ckpt`` or a staged ``best.ckpt`` is written: the
new file is complete beside its target, the rename not yet done), **run-dir** (while one of run.json,
model.safetensors, val/, test/ or the report is written, after training) and **random** (0–0.2 s after
a random one of the session's events, start-up included). The epoch kills aim at epochs drawn at random and sorted, so
they spread over the run (or at the epoch a session resumes with, if that is later). The
training processes are observed, not changed: this script runs ``ecgnet``'s CLI in a child that notes
each epoch, batch, validation batch and file write in a trace file (and pauses 0.3 s before each atomic
rename, so that a kill can land there); kills are aimed at those events, not at times, so a busy machine
does not move them. Each kill's ``moment`` says where it landed.

After each kill it checks: the run is marked ``INCOMPLETE`` and ``load_run`` (``evaluate``, ``predict``)
refuses it; every checkpoint present loads. At the end: the killed run is complete (no marker, run.json,
weights matching their SHA-256, no temporary or staged file left), its predictions read back, its epoch
log has every epoch with the uninterrupted run's fold-9 AUCs, and its fold-10 macro AUC is compared
with the uninterrupted run's (paired bootstrap of the difference; identical weights on the CPU).

    python -m benchmarks.kill_resume                # benchmarks/kill_resume.yaml (small baseline), 5 kills
    python -m benchmarks.kill_resume --kills 8 --seed 1 --config configs/baseline_time.yaml \
        --set data.max_train_records=3000 --set training.epochs=4

Writes ``benchmarks/results/kill_resume.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


WRITE_PAUSE = 0.3
KINDS = ("mid-epoch", "validation", "checkpoint", "random")
DEFAULT_CONFIG = "benchmarks/kill_resume.yaml"  # run from the repository root, as the other benchmarks


# --- the observed training process ------------------------------------------------------------

def child(trace: str, args: list[str]) -> None:
    """Run ``ecgnet ARGS``, noting epochs, validations and file writes in ``trace``."""
    def note(message: str) -> None:
        with open(trace, "a") as f:
            f.write(f"{time.time():.3f} {os.getpid()} {message}\n")

    import ecgnet.fileio as fileio  # before anything imports atomic_path by name

    original = fileio.atomic_path

    @contextlib.contextmanager
    def traced(path):
        with original(path) as tmp:
            yield tmp
            note(f"write {path}")  # the new file is whole beside its target; the rename comes next
            time.sleep(WRITE_PAUSE)

    fileio.atomic_path = traced
    from ecgnet.training import module

    start = module.ClassifierModule.on_train_epoch_start

    def on_train_epoch_start(self):
        note(f"train {self.current_epoch}")
        return start(self)

    def on_validation_epoch_start(self):
        note(f"validate {self.current_epoch}")

    def on_train_batch_start(self, batch, batch_idx):
        note(f"train-batch {self.current_epoch} {batch_idx}")

    def on_validation_batch_start(self, batch, batch_idx, dataloader_idx=0):
        note(f"validate-batch {self.current_epoch} {batch_idx}")

    cls = module.ClassifierModule
    cls.on_train_epoch_start, cls.on_validation_epoch_start = on_train_epoch_start, on_validation_epoch_start
    cls.on_train_batch_start, cls.on_validation_batch_start = on_train_batch_start, on_validation_batch_start
    from ecgnet.cli import app

    note("start")
    sys.argv = ["ecgnet", *args]
    app()


# --- the driver -------------------------------------------------------------------------------

class Session:
    def __init__(self, args: list[str], trace: Path, log: Path, first_epoch: int = 0):
        self.trace, self.start, self.first_epoch = trace, time.time(), first_epoch
        self.seen = len(read_trace(trace))
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.kill_resume", "--child", str(trace), "--",
                                          *args], stdout=out, stderr=subprocess.STDOUT)

    def events(self) -> list[tuple[float, str]]:
        return [(t, m) for t, pid, m in read_trace(self.trace)[self.seen:] if pid == self.proc.pid]

    def wait_for(self, match, since: float = 0.0, poll: float = 0.01) -> tuple[float, str] | None:
        """The first event of this session (at or after ``since``) that ``match`` accepts, waiting for
        it; None if the process ended first."""
        while True:
            ended = self.proc.poll() is not None
            for event in self.events():
                if event[0] >= since and match(event[1]):
                    return event
            if ended:
                return None
            time.sleep(poll)

    def nth_event(self, k: int) -> tuple[float, str] | None:
        """The session's ``k``-th event (from 1), waiting for it; None if the process ended first."""
        while True:
            ended = self.proc.poll() is not None
            events = self.events()
            if len(events) >= k:
                return events[k - 1]
            if ended:
                return None
            time.sleep(0.01)

    def sleep_until(self, when: float) -> tuple[float, str] | None:
        """Wait until ``when``: a pseudo-event, or None if the process ended first."""
        while time.time() < when:
            if self.proc.poll() is not None:
                return None
            time.sleep(0.02)
        return (time.time(), "timer")

    def kill(self) -> bool:
        if self.proc.poll() is not None:
            return False
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        return True


def read_trace(path: Path) -> list[tuple[float, int, str]]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) == 3:
            out.append((float(parts[0]), int(parts[1]), parts[2]))
    return out


def resumes_at(run_dir: Path) -> int:
    """The epoch a session started now begins with: the one after last.ckpt's."""
    import torch

    last = run_dir / "checkpoints" / "last.ckpt"
    return torch.load(last, map_location="cpu", weights_only=True)["epoch"] + 1 if last.is_file() else 0


def epoch_of(message: str, word: str) -> int | None:
    parts = message.split()
    return int(parts[1]) if len(parts) == 2 and parts[0] == word else None


def batch_of(message: str, word: str) -> tuple[int, int] | None:
    """(epoch, batch) of a ``train-batch`` / ``validate-batch`` event."""
    parts = message.split()
    return (int(parts[1]), int(parts[2])) if len(parts) == 3 and parts[0] == f"{word}-batch" else None


def phase_seconds(trace: list[tuple[float, int, str]]) -> dict:
    """Seconds of the shortest training epoch (train start → validation start) and validation (→ the
    epoch's checkpoint write), and of the whole session, from the uninterrupted run's trace: a kill
    aimed at a random point of a phase then lands inside it unless the machine slows down."""
    train_at = {epoch_of(m, "train"): t for t, _, m in trace if epoch_of(m, "train") is not None}
    val_at = {epoch_of(m, "validate"): t for t, _, m in trace if epoch_of(m, "validate") is not None}
    ckpt_at = [t for t, _, m in trace if m.startswith("write") and m.endswith("last.ckpt")]
    train = sorted(val_at[e] - train_at[e] for e in train_at if e in val_at)
    val = sorted(c - val_at[e] for e, c in zip(sorted(val_at), ckpt_at))
    start, end = trace[0][0], trace[-1][0]
    batches = {w: 1 + max(b[1] for b in (batch_of(m, w) for _, _, m in trace) if b and b[0] == 0)
               for w in ("train", "validate")}
    messages = [m for _, _, m in trace]
    first_train = {e: messages.index(f"train {e}") for e in train_at}
    after_training = max(i for i, m in enumerate(messages) if m.startswith("write") and m.endswith("last.ckpt")) + 1
    return {"train": train[0], "validation": val[0], "session": end - start,  # the shortest phases
            "train_batches": batches["train"], "validation_batches": batches["validate"],
            # events a session has: start-up's, then those from the epoch it resumes with to the end
            "startup_events": first_train[0],
            "events_from_epoch": {e: len(messages) - i for e, i in first_train.items()},
            "evaluation_events": len(messages) - after_training}


def run_dir_writes(trace, run_dir: Path) -> list[str]:
    """The run-directory files written after training (not checkpoints, logs, marker or config)."""
    skip = ("checkpoints", "logs")
    out = []
    for _, _, m in trace:
        if m.startswith("write "):
            path = Path(m[6:])
            rel = path.relative_to(run_dir) if path.is_relative_to(run_dir) else None
            if rel is not None and rel.parts[0] not in skip and rel.name not in ("INCOMPLETE", "config.yaml"):
                out.append(str(rel))
    return out


def inspect_killed(run_dir: Path) -> dict:
    """What a kill left: the marker, load_run's answer, checkpoints that do not load, temporary files."""
    import torch

    from ecgnet.errors import ECGNetError
    from ecgnet.runs import load_run

    state = {"incomplete_marker": (run_dir / "INCOMPLETE").is_file(), "run_dir_exists": run_dir.is_dir()}
    try:
        load_run(run_dir)
        state["load_run"] = "loaded"
    except ECGNetError as e:
        state["load_run"] = "refused: training did not finish" if "training did not finish" in str(e) \
            else f"refused: {str(e)[:120]}"
    damaged = []
    for ckpt in sorted((run_dir / "checkpoints").glob("*.ckpt")):
        try:
            torch.load(ckpt, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure to load is damage
            damaged.append(f"{ckpt.name}: {type(e).__name__}")
    state["checkpoints"] = sorted(p.name for p in (run_dir / "checkpoints").glob("*")) \
        if (run_dir / "checkpoints").is_dir() else []
    state["damaged_checkpoints"] = damaged
    state["temporary_files"] = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob(".*.tmp")) \
        if run_dir.is_dir() else []
    return state


def check_complete(run_dir: Path) -> dict:
    import hashlib

    from ecgnet.evaluation.metrics import read_predictions
    from ecgnet.runs import load_run

    info = json.loads((run_dir / "run.json").read_text())
    _, _, loaded = load_run(run_dir)
    ids, probs, _ = read_predictions(run_dir / "test" / "predictions.csv", info["classes"])
    return {"incomplete_marker": (run_dir / "INCOMPLETE").exists(),
            "run_json": (run_dir / "run.json").is_file(),
            "weights_match_sha256": hashlib.sha256((run_dir / "model.safetensors").read_bytes()).hexdigest()
            == info["weights_sha256"],
            "leftover_files": sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")
                                     if p.name.endswith(".tmp") or ".staged-step-" in p.name),
            "load_run": loaded["name"] == info["name"], "test_predictions": int(len(ids)),
            "report": (run_dir / "report.html").is_file() and (run_dir / "val" / "metrics.json").is_file()}


def compare_runs(a: Path, b: Path, n_boot: int, seed: int) -> dict:
    """Fold-10 macro AUC of both runs, their paired bootstrap difference, and whether they are equal."""
    import numpy as np
    import pandas as pd

    from ecgnet.data import ptbxl
    from ecgnet.evaluation.metrics import macro_auc, paired_bootstrap, read_predictions

    info = json.loads((a / "run.json").read_text())
    root = ptbxl.data_root(None)
    labels = ptbxl.make_labels(ptbxl.read_database(root), ptbxl.read_statements(root), info["task"])
    test = labels.split("test")
    y = pd.DataFrame(labels.y[test], index=labels.ecg_ids[test], columns=labels.classes)
    ids_a, p_a, _ = read_predictions(a / "test" / "predictions.csv", labels.classes)
    ids_b, p_b, _ = read_predictions(b / "test" / "predictions.csv", labels.classes)
    assert (ids_a == ids_b).all()
    y_true = y.loc[ids_a].to_numpy()
    paired = paired_bootstrap(y_true, p_b, p_a, n_boot=n_boot, seed=seed)
    log_a, log_b = (pd.read_csv(r / "logs" / "metrics.csv") for r in (a, b))
    return {"uninterrupted_test_macro_auc": macro_auc(y_true, p_a), "killed_test_macro_auc": macro_auc(y_true, p_b),
            "difference_killed_minus_uninterrupted": paired, "n_boot": n_boot,
            "weights_identical": (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes(),
            "max_abs_probability_difference": float(np.abs(p_a - p_b).max()),
            "epochs_uninterrupted": log_a["epoch"].tolist(), "epochs_killed": log_b["epoch"].tolist(),
            "fold9_auc_per_epoch_identical": log_a["val_macro_auc"].tolist() == log_b["val_macro_auc"].tolist()}


def plan_kills(n: int, rng: random.Random) -> list[str]:
    """``n`` moments: the training kinds in turn (shuffled), and one run-dir kill last."""
    training = [KINDS[i % len(KINDS)] for i in range(max(n - 1, 0))]
    rng.shuffle(training)
    return training + (["run-dir"] if n else [])


def kill_once(session: Session, kind: str, rng: random.Random, epochs: int, phases: dict,
              writes: list[str], planned_epoch: int) -> dict:
    aim: dict = {"kind": kind}
    if kind == "random":  # at any of the session's events (start-up included), a little after it
        events = phases["startup_events"] + phases["events_from_epoch"].get(session.first_epoch,
                                                                            phases["evaluation_events"])
        k, delay = rng.randrange(1, events), rng.uniform(0, 0.2)
        aim.update(event_index=k, delay_s=round(delay, 2))
        event = session.nth_event(k)
        return finish(session, aim, event and session.sleep_until(time.time() + delay))
    # where this session starts: an epoch, or (all trained) saving the run
    first = session.wait_for(lambda m: epoch_of(m, "train") is not None or is_write(m, "model.safetensors"))
    start_epoch = epoch_of(first[1], "train") if first else None
    aim["session_started_at_epoch"] = start_epoch
    if kind == "run-dir" or start_epoch is None:
        wanted = rng.choice(writes)
        aim["file"] = wanted
        return finish(session, aim, session.wait_for(lambda m: is_write(m, wanted)))
    target = max(planned_epoch, start_epoch)
    aim["epoch"] = target
    word = "validate" if kind == "validation" else "train"
    event = session.wait_for(lambda m: (epoch_of(m, word) if epoch_of(m, word) is not None else -1) >= target)
    if event is None:
        return finish(session, aim, None)
    if kind == "checkpoint":
        wanted = rng.choice(["last.ckpt", ".staged-step-"])
        aim["file"] = "last.ckpt" if wanted == "last.ckpt" else "best.ckpt (staged)"
        after = event[0]
        event = session.wait_for(lambda m: is_write(m, wanted, "checkpoints"), since=after)
        return finish(session, aim, event)
    # at the start of a random batch (not the first of training: that is the epoch's start)
    n = phases["train_batches" if kind == "mid-epoch" else "validation_batches"]
    batch = rng.randrange(1 if kind == "mid-epoch" and n > 1 else 0, n)
    aim["batch"] = batch
    return finish(session, aim, session.wait_for(lambda m: batch_of(m, word) == (event_epoch(event), batch)))


def event_epoch(event: tuple[float, str]) -> int:
    return int(event[1].split()[1])


def is_write(message: str, part: str, folder: str = "") -> bool:
    """A write of a file whose path ends with ``part`` (or, for ``part`` starting with a dot, whose name
    contains it), in ``folder`` if given."""
    if not message.startswith("write "):
        return False
    path = message[6:]
    hit = part in Path(path).name if part.startswith(".") else path.endswith(part)
    return hit and (not folder or f"/{folder}/" in path)


def finish(session: Session, aim: dict, event) -> dict:
    landed = event is not None and session.kill()
    at = time.time()
    events = session.events()
    return {**aim, "landed": landed, "seconds_into_session": round(at - session.start, 1),
            "moment": moment(events, at) if landed else None,
            "last_event_before_kill": events[-1][1] if events else None, "exit_code": session.proc.returncode}


def moment(events: list[tuple[float, str]], at: float) -> str:
    """Where the kill actually landed, from the session's last event before it."""
    if not events:
        return "starting up"
    t, message = events[-1]
    for word, doing in (("train", "training"), ("validate", "validating")):
        if epoch_of(message, word) is not None:
            return f"{doing} epoch {epoch_of(message, word)}, before its first batch"
        if batch_of(message, word) is not None:
            epoch, batch = batch_of(message, word)
            return f"{doing} epoch {epoch}, batch {batch}"
    if message.startswith("write "):
        path = Path(message[6:])
        name = "/".join(path.parts[-2:]) if path.parent.name in ("checkpoints", "val", "test", "logs") else path.name
        return f"writing {name}" if at - t < WRITE_PAUSE else f"after writing {name}"
    return "starting up"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--set", dest="overrides", action="append", default=[], help="config override (repeatable)")
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="seeds the kill moments and the bootstrap")
    p.add_argument("--n-boot", type=int, default=1000, help="paired bootstrap resamples of the AUC difference")
    p.add_argument("--workdir", type=Path, default=None, help="runs folder (default: a temporary one, deleted)")
    p.add_argument("--output", type=Path, default=None)
    args = p.parse_args(argv)
    overrides = args.overrides
    rng = random.Random(args.seed)
    keep = args.workdir is not None
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kill_resume."))
    work.mkdir(parents=True, exist_ok=True)
    trace, log = work / "trace.log", work / "sessions.log"
    base = ["train", "-c", args.config, *sum((["--set", s] for s in overrides), []), "--no-progress",
            "--n-boot", "200"]
    from ecgnet.config import load_config

    config = load_config(args.config, overrides)
    epochs = config.training.epochs
    started = time.time()

    print(f"uninterrupted run of {args.config} ({' '.join(overrides)}) in {work}")
    plain = Session([*base, "--runs-dir", str(work / "uninterrupted")], trace, log)
    plain.proc.wait()
    if plain.proc.returncode != 0:
        sys.exit(f"the uninterrupted run failed (exit {plain.proc.returncode}); see {log}")
    plain_trace = [e for e in read_trace(trace) if e[1] == plain.proc.pid]
    phases = phase_seconds(plain_trace)
    plain_dir = work / "uninterrupted" / config.name
    writes = run_dir_writes(plain_trace, plain_dir)
    print(f"  {phases['session']:.0f} s; epoch ≈ {phases['train']:.1f} s + validation ≈ {phases['validation']:.1f} s")

    killed_dir = work / "killed" / config.name
    resume = ["train", "-c", str(killed_dir / "config.yaml"), "--runs-dir", str(work / "killed"), "--resume",
              "--no-progress", "--n-boot", "200"]
    kills, sessions = [], []

    def next_args(first: bool) -> list[str]:
        if first:
            return base + ["--runs-dir", str(work / "killed")]
        if (killed_dir / "config.yaml").is_file():
            return resume  # what the INCOMPLETE marker says to run
        return base + ["--runs-dir", str(work / "killed"), "--resume"]  # killed before the config was written

    kinds = plan_kills(args.kills, rng)
    planned_epochs = sorted(rng.randrange(epochs) for _ in kinds)  # spread over the epochs, in order
    for i, kind in enumerate(kinds):
        session = Session(next_args(i == 0), trace, log, resumes_at(killed_dir))
        kill = kill_once(session, kind, rng, epochs, phases, writes, planned_epochs[i])
        kill["after_kill"] = inspect_killed(killed_dir) if kill["landed"] else None
        if kill["landed"] and kill["moment"].startswith("after writing") and kill["after_kill"]["temporary_files"]:
            kill["moment"] = kill["moment"].replace("after ", "", 1)  # the pause overran: the rename was still to come
        kills.append(kill)
        sessions.append({"resume": i > 0, "exit_code": session.proc.returncode})
        print(f"  kill {i + 1} ({kind}): {kill['moment'] if kill['landed'] else 'missed (the session ended first)'}, "
              f"{kill['seconds_into_session']} s into the session")
        if not kill["landed"] and session.proc.returncode != 0:
            sys.exit(f"a session failed (exit {session.proc.returncode}); see {log}")
    final = Session(next_args(False), trace, log)
    final.proc.wait()
    sessions.append({"resume": True, "exit_code": final.proc.returncode})
    if final.proc.returncode != 0:
        sys.exit(f"the last resume failed (exit {final.proc.returncode}); see {log}")

    complete = check_complete(killed_dir)
    ok = all(s["exit_code"] in (0, -signal.SIGKILL) for s in sessions) and complete["run_json"] \
        and not complete["incomplete_marker"] and complete["weights_match_sha256"] and not complete["leftover_files"]
    comparison = compare_runs(plain_dir, killed_dir, args.n_boot, args.seed)
    landed = [k for k in kills if k["landed"]]
    after = [k["after_kill"] for k in landed]
    figures = {
        "kills_attempted": len(kills), "kills_landed": len(landed),
        # survived: every session after it resumed without an error, and the run ended complete
        "kills_survived": len(landed) if ok else 0,
        "kills_by_aim": {kind: sum(k["kind"] == kind for k in landed) for kind in (*KINDS, "run-dir")},
        "kill_moments": [k["moment"] for k in landed],
        "marked_incomplete_after_every_kill": all(a["incomplete_marker"] for a in after),
        "load_run_refused_after_every_kill": all(a["load_run"] != "loaded" for a in after),
        "damaged_checkpoints_after_kills": sum(len(a["damaged_checkpoints"]) for a in after),
        # a kill during a write leaves its temporary file beside the target; the next session deletes it
        "temporary_files_left_by_kills": sum(len(a["temporary_files"]) for a in after),
        "sessions": len(sessions), "session_exit_codes": [s["exit_code"] for s in sessions],
        "completed_run": complete, **comparison,
        "lost": {"epochs_missing_from_log": sorted(set(comparison["epochs_uninterrupted"])
                                                  - set(comparison["epochs_killed"])),
                 "leftover_files": complete["leftover_files"]},
        "uninterrupted_seconds": round(phases["session"], 1), "total_seconds": round(time.time() - started, 1),
        "kills": kills}
    from benchmarks._common import write_results

    d = comparison["difference_killed_minus_uninterrupted"]
    print(f"kills: {len(kills)} attempted, {len(landed)} landed, {figures['kills_survived']} survived; "
          f"run complete: {not complete['incomplete_marker'] and complete['run_json']}; "
          f"weights identical: {comparison['weights_identical']}")
    print(f"fold-10 macro AUC: uninterrupted {comparison['uninterrupted_test_macro_auc']:.4f}, killed "
          f"{comparison['killed_test_macro_auc']:.4f}, difference {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]")
    write_results("kill_resume", figures, {"config": args.config, "overrides": overrides, "kills": args.kills,
                                           "seed": args.seed, "n_boot": args.n_boot, "write_pause_s": WRITE_PAUSE},
                  args.output)
    if not keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[4:] if sys.argv[3] == "--" else sys.argv[3:])
    else:
        main()

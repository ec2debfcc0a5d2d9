"""The models a server offers, each loaded once on first use and shared by every request.

A model is chosen by name only — the bundled models (:mod:`ecgnet.runs.bundled`), the runs of a runs folder
(``runs/<name>/`` with its weights) and any checkpoint given to :func:`ecgnet.serve.app.create_app` —
so no request string ever becomes a path. Each loaded :class:`~ecgnet.inference.predictor.Predictor` has its own
lock: a torch module is not safe to share between threads while fusion models record their gate
weights (``last_weights``) and attributions hook into it, so a model serves one request at a time.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ecgnet.runs.bundled import bundled_names, bundled_root, resolve_checkpoint
from ecgnet.errors import ECGNetError
from ecgnet.inference.predictor import Predictor
from ecgnet.runs.describe import run_summary
from ecgnet.runs.directory import (INCOMPLETE, build_run_model, check_run_dir, model_reads_signal, read_description,
                                   weights_sha256)


@dataclass
class Loaded:
    predictor: Predictor
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelStore:
    """``site``: the default model's site profile (``ecgnet calibrate``), checked here, applied to it only."""

    def __init__(self, checkpoints: dict[str, Path], site: str | None = None):
        if not checkpoints:
            raise ECGNetError("no models to serve: give a checkpoint or a runs folder")
        self.checkpoints = dict(checkpoints)
        self.default = next(iter(self.checkpoints))
        self.site = site
        if site is not None:  # a missing profile is an error at startup, not on the first request
            from ecgnet.runs.profiles import load_profile

            load_profile(self.checkpoints[self.default], site, run_summary(self.checkpoints[self.default])["classes"])
        self._loaded: dict[str, Loaded] = {}
        self._loading = threading.Lock()
        self._reads_signal: dict[str, bool | None] = {}  # told once per model, by its run's files

    @classmethod
    def discover(cls, checkpoints=(), runs_dir: Path | None = None, bundled: bool = True,
                 site: str | None = None) -> "ModelStore":
        """The given checkpoints first (the first is the default), then the bundled models, then every
        run of ``runs_dir`` with weights that finished training. A run whose name is taken by a model with
        the same weights is that model (the repository's runs/long_time is the bundled long_time); one with
        other weights (a model retrained under a shipped name) is listed as ``<its folder's name>/<name>``,
        a given checkpoint too: the shipped name stays the shipped model's."""
        found: dict[str, Path] = {}
        shipped = bundled_names() if bundled else []
        for c in checkpoints:
            path = resolve_checkpoint(c)
            run_dir = path.parent if path.suffix == ".safetensors" else path
            check_run_dir(run_dir)  # at startup, not at every request for it
            name = run_dir.name
            if name in shipped and weights_sha256(bundled_root() / name) != weights_sha256(run_dir):
                name = f"{run_dir.parent.name}/{run_dir.name}"  # under a shipped name, but not the shipped model
                print(f"note: {run_dir} has other weights than the shipped {run_dir.name}; listed as '{name}'",
                      file=sys.stderr)
            found.setdefault(name, run_dir)
        for name in shipped:  # the package's own, never a folder of that name where the server was started
            found.setdefault(name, bundled_root() / name)
        if runs_dir is not None and Path(runs_dir).is_dir():
            for run in sorted(Path(runs_dir).iterdir()):
                if all((run / f).is_file() for f in ("config.yaml", "run.json", "model.safetensors")) \
                        and not (run / INCOMPLETE).exists():  # being trained, or killed while it was
                    name = run.name
                    if name in found and weights_sha256(found[name]) != weights_sha256(run):
                        name = f"{Path(runs_dir).name}/{run.name}"
                        print(f"note: {run} has other weights than the model named {run.name}; "
                              f"listed as '{name}'", file=sys.stderr)
                    found.setdefault(name, run.resolve())
        return cls(found, site)

    def names(self) -> list[str]:
        return list(self.checkpoints)

    def get(self, name: str | None) -> Loaded:
        name = name or self.default
        if name not in self.checkpoints:
            raise ECGNetError(f"unknown model '{name[:80]}' (see GET /api/models)")
        if name in self._loaded:  # loaded models are served without waiting for one being loaded
            return self._loaded[name]
        with self._loading:
            if name not in self._loaded:
                self._loaded[name] = Loaded(Predictor(self.checkpoints[name],
                                                      site=self.site if name == self.default else None))
            return self._loaded[name]

    def reads_signal(self, name: str) -> bool | None:
        """Whether the model reads the ECG (false: only the patient data): its predictor's answer once loaded,
        else its run's (:func:`run_reads_signal`, no weights read)."""
        if name in self._loaded:
            return self._loaded[name].predictor.reads_signal
        if name not in self._reads_signal:
            self._reads_signal[name] = run_reads_signal(self.checkpoints[name])
        return self._reads_signal[name]

    def describe(self) -> list[dict]:
        """What GET /api/models lists, read from the run files (no model is loaded)."""
        def summary(name: str, path: Path) -> dict:
            out = {"name": name, "default": name == self.default, **run_summary(path), "loaded": name in self._loaded,
                   "reads_signal": self.reads_signal(name)}
            if self.site and name == self.default:  # its thresholds are the profile's, on calibrated probabilities
                out.update(site=self.site, thresholds_from=f"site profile '{self.site}'")
            return out

        return [summary(name, path) for name, path in self.checkpoints.items()]


def run_reads_signal(run_dir: Path) -> bool | None:
    """What :attr:`Predictor.reads_signal <ecgnet.inference.predictor.Predictor.reads_signal>` will say of a run,
    told without loading it: its model is built on torch's meta device (no memory, no weights read; an
    ensemble's members from the descriptions stored with it). None when the run's files cannot build it."""
    try:
        config, info = read_description(run_dir)
        with torch.device("meta"):
            return model_reads_signal(build_run_model(config, len(info["classes"]), run_dir, weights_inside=True))
    except Exception:  # a damaged run is refused when it is chosen, with its reason; the listing goes on
        return None

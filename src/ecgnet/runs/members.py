"""Where the members of a late-fusion (ensemble) run are: inside the run directory, so that it can be
copied, bundled or installed anywhere and still loads.

```
runs/<ensemble>/
  config.yaml          model.params.members: {name: the member run it was built from}, kept as provenance
  members/<name>/      config.yaml and run.json of each member: architecture, windows, classes (no weights)
  model.safetensors    the weights of every member and of the combiner, one file (run.json's weights_sha256)
```

A saved ensemble reads only its own folder: each member is built from ``members/<name>/`` and the run's
model.safetensors fills them all (:func:`ecgnet.runs.directory.build_run_model`). The member run
directories named in the config are read once, when the ensemble is made (``ecgnet train`` on a
``late_fusion`` config; relative paths from the working directory), and :func:`store` then copies their
descriptions into ``members/``. A run saved before ``members/`` existed still loads from the member runs,
found relative to the working directory, else to the folder holding its ``runs/`` (the checkout).

Cost of self-containment: the members' weights are stored again in the ensemble (8 members of the greedy
ensemble: 19.3 MB), and a record is scored by every member in turn.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ecgnet.errors import ECGNetError

if TYPE_CHECKING:  # not imported at run time: ecgnet.runs.bundled (the CLI's start) reads MEMBERS
    from ecgnet.config import Config

MEMBERS = "members"
DESCRIPTION = ("config.yaml", "run.json")


def is_ensemble(config: Config) -> bool:
    return config.model.name == "late_fusion"


def names(config: Config) -> list[str]:
    return list((config.model.params.get("members") or {}))


def source(config: Config, name: str, run_dir: Path | None = None) -> Path:
    """The member run a config names (where the ensemble was made from): absolute, or relative to the working
    directory, else (a run saved in ``<checkout>/runs/<name>``) to the checkout."""
    path = Path(config.model.params["members"][name])
    candidates = [path] if path.is_absolute() else [Path.cwd() / path]
    if run_dir is not None and not path.is_absolute():
        candidates.append(Path(run_dir).resolve().parents[1] / path)
    for candidate in candidates:
        if (candidate / "run.json").is_file():
            return candidate
    where = f"{run_dir / MEMBERS / name} is missing and " if run_dir is not None else ""
    looked = " or ".join(str(c) for c in candidates)
    raise ECGNetError(f"ensemble member '{name}': {where}{path} is not a run directory (looked for {looked}; a "
                      "relative member path is read from the working directory)")


def resolve(config: Config, run_dir: Path | None = None, weights_inside: bool = True) -> dict[str, tuple[Path, bool]]:
    """{member: (its directory, whether it is a stored description)}: inside ``run_dir`` when stored there
    and the weights come with the run (``weights_inside``), else the member run itself (whose weights are
    then loaded)."""
    out = {}
    for name in names(config):
        stored = Path(run_dir) / MEMBERS / name if run_dir is not None and weights_inside else None
        if stored is not None and all((stored / f).is_file() for f in DESCRIPTION):
            out[name] = (stored, True)
        else:
            out[name] = (source(config, name, run_dir), False)
    return out


def store(run_dir: Path, config: Config) -> None:
    """Copy each member's description (and, for a member that is an ensemble, its own ``members/``) into
    ``run_dir/members/<name>/``."""
    run_dir = Path(run_dir)
    for name, (path, stored) in resolve(config, run_dir).items():
        dest = run_dir / MEMBERS / name
        if stored:
            continue
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for f in DESCRIPTION:
            shutil.copyfile(path / f, dest / f)
        if (path / MEMBERS).is_dir():
            shutil.copytree(path / MEMBERS, dest / MEMBERS)

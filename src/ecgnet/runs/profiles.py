"""A run's operating points per site: named profiles stored inside the run directory.

```
runs/<name>/profiles/
  <site>.json        thresholds and calibration maps per class, how and on what they were fitted
  <site>/            the report of `ecgnet calibrate` (report.md/.html, figures/, predictions.csv)
```

``ecgnet calibrate RUN --manifest M.csv --site NAME`` (or ``--from-cv``) writes a profile;
``predict``/``serve --site NAME`` apply it *after* the engine: ``calls = calibrate(probabilities) >=
thresholds``, the calibrated probabilities being what is reported. A profile is plain JSON (no code, no
pickle), so it travels with the run. It names the classes it was fitted for; loading it against a run with
other classes fails.

Profile JSON: ``format`` (``ecgnet-site-profile``), ``version``, ``site``, ``run``, ``classes``,
``thresholds`` ({class: value}), ``calibrators`` ({class: map}, see :mod:`ecgnet.evaluation.recalibration`),
``method``, ``target_sensitivity``, ``shrinkage`` (absent in older profiles), ``calibration``, ``fitted_on``
(which probabilities: the run's own of a manifest, or its cross-validation's out-of-fold ones with ``--from-cv``,
and a statement of it; absent in older profiles),
``long_records``, ``weights_sha256`` (the run's weights it was fitted on: a profile of other weights is refused;
both absent in older profiles), ``fitted``
({class: true or why not}), ``run_thresholds`` (the run's fold-9 ones), ``manifest`` (path, SHA-256, records), ``evaluation``
(cross-fitted before/after), and the provenance (date, command, revision).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgnet.errors import ECGNetError
from ecgnet.evaluation.recalibration import apply_calibrator
from ecgnet.fileio import write_json

FORMAT, VERSION = "ecgnet-site-profile", 1
PROFILES = "profiles"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_site_name(site: str) -> str:
    """A site name is a file name: letters, digits, '_', '.', '-', at most 64, not starting with a dot."""
    if not isinstance(site, str) or not _NAME.fullmatch(site):
        raise ECGNetError(f"site name {str(site)[:80]!r} must be 1–64 letters, digits, '_', '.' or '-' "
                          "(starting with a letter or digit)")
    return site


def profiles_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / PROFILES


def profile_path(run_dir: str | Path, site: str) -> Path:
    return profiles_dir(run_dir) / f"{check_site_name(site)}.json"


def report_dir(run_dir: str | Path, site: str) -> Path:
    return profiles_dir(run_dir) / check_site_name(site)


def list_profiles(run_dir: str | Path) -> list[str]:
    """The site names of the run's profiles, sorted."""
    folder = profiles_dir(run_dir)
    return sorted(p.stem for p in folder.glob("*.json") if _NAME.fullmatch(p.stem)) if folder.is_dir() else []


@dataclass(frozen=True)
class SiteProfile:
    """A loaded profile; :meth:`calibrate` maps a run's probabilities (in the run's class order)."""

    site: str
    classes: list[str]
    thresholds: dict[str, float]
    calibrators: dict[str, dict]
    data: dict

    def calibrate(self, probs) -> np.ndarray:
        """(…, classes) probabilities → calibrated, class by class."""
        probs = np.asarray(probs, dtype=float)
        if probs.shape[-1] != len(self.classes):
            raise ValueError(f"profile {self.site} has {len(self.classes)} classes, probabilities {probs.shape[-1]}")
        return np.stack([apply_calibrator(probs[..., k], self.calibrators[c]) for k, c in enumerate(self.classes)],
                        axis=-1)


def save_profile(run_dir: str | Path, profile: dict) -> Path:
    """Write ``profile`` (validated by reading it back first) as RUN/profiles/<site>.json, atomically."""
    path = profile_path(run_dir, profile["site"])
    data = {"format": FORMAT, "version": VERSION, **profile}
    _parse(data, path, data["classes"])
    write_json(path, data)
    return path


def load_profile(run_dir: str | Path, site: str, classes: list[str]) -> SiteProfile:
    """The profile ``site`` of the run at ``run_dir`` for its ``classes``; one clear error if absent
    (listing those there are) or not valid."""
    check_site_name(site)
    path = profile_path(run_dir, site)
    if not path.is_file():
        available = list_profiles(run_dir)
        from ecgnet.runs.bundled import is_bundled

        make = (f"`ecgnet calibrate {Path(run_dir).name} --manifest M.csv --site {site} --copy-to runs/"
                f"{Path(run_dir).name}`, then use --checkpoint runs/{Path(run_dir).name}" if is_bundled(run_dir)
                else f"`ecgnet calibrate {run_dir} --manifest M.csv --site {site}`")  # a shipped model is read-only
        listing = f"its profiles: {', '.join(available)}" if available else f"it has none (make one with {make})"
        raise ECGNetError(f"{Path(run_dir).name}: no site profile '{site}' in {profiles_dir(run_dir)}; {listing}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ECGNetError(f"{path}: not a readable site profile ({e})") from None
    from ecgnet.runs.directory import weights_sha256

    profile = _parse(data, path, classes)
    fitted_on = data.get("weights_sha256")  # absent from profiles written before it: no check
    if fitted_on is not None and fitted_on != weights_sha256(run_dir):  # a light read: run.json, not the model
        again, note = calibrate_again(run_dir, data, site)
        raise ECGNetError(f"{path}: fitted on other weights than {Path(run_dir) / 'model.safetensors'} (the run was "
                          f"trained again since); its thresholds and calibration no longer apply — run `{again}` "
                          f"again{note}")
    return profile


# calibrate's options that take no value (the others take one: the next word of a recorded command)
CALIBRATE_FLAGS = frozenset({"--from-cv", "--skip-bad", "--progress", "--no-progress"})


def calibrate_again(run_dir: str | Path, data: dict, site: str) -> tuple[str, str]:
    """(the ``ecgnet calibrate`` command that fits the profile ``data`` again for the run at ``run_dir``, a note
    on its manifest path). The recorded command keeps its options (--label-map, --method …), but it names the
    run as it was named then (another folder before a copy, relative to another working directory): the run
    is ``run_dir``, as named now, and its ``--copy-to`` is dropped (``run_dir`` is the copy). The manifest is
    given as recorded; the note says so — relative to the folder calibrate was run in, when it is relative."""
    run = shlex.quote(str(run_dir))
    manifest = (data.get("manifest") or {}).get("path")
    words = _words(data.get("command") or "")
    if words[:2] == ["ecgnet", "calibrate"]:
        kept, rest, named = [], iter(words[2:]), None
        for word in rest:
            if not word.startswith("-"):
                continue  # the run, as named then
            name, has_value = word.split("=", 1)[0], "=" in word
            value = word.split("=", 1)[1] if has_value else (None if name in CALIBRATE_FLAGS else next(rest, None))
            if name == "--copy-to":
                continue
            if name == "--manifest":
                named = value
            kept += [word] if has_value or value is None else [word, value]
        again = " ".join(["ecgnet", "calibrate", run, *map(shlex.quote, kept)])
    elif (data.get("fitted_on") or {}).get("probabilities") == "out-of-fold":
        again, named = f"ecgnet calibrate {run} --site {site} --from-cv", None
    else:
        named = manifest or "M.csv"
        again = f"ecgnet calibrate {run} --manifest {shlex.quote(named)} --site {site}"
    if named is None or (manifest is None and named == "M.csv"):  # no manifest, or none known
        return again, ""
    where = ("relative to the folder calibrate was run in" + (f"; the profile records it as {manifest}"
                                                             if manifest and manifest != named else "")
             if not Path(named).is_absolute() else "")
    return again, f" (--manifest {named} as recorded when the profile was fitted{': ' + where if where else ''})"


def _words(command: str) -> list[str]:
    """A recorded command's words: shell-quoted since commands are recorded with shlex.join, which its words
    join back to exactly; an older profile's (argv joined with spaces: a Windows path's backslashes would be
    read as shell escapes) does not, and is split on spaces."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command.split()
    return words if shlex.join(words) == command else command.split()


def _parse(data, path: Path, classes: list[str]) -> SiteProfile:
    def bad(why: str):
        return ECGNetError(f"{path}: not a valid site profile ({why})")

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad(f"'format' must be {FORMAT!r}")
    if data.get("version") != VERSION:
        raise bad(f"version {data.get('version')!r}; this ECGNet reads version {VERSION}")
    if list(data.get("classes") or []) != list(classes):
        raise bad(f"fitted for classes {data.get('classes')}, the run predicts {list(classes)}")
    thresholds, calibrators = data.get("thresholds"), data.get("calibrators")
    if not isinstance(thresholds, dict) or not isinstance(calibrators, dict):
        raise bad("'thresholds' and 'calibrators' must be objects keyed by class")
    out_t = {}
    for c in classes:
        value = thresholds.get(c)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise bad(f"threshold of {c} must be a finite number, not {value!r}")
        out_t[c] = float(value)
        try:
            apply_calibrator(np.array([0.0, 0.5, 1.0]), calibrators.get(c) or {})
        except (ValueError, TypeError, KeyError) as e:
            raise bad(f"calibration map of {c}: {e}") from None
    return SiteProfile(str(data.get("site")), list(classes), out_t, {c: calibrators[c] for c in classes}, data)

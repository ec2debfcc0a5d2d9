"""A site's operating points in an exported model: ``ecgnet export RUN --site NAME`` adds the metadata
property ``ecgnet.site`` (a JSON string) to the ONNX file, so a deployment outside ECGNet applies the
same calibration and thresholds as ``ecgnet predict --site NAME``:

* ``site``, ``classes`` (the run's order, the order of the graph's logits), ``thresholds`` ({class: t});
* ``calibrators`` ({class: map}): ``{"kind": "none"}``, ``{"kind": "temperature", "temperature": T}``
  (p' = σ(logit(p) / T)) or ``{"kind": "isotonic", "x": [...], "y": [...]}`` (p' = linear interpolation
  between the knots, constant beyond them) — :mod:`ecgnet.evaluation.recalibration`;
* ``apply``: that recipe in words — the record's probability p (after the windows and segments are
  aggregated, ``ecgnet.preprocessing``), p' = the class's map of p, positive when p' ≥ the threshold;
* ``method``, ``calibration``, ``fitted_on`` (the manifest, its SHA-256 and the records used), ``probabilities``
  (which it was fitted on: the run's own of that manifest, or with ``calibrate --from-cv`` its cross-validation's
  out-of-fold ones, and that statement; None for older profiles), ``date``;
* ``profile``: the profile's file inside the run (``profiles/<site>.json``) and ``profile_sha256``, its SHA-256
  when exported: which profile, as it was, the thresholds and calibration come from.

``ecgnet.source`` names the site and its profile file too (``site``, ``site_profile``); ``ecgnet.thresholds``
stays the run's own; the graph is unchanged.
"""

from __future__ import annotations

import json

from ecgnet.checksum import sha256_file
from ecgnet.evaluation.recalibration import LOGIT_EPS
from ecgnet.runs.directory import Run
from ecgnet.runs.profiles import SiteProfile, load_profile, profile_path

KEY = "ecgnet.site"
APPLY = ("per class: p = the record's probability (windows and segments aggregated as ecgnet.preprocessing "
         f"says); p' = the class's calibrator applied to p (temperature: p clipped to [{LOGIT_EPS:g}, 1 − "
         f"{LOGIT_EPS:g}] before its logit); positive when p' >= the class's threshold")


def load(run: Run, site: str) -> SiteProfile:
    """The run's profile ``site`` (one clear error naming the profiles it has when absent)."""
    return load_profile(run.dir, site, run.classes)


def origin(run: Run, site: str) -> dict:
    """Where a profile of ``run`` comes from: its file, relative to the run, and that file's SHA-256."""
    path = profile_path(run.dir, site)
    return {"profile": path.relative_to(run.dir).as_posix(), "profile_sha256": sha256_file(path)}


def metadata(profile: SiteProfile, source: dict | None = None) -> dict:
    """:data:`KEY`'s value; ``source``: the profile's :func:`origin`, when known."""
    data = profile.data
    return {"site": profile.site, **(source or {}), "classes": profile.classes, "thresholds": profile.thresholds,
            "calibrators": profile.calibrators, "apply": APPLY, "method": data.get("method"),
            "calibration": data.get("calibration"), "fitted_on": data.get("manifest"),
            "probabilities": data.get("fitted_on"), "date": data.get("date")}


def with_site(model: bytes, profile: SiteProfile, source: dict | None = None) -> bytes:
    """The serialised ONNX ``model`` with :data:`KEY` set to the profile's operating points, and the site (and,
    given its :func:`origin` as ``source``, its file) named in ``ecgnet.source``."""
    import onnx

    proto = onnx.load_from_string(model)
    props = {p.key: p.value for p in proto.metadata_props}
    props[KEY] = json.dumps(metadata(profile, source))
    if "ecgnet.source" in props:  # what the file is: the run's graph with this site's operating points
        described = json.loads(props["ecgnet.source"])
        described["site"] = profile.site
        if source:
            described["site_profile"] = source["profile"]
        props["ecgnet.source"] = json.dumps(described)
    if "ecgnet.calls" in props:  # the positive rule is the site's now: calibrate, then its thresholds
        calls = json.loads(props["ecgnet.calls"])
        calls["positive"] = (f"with site profile '{profile.site}': {APPLY} (ecgnet.site; ecgnet.thresholds are "
                             "the run's)")
        props["ecgnet.calls"] = json.dumps(calls)
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    return proto.SerializeToString()

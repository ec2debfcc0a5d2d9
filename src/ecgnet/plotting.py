"""matplotlib, set up once: every figure ECGNet draws goes to a file, so the backend is Agg (no display,
no GUI toolkit, works on a headless server) — unless the user chose one already (a notebook's inline
backend, MPLBACKEND, matplotlib.use before importing ecgnet), which importing ECGNet leaves as it was.
Import ``plt`` from here, never ``matplotlib.pyplot`` directly, and the backend is chosen before pyplot loads:

    from ecgnet.plotting import plt

Modules import this where they draw (reports, calibration, attributions, sweeps), so commands that draw
nothing (``predict``, ``--help``) never load matplotlib.
"""

from __future__ import annotations

import sys

import matplotlib

_chosen = getattr(matplotlib.rcParams, "_get_backend_or_none", lambda: None)()
if _chosen is None and "matplotlib.pyplot" not in sys.modules:  # nobody chose: files only, headless-safe
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt"]

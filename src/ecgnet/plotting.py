"""matplotlib, set up once: every figure ECGNet draws goes to a file, so the backend is Agg (no display,
no GUI toolkit, works on a headless server). Import ``plt`` from here, never ``matplotlib.pyplot``
directly, and the backend is chosen before pyplot loads:

    from ecgnet.plotting import plt

Modules import this where they draw (reports, calibration, attributions, sweeps), so commands that draw
nothing (``predict``, ``--help``) never load matplotlib.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt"]

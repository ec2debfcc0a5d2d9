"""``ecgnet serve``: a web page to see an ECG, its diagnosis and why, with a JSON API beside it.

* :mod:`ecgnet.serve.app` — the FastAPI application (routes, limits, error answers);
* :mod:`ecgnet.serve.uploads` — uploaded files → one record in a per-request temporary folder, safely;
* :mod:`ecgnet.serve.models` — the models offered, each loaded once and locked while it works;
* :mod:`ecgnet.serve.explain` — Integrated Gradients and modality contributions for one record;
* :mod:`ecgnet.serve.reference` — PTB-XL records by ``ecg_id`` and reference labels;
* ``static/`` — the page: plain HTML, CSS and JavaScript, no build step, nothing fetched from outside.
"""

from ecgnet.serve.app import create_app

__all__ = ["create_app"]

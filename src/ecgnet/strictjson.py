"""Strict JSON for what users read (``ecgnet predict --json``, the viewer's answers): no ``NaN`` or
``Infinity``, which are not JSON and which strict parsers (JavaScript's ``JSON.parse``, jq) reject.
A value that is legitimately missing becomes ``null``; anything else non-finite is an error."""

from __future__ import annotations

import json
import math


def finite_or_none(obj):
    """``obj`` with every non-finite float replaced by None, recursively through dicts, lists and tuples."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def dumps(obj, **kwargs) -> str:
    """``json.dumps`` of ``obj`` with non-finite floats as null, refusing anything else that is not JSON."""
    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)

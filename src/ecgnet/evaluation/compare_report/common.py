"""What the conclusion, the tables and the figures share: how numbers are written and what a run's
entry in the comparison result says (its verdict against the baseline, family, strategy, number)."""

from __future__ import annotations

import math

MANY_CLASSES = 10  # above this (e.g. the 71-statement `all` task) per-class tables list classes as rows
MODALITY_ORDER = ("time", "frequency", "spectrogram", "metadata")
ABBREVIATION_NOTE = "t / f / s / m = time / frequency / spectrogram / metadata"


def _ci(m: dict) -> str:
    return f"{m['value']:.4f} [{m['low']:.4f}, {m['high']:.4f}]"


def _delta(d: dict) -> str:
    """A paired-bootstrap difference with its interval: '+0.0010 [+0.0001, +0.0017]'."""
    return f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"


def _num(x, spec="{:.3f}") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else spec.format(x)


def _verdict(run: dict, baseline: str) -> str:
    """Whether the run's 90 % paired interval against the baseline lies above, below or across zero."""
    if run["name"] == baseline:
        return "reference"
    d = run["vs_baseline"]
    return "higher" if d["low"] > 0 else "lower" if d["high"] < 0 else "not separated"


def _family(run: dict) -> str:
    head = (run.get("model") or "").split("_")[0]
    return head if head in ("early", "intermediate", "late") else "single modality"


def _strategy(run: dict) -> str:
    """The strategy column: the run's strategy (from its config, saved by compare) + its imbalance option."""
    text = run.get("strategy") or "+".join(run.get("modalities") or []) or (run.get("model") or "–")
    imbalance = run.get("imbalance")
    return text + (f" + {imbalance}" if imbalance and imbalance != "none" else "")


def _numbered(result: dict) -> list[tuple[int, dict]]:
    """(number, run): the numbers of the runs table, shared by every figure and table."""
    return list(enumerate(result["runs"], 1))


def _name(run: dict, result: dict) -> str:
    return run["name"] + (" ★" if run["name"] == result["best"] else "") + (
        " (baseline)" if run["name"] == result["baseline"] else "")


def _auc(run: dict) -> float:
    return run["accuracy"]["macro_auc"]["value"]

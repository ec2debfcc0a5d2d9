"""The comparison's summary table for the terminal."""

from __future__ import annotations

from rich.table import Table

from ecgnet.evaluation.compare_report.common import _ci, _delta, _num


def format_comparison(result: dict) -> Table:
    """Terminal summary: one row per run (fold-9 and fold-10 macro AUC, Δ vs baseline, cost)."""
    table = Table(title=f"Model comparison — {result['task']} (fold 10 unless noted)",
                  caption=f"★ best by fold-9 macro AUC; Δ: paired bootstrap vs {result['baseline']}, 90% interval")
    for h in ("Model", "Val AUC", "Test macro AUC [90% CI]", "Δ vs baseline", "Params", "M MACs/ECG", "ms/ECG"):
        table.add_column(h, justify="left" if h == "Model" else "right")
    for r in result["runs"]:
        d, c = r["vs_baseline"], r["complexity"]
        me = c.get("macs_per_ecg")
        table.add_row(r["name"] + (" ★" if r["name"] == result["best"] else ""),
                      _num(r["accuracy"]["val_macro_auc"], "{:.4f}"), _ci(r["accuracy"]["macro_auc"]),
                      "reference" if r["name"] == result["baseline"] else _delta(d),
                      _num(c.get("parameters"), "{:,}"), _num(me and me / 1e6, "{:.1f}"),
                      _num(c.get("latency_ms"), "{:.1f}"))
    return table

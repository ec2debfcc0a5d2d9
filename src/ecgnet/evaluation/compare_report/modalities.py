"""The report's "What each modality adds": runs trained with fewer modalities, one modality dropped at
test time, gate and attention weights."""

from __future__ import annotations

from ecgnet.evaluation.compare_report.common import MODALITY_ORDER, _ci, _delta, _num, _numbered
from ecgnet.document import Section


def _modality_set_table(runs, base: str) -> list:
    """The runs ordered by the modalities they see (fewest first): each modality alone, the pairs,
    all four, with and without metadata — every row a trained (or refitted) model, not a test-time drop."""
    known = [r for r in runs if r.get("modalities")]
    if len({tuple(r["modalities"]) for r in known}) < 2:
        return []
    order = sorted(known, key=lambda r: (len(r["modalities"]), "metadata" in r["modalities"], r["name"]))
    rows = [["+".join(r["modalities"]), str(len(r["modalities"])), r["name"], _ci(r["accuracy"]["macro_auc"]),
             "reference" if r["name"] == base else _delta(r["vs_baseline"])]
            for r in order]
    return [Section("Trained with fewer modalities",
                    ["Modalities", "n", "Model", "Test macro AUC [90% CI]", "Δ vs baseline [90% CI]"], rows,
                    "Each row trained (or refitted) with those modalities, fewest first; rows with metadata follow "
                    "those without at the same number of modalities.", level=3)]


def _modality_sections(result: dict) -> list[Section]:
    runs, base = result["runs"], result["baseline"]
    out = _modality_set_table(runs, base)
    dropped = [(i, r) for i, r in _numbered(result) if (r.get("ablation") or {}).get("drop")]
    if dropped:
        mods = [m for m in MODALITY_ORDER if any(m in r["ablation"]["drop"] for _, r in dropped)]
        mods += sorted({m for _, r in dropped for m in r["ablation"]["drop"]} - set(mods))

        def cell(e):
            return "–" if e is None else f"{e['loss']:+.4f}" + ("*" if e["low"] > 0 or e["high"] < 0 else "")

        rows = [[str(i), r["name"], _num(r["ablation"]["full"]["macro_auc"], "{:.4f}"),
                 *(cell(r["ablation"]["drop"].get(m)) for m in mods)] for i, r in dropped]
        n = sorted({r["ablation"]["n_records"] for _, r in dropped})
        out.append(Section("One modality dropped at test time", ["#", "Run", "Macro AUC, all", *(f"− {m}" for m in mods)],
                           rows, f"Loss of fold-10 macro AUC when the trained model loses one modality (its own "
                                 f"missing-modality representation), on {' / '.join(map(str, n))} fold-10 records; "
                                 "* = the 90% bootstrap interval of the loss excludes zero. Intervals and per-class "
                                 "losses are in the appendix.", level=3))
    weighted = [(i, r) for i, r in _numbered(result) if ((r.get("ablation") or {}).get("weights") or {}).get("all")]
    if weighted:
        mods = [m for m in MODALITY_ORDER if any(m in r["ablation"]["weights"]["all"] for _, r in weighted)]
        out.append(Section("Gate and attention weights", ["#", "Run", *mods],
                           [[str(i), r["name"], *(_num(r["ablation"]["weights"]["all"].get(m), "{:.2f}") for m in mods)]
                            for i, r in weighted],
                           "Mean weight per modality over the fold-10 records (per class: appendix).", level=3))
    if not out:
        return []
    return [Section("What each modality adds", paragraphs=[
        "Two views: models trained on fewer modalities, and a trained fusion model deprived of one modality at "
        "test time."] if dropped else []), *out]

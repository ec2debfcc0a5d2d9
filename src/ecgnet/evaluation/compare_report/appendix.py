"""The report's appendix: modality ablation per run, notes, provenance (and the long per-class tables)."""

from __future__ import annotations

from ecgnet.evaluation.compare_report.common import _num, _numbered
from ecgnet.document import Section


def _appendix_sections(result: dict, extra: list[Section]) -> list[Section]:
    classes, out = result["classes"], list(extra)
    ablated = [(i, r) for i, r in _numbered(result) if (r.get("ablation") or {}).get("drop")
               or (r.get("ablation") or {}).get("weights")]
    if ablated:
        n = sorted({r["ablation"].get("n_records") for _, r in ablated} - {None})
        out.append(Section("Modality ablation per run", paragraphs=[
            f"Fold 10 ({' / '.join(map(str, n))} records). Loss = AUC with all modalities − AUC without one (the "
            "model's own missing-modality representation), with its 90% bootstrap interval and p = fraction of "
            "resamples where the loss is not positive. Class columns: the first row gives the per-class AUC with all "
            "modalities, the others the per-class AUC loss. Gate / attention weights: mean weight per modality "
            "(each record: mean over its inference windows), over all records and over those positive for each "
            "class."], level=3))
    for i, r in ablated:
        ab = r["ablation"]
        if ab.get("drop"):
            rows = [["(none dropped)", _num(ab["full"]["macro_auc"], "{:.4f}"), "", "",
                     *(_num(ab["full"]["per_class_auc"][c]) for c in classes)]]
            rows += [[m, _num(e["macro_auc"], "{:.4f}"), f"{e['loss']:+.4f} [{e['low']:+.4f}, {e['high']:+.4f}]",
                      _num(e["p_value"]), *(f"{e['per_class_loss'][c]:+.3f}" for c in classes)]
                     for m, e in ab["drop"].items()]
            out.append(Section(f"{i}. {r['name']}: modality dropped", ["Dropped", "Macro AUC", "Loss [90% CI]",
                                                                        "p (loss ≤ 0)", *classes], rows, level=4))
        if ab.get("weights"):
            w = ab["weights"]
            mods = list(w["all"])
            out.append(Section(f"{i}. {r['name']}: gate / attention weights", ["Records", *mods],
                               [[g if g == "all" else f"positive for {g}", *(f"{w[g][m]:.3f}" for m in mods)] for g in w],
                               level=4))
    notes = [[r["name"], n] for r in result["runs"] for n in r["notes"]]
    if notes:
        out.append(Section("Notes", ["Model", "Note"], notes, level=3))
    prov = result.get("provenance") or {}
    if prov:
        out.append(Section("Provenance", ["Key", "Value"], [[k, ", ".join(map(str, v)) if isinstance(v, list) else str(v)]
                                                          for k, v in prov.items()], level=3))
    return [Section("Appendix", paragraphs=["Per-run detail behind the tables above."]), *out] if out else []

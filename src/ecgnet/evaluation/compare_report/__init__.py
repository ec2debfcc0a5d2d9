"""The comparison report: ``comparison.json``, ``comparison.md`` (figures in ``figures/``, linked) and
a self-contained ``comparison.html`` (figures embedded as base64 PNG), in the style of the run report.

The page reads like the README's summary: a short conclusion (which fusion strategy, at what cost,
why), then one table of every run's accuracy and cost with the accuracy-vs-complexity figure, what each
modality adds, per-class results, explanations, and an appendix with the per-run detail. Everything
is drawn from the comparison's result (``comparison.json``); only the ROC curves need the runs' saved
fold-10 probabilities and the labels. :func:`render_comparison` re-renders an existing report from its
``comparison.json`` without recomputing anything (``ecgnet compare --render-only OUT``).

The package, one part of the report per module: ``conclusion`` (the sentences), ``tables``, ``modalities``
and ``appendix`` (the sections), ``tradeoff``, ``per_class_figures`` and ``roc`` (the figures, with
``labels`` placing their point labels), ``writer`` (comparison.json/.md/.html), ``render`` (re-rendering
from comparison.json), ``terminal`` (the summary table); ``common`` holds what they share."""

from ecgnet.evaluation.compare_report.common import MANY_CLASSES
from ecgnet.evaluation.compare_report.conclusion import conclusion
from ecgnet.evaluation.compare_report.render import render_comparison
from ecgnet.evaluation.compare_report.terminal import format_comparison
from ecgnet.evaluation.compare_report.writer import write_comparison_report

__all__ = ["MANY_CLASSES", "conclusion", "format_comparison", "render_comparison", "write_comparison_report"]

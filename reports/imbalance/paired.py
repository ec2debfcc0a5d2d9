"""The class-imbalance options against the same model trained without them, on fold 10.

For a base run B, the runs B_weighted_bce, B_focal and B_oversample differ from B only in the
imbalance option. Prints Markdown: each run's macro AUC, macro F1 and per-class balanced accuracy,
then paired-bootstrap differences against B (1,000 resamples, the same ones for both runs). The
thresholded metrics use each run's own fold-9 thresholds (``reports/paired_runs.py`` does the work).

    ECGNET_DATA=... .venv/bin/python -m reports.imbalance.paired intermediate_concat > reports/imbalance/paired.md
"""

from reports import usage
from reports.paired_runs import paired_report

OPTIONS = ["weighted_bce", "focal", "oversample"]

base = (usage.arguments(__doc__, 0, 1) or ["intermediate_concat"])[0]
paired_report(base, [f"{base}_{o}" for o in OPTIONS], f"Class imbalance on `{base}`", five_way=False)

"""Two questions of the ablation answered with a paired bootstrap of fold-10 macro AUC (1,000 resamples,
the same resamples for both runs): does the FFT phase help the frequency model, and does metadata help
stacked late fusion? Reads only committed run files and the PTB-XL labels.

    ECGNET_DATA=... .venv/bin/python -m reports.ablation.paired > reports/ablation/paired.txt
"""

from ecgnet.evaluation import metrics as M
from ecgnet.runs import provenance

from reports.committed import predictions, task_labels

PAIRS = [("frequency_phase", "frequency", "log magnitude + phase vs log magnitude only"),
         ("late_stacking", "late_stacking_no_metadata", "time+frequency+spectrogram with vs without metadata")]

labels = task_labels()
y = labels.y[labels.split("test")]


def load(run):
    return predictions(run, labels)


origin = provenance()
print("revision", origin["git_revision"])
print("command", "python -m reports.ablation.paired > reports/ablation/paired.txt")
for a, b, what in PAIRS:
    d = M.paired_bootstrap(y, load(a), load(b), M.macro_auc, n_boot=1000, seed=0)
    print(f"{a} vs {b} ({what}): fold-10 macro AUC diff {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] "
          f"p={d['p_value']:.3f}")

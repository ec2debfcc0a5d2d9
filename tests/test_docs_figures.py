"""The figures of the README and of docs/ are the committed runs' figures, where they are printed.

Every results table — the README's headline table, the per-class tables and the six-task table of
docs/results.md, the comparison tables of docs/comparison.md and the transfer table of docs/transfer.md —
is read back and each macro AUC, interval and per-class figure is compared, at the precision it is printed
with, with the ``metrics.json`` it came from (``runs/<run>/test/``, ``runs/<run>/val/``, or
``reports/transfer/runs/<run>/`` for transfer). A figure edited by hand, a table copied from a stale run, or
a run retrained without its page being rewritten fails here. (``tests/test_science.py`` recomputes the
headline AUCs from the committed predictions with scikit-learn; this file ties the pages to the json.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ecgnet.runs.bundled import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "runs"
DOCS = REPO / "docs"
INTERVAL = re.compile(r"(\d\.\d{3,4}) \[(?:90 % CI )?(\d\.\d{3,4}), (\d\.\d{3,4})\]")


def page(name: str) -> str:
    return (REPO / name).read_text(encoding="utf-8")


def rows(text: str) -> list[list[str]]:
    """The body rows of every markdown table in ``text``, as lists of stripped cells."""
    out = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"\|\s*-", line):
            out.append([c.strip() for c in line.strip().strip("|").split("|")])
    return out


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a line starting with it) up to the next heading of any level."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[start:end])


def metrics(run: str, split: str = "test") -> dict:
    return json.loads((RUNS / run / split / "metrics.json").read_text())


def fmt(x: float, printed: str) -> str:
    """``x`` at the number of decimals ``printed`` has."""
    return f"{x:.{len(printed.split('.')[1])}f}"


def assert_interval(printed: tuple[str, str, str], auc: dict, where: str) -> None:
    value, low, high = printed
    assert (value, low, high) == (fmt(auc["value"], value), fmt(auc["low"], low), fmt(auc["high"], high)), \
        f"{where}: printed {value} [{low}, {high}], metrics.json says {auc['value']:.4f} [{auc['low']:.4f}, {auc['high']:.4f}]"


def fold9(run: str) -> float:
    """The fold-9 macro AUC a table shows: out-of-fold for a stack fitted on fold 9 (run.json says so),
    else the run's val/metrics.json."""
    info = json.loads((RUNS / run / "run.json").read_text())
    if "out-of-fold" in info.get("val_macro_auc_source", ""):
        return info["best_val_macro_auc"]
    return metrics(run, "val")["macro_auc"]["value"]


def run_of(row: list[str]) -> str | None:
    names = [n for cell in row[:2] for n in re.findall(r"`(\w+)`", cell) if (RUNS / n / "test").is_dir()]
    return names[0] if names else None


def transfer_auc(run: str) -> dict:
    """Zero-shot macro AUC of ``run`` on the 92 labelled Challenge samples: its evaluate-external report
    (reports/transfer/), or for the default the zero-shot row of the own-data measurement (reports/own_data/)."""
    report = REPO / "reports/transfer/runs" / run / "metrics.json"
    if report.is_file():
        return json.loads(report.read_text())["macro_auc"]
    assert f"zero-shot ({run})" in page("reports/own_data/results.md"), f"no transfer figure of {run}"
    return json.loads(page("reports/own_data/results.json"))["5-fold"]["zero-shot"]["pooled"]["macro_auc"]


# --- the README's headline table -------------------------------------------------------------------

def headline() -> list[list[str]]:
    table = [r for r in rows(section(page("README.md"), "## Results")) if INTERVAL.search(" ".join(r))]
    assert 5 <= len(table) <= 8, f"the headline table has {len(table)} rows (the front page keeps ≤ 8)"
    return table


def test_readme_headline_table_is_the_committed_metrics():
    for row in headline():
        run = run_of(row)
        assert run, f"no committed run named in {row}"
        printed = INTERVAL.search(row[-1]).groups()
        if "hospitals" in row[0]:  # zero-shot transfer on the 92 labelled Challenge samples
            auc = transfer_auc(run)
        else:
            auc = metrics(run)["macro_auc"]
            n = re.search(r"\(([\d,]+)\)", row[0]).group(1)
            assert int(n.replace(",", "")) == metrics(run)["n_records"], f"README row {run}: {n} records"
        assert_interval(printed, auc, f"README headline row {run}")


def test_readme_headline_names_the_shipped_default_and_the_best_models():
    table = headline()
    named = {run_of(r): r for r in table}
    assert DEFAULT_MODEL == "distill_long_time" and "the default" in named[DEFAULT_MODEL][2]
    for model in {run_of(r) for r in table} - {DEFAULT_MODEL}:  # one truth: no other model is "the default"
        assert "the default" not in named[model][2]
    assert {"baseline_time", "intermediate_concat_weighted_bce", "ensemble_greedy", "long_all_time",
            "all_late_stacking"} <= set(named)
    readme = page("README.md")
    for other in re.findall(r"`(\w+)`,? (?:is )?the default", readme) + re.findall(r"`(\w+)` \(the default\)", readme):
        assert other == DEFAULT_MODEL, f"README calls {other} the default; the package's default is {DEFAULT_MODEL}"


# --- docs/results.md: the default model, the baseline, the six tasks -------------------------------

@pytest.mark.parametrize("heading, run", [("## The default model", "distill_long_time"),
                                          ("## The previous default", "long_time"),
                                          ("## The time-domain baseline", "baseline_time")])
def test_results_per_class_tables_and_macro_figures(heading, run):
    text = section(page("docs/results.md"), heading)
    assert f"`runs/{run}`" in heading + text
    saved = metrics(run)
    assert_interval(INTERVAL.search(text).groups(), saved["macro_auc"], f"results.md {run}")
    sentence = r"Macro F1 (\d\.\d+); mean balanced accuracy (\d\.\d+); 5-way accuracy on the ([\d,]+) single-label records (\d\.\d+)"
    macro = re.search(sentence.replace(" ", r"\s+"), text, re.I)
    assert macro, f"results.md {run}: the macro F1 / balanced accuracy / 5-way accuracy sentence"
    f1, bal, n, acc = macro.groups()
    assert (f1, bal, acc) == (fmt(saved["macro_f1"], f1), fmt(saved["mean_balanced_accuracy"], bal),
                              fmt(saved["single_label_accuracy"]["value"], acc))
    assert int(n.replace(",", "")) == saved["single_label_accuracy"]["n"]
    table = [r for r in rows(text) if r[0] in saved["classes"]]
    assert [r[0] for r in table] == saved["classes"]
    keys = ["auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1"]
    for r in table:
        per = saved["per_class"][r[0]]
        assert r[1:7] == [fmt(per[k], c) for k, c in zip(keys, r[1:7])], f"results.md {run} {r[0]}: {r}"
        assert int(r[7]) == per["n_positive"]


def test_six_task_table_is_the_committed_metrics():
    text = section(page("docs/results.md"), "## The six benchmark tasks")
    cells = re.findall(r"(\d\.\d{3}) \[(\d\.\d{3}), (\d\.\d{3})\] `(\w+)`", text)
    assert len(cells) >= 14
    for value, low, high, run in cells:
        assert_interval((value, low, high), metrics(run)["macro_auc"], f"six-task table {run}")
    assert {"ensemble_greedy", "all_late_stacking", DEFAULT_MODEL, "all_time", "long_all_time"} <= {c[3] for c in cells}


# --- docs/comparison.md and docs/transfer.md --------------------------------------------------------

@pytest.mark.parametrize("name", ["docs/comparison.md", "docs/transfer.md"])
def test_run_tables_are_the_committed_metrics(name):
    checked = 0
    for row in rows(page(name)):
        run = run_of(row[:1])
        if not run:
            continue
        intervals = [(i, INTERVAL.fullmatch(c)) for i, c in enumerate(row)]
        intervals = [(i, m) for i, m in intervals if m]
        (i10, m10), rest = intervals[0], intervals[1:]
        assert_interval(m10.groups(), metrics(run)["macro_auc"], f"{name} {run} fold 10")
        f9 = row[i10 - 1]
        assert f9 == fmt(fold9(run), f9), f"{name} {run}: fold-9 {f9}, the run says {fold9(run):.4f}"
        if name.endswith("transfer.md"):
            auc = json.loads((REPO / "reports/transfer/runs" / run / "metrics.json").read_text())["macro_auc"]
            assert_interval(rest[0][1].groups(), auc, f"{name} {run} transfer")
        checked += 1
    assert checked >= (20 if "comparison" in name else 6)


# --- the README's example is what predict prints ----------------------------------------------------

def test_readme_predict_example_is_what_predict_prints(tmp_path):
    """"Diagnose your own ECG": the README shows predict's output on a real 500 Hz Challenge record;
    the same command prints exactly that (so the example works, with --resample, on the default model)."""
    readme = section(page("README.md"), "## Diagnose your own ECG")
    record = re.search(r"\(Georgia, `(\w+)`\)", readme).group(1)
    shown = re.search(r"```\n(model .*?)```", readme, re.S).group(1).strip().splitlines()
    source = REPO.parent / "shared" / "external" / "cinc2021-samples" / "georgia"
    if not (source / f"{record}.hea").is_file():
        pytest.skip(f"the shared Challenge samples are not at {source}")
    for f in source.glob(f"{record}.*"):
        shutil.copy(f, tmp_path)
    printed = subprocess.run([sys.executable, "-c", "from ecgnet.cli import app; app()", "predict",
                              f"{record}.hea", "--resample"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert printed.returncode == 0, printed.stderr
    assert [line.rstrip() for line in printed.stdout.strip().splitlines()] == [line.rstrip() for line in shown]


def test_threshold_shrinkage_page_is_rendered_from_its_json_and_docs_quote_it():
    """reports/own_data/calibration/shrinkage.md is exactly what its json renders to, and docs/own_data.md's
    figures on the choice are that json's."""
    import importlib.util

    folder = REPO / "reports" / "own_data" / "calibration"
    spec = importlib.util.spec_from_file_location("shrinkage_study", folder / "shrinkage.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    results = json.loads((folder / "shrinkage.json").read_text())
    assert study.render(results) == (folder / "shrinkage.md").read_text()
    chosen = results["chosen"]
    gain, fold10 = results["mean_gain_over_kinds_and_sizes"], results["reported_fold10_mean_gain"]
    docs = (DOCS / "own_data.md").read_text().replace("−", "-")
    for figure in (f"S = {chosen[2:]}", f"{gain[chosen]:+.4f}", f"{gain['s=0']:+.4f}", f"{fold10[chosen]:+.4f}",
                   f"{fold10['s=0']:+.3f}", f"{results['challenge'][chosen]['mean_balanced_accuracy']['after']:.3f}",
                   f"{results['challenge']['s=0']['mean_balanced_accuracy']['after']:.3f}"):
        assert figure in docs, figure
    from ecgnet.evaluation.calibrate_site import DEFAULT_SHRINKAGE

    assert DEFAULT_SHRINKAGE == float(chosen[2:])

"""`compare` end to end on two tiny runs (real data), and the complexity measures."""

from __future__ import annotations

import base64
import json
import math
import shutil
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from ecgnet.config import parse_config
from ecgnet.data.dataset import CropDataset
from ecgnet.evaluation.complexity import count_macs, epoch_seconds, latency_ms, n_windows
from ecgnet.evaluation import metrics as M
from ecgnet.inference.batch import predict_proba
from ecgnet.fileio import write_json
from ecgnet.models import build_model
from ecgnet.runs import count_parameters, save_model
from ecgnet.training.fit import fit_frontends

TINY = {
    "tiny_time": {"name": "time_resnet1d", "params": {"widths": [8, 16]}},
    "tiny_early": {"name": "early_fusion", "params": {"widths": [8, 16]}},
}


def _make_run(runs_dir: Path, name: str, model_cfg: dict, data, train_split, val_split, test_split) -> Path:
    """A run directory as `train` leaves it (config, run.json, weights, epoch log, val/test predictions
    and metrics), from one quick plain-torch epoch over 400 training records — Lightning is not needed.
    To keep it fast the fold-9 files cover 400 fold-9 records (all of fold 10, as compare requires)."""
    config = parse_config({"name": name, "model": model_cfg, "training": {"epochs": 1, "batch_size": 64}})
    torch.manual_seed(0)
    model = build_model(config.model.name, len(data.classes), **config.model.params)
    fit_frontends(model, train_split.signal)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    loader = torch.utils.data.DataLoader(CropDataset(train_split, 250), batch_size=64, shuffle=True)
    start = time.perf_counter()
    model.train()
    for batch in loader:
        loss = nn.functional.binary_cross_entropy_with_logits(model(batch["signal"], batch["metadata"]), batch["y"])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    seconds = time.perf_counter() - start
    model.eval()
    run_dir = runs_dir / name
    run_dir.joinpath("logs").mkdir(parents=True)
    pd.DataFrame({"epoch": [0, 0], "epoch_seconds": [seconds, np.nan], "val_macro_auc": [np.nan, 0.5]}).to_csv(
        run_dir / "logs" / "metrics.csv", index=False)
    info = {"name": name, "task": config.data.task, "classes": data.classes, "model": config.model.name,
            "parameters": count_parameters(model), "epochs_run": 1, "training_seconds": round(seconds, 1)}
    save_model(run_dir, model, config, info)
    thresholds = None
    for split_name, split in (("val", val_split), ("test", test_split)):
        probs = predict_proba(model, split.signal, split.metadata, 250, 125)
        thresholds = M.choose_thresholds(split.y, probs) if thresholds is None else thresholds
        write_json(run_dir / split_name / "metrics.json",
                   M.evaluate(split.y, probs, data.classes, thresholds=thresholds, n_boot=20))
        M.write_predictions(run_dir / split_name / "predictions.csv", split.ecg_ids, probs, data.classes)
    return run_dir


@pytest.fixture(scope="session")
def tiny_runs(ptbxl_superdiagnostic, tmp_path_factory) -> dict[str, Path]:
    data = ptbxl_superdiagnostic
    splits = data.split("train", 400, seed=0), data.split("val", 400, seed=0), data.split("test")
    runs_dir = tmp_path_factory.mktemp("cmp_runs")
    runs = {name: _make_run(runs_dir, name, cfg, data, *splits) for name, cfg in TINY.items()}
    # a run whose model cannot be loaded (as a late-fusion run without weights): outputs only
    late = runs_dir / "no_weights"
    shutil.copytree(runs["tiny_early"], late)
    (late / "model.safetensors").unlink()
    info = json.loads((late / "run.json").read_text())
    (late / "run.json").write_text(json.dumps({**info, "name": "no_weights", "kind": "late"}))
    runs["no_weights"] = late
    return runs


@pytest.mark.slow
def test_compare_end_to_end(tiny_runs, ptbxl_superdiagnostic, tmp_path):
    from ecgnet.evaluation.compare import compare

    out = tmp_path / "cmp"
    start = time.perf_counter()
    result = compare([tiny_runs["tiny_time"], tiny_runs["tiny_early"], tiny_runs["no_weights"]],
                     baseline=tiny_runs["tiny_time"], data=ptbxl_superdiagnostic, out_dir=out, explain=True,
                     n_boot=50, progress=False, explain_records=2, latency_repeats=3, ablation_records=300,
                     ig_steps=16)
    print(f"compare: {time.perf_counter() - start:.1f} s")
    for name in ("comparison.json", "comparison.md", "comparison.html"):
        assert (out / name).is_file()
    saved = json.loads((out / "comparison.json").read_text())
    names = [r["name"] for r in saved["runs"]]
    assert names == ["tiny_time", "tiny_early", "no_weights"]  # baseline first, each once
    html, md = (out / "comparison.html").read_text(), (out / "comparison.md").read_text()
    for name in names:
        assert name in html and name in md
    assert "data:image/png;base64," in html and "<img" in html and "src='figures/" not in html
    for fig in ("roc.png", "per_class_auc.png", "tradeoff.png", "lead_importance.png"):
        assert (out / "figures" / fig).is_file() and f"figures/{fig}" in md

    runs = {r["name"]: r for r in result["runs"]}
    self_diff = runs["tiny_time"]["vs_baseline"]
    assert self_diff["diff"] == 0 and self_diff["low"] == 0 and self_diff["high"] == 0

    for name in ("tiny_time", "tiny_early"):
        c = runs[name]["complexity"]
        assert c["parameters"] > 0 and c["macs_per_window"] > 0 and c["latency_ms"] > 0 and c["epoch_seconds"] > 0
        assert c["macs_per_ecg"] == 7 * c["macs_per_window"] and c["training_seconds"] >= 0
        # the accuracy rows are the run's own saved test metrics
        saved_test = json.loads((tiny_runs[name] / "test" / "metrics.json").read_text())
        assert runs[name]["accuracy"]["macro_auc"]["value"] == saved_test["macro_auc"]["value"]

    assert set(runs["tiny_early"]["ablation"]["drop"]) == {"time", "frequency", "metadata"}
    assert runs["tiny_early"]["modalities"] == ["time", "frequency", "metadata"]
    assert runs["tiny_time"]["modalities"] == ["time"] and "time+frequency+metadata" in md
    assert "Trained with fewer modalities" in md and "One modality dropped at test time" in md
    assert runs["tiny_time"]["imbalance"] == "none" and "| Imbalance |" in md
    assert not runs["tiny_time"]["ablation"]
    # the weightless run keeps its accuracy rows and gets a note instead of crashing the comparison
    assert runs["no_weights"]["notes"] and "macs_per_ecg" not in runs["no_weights"]["complexity"]
    assert runs["no_weights"]["accuracy"]["macro_auc"]["value"] == runs["tiny_early"]["accuracy"]["macro_auc"]["value"]

    # best by fold 9, never fold 10
    val = {n: r["accuracy"]["val_macro_auc"] for n, r in runs.items()}
    assert val[result["best"]] == max(val.values())
    ex = result["explanation"]
    assert ex is not None and set(ex["examples"]) == set(result["classes"])
    has_frequency = ex["run"] == "tiny_early"  # (ties go to the earlier run, so never the weightless copy)
    assert (out / "figures" / f"frequency_{result['classes'][0]}.png").is_file() == has_frequency
    assert (out / "figures" / f"time_{result['classes'][0]}.png").is_file()
    # a short conclusion (not a sentence per run) naming the best run, and the fusion model if it is not the best
    conclusion = result["conclusion"]
    assert conclusion[0].startswith("Best by fold-9") and result["best"] in conclusion[0] and len(conclusion) <= 7
    assert result["best"] == "tiny_early" or any(line.startswith("Best fusion model") and "tiny_early" in line
                                                 for line in conclusion)
    assert runs["tiny_early"]["strategy"] == "early (t+f+m)" and runs["tiny_time"]["strategy"] == "time only"
    # the page: conclusion, contents, then tables, each in its own scrolling box; the per-run verdicts in the
    # runs table; the trade-off figure right under it; the detail in the appendix
    assert html.index("<h2>Conclusion</h2>") < html.index("<nav>") < html.index("<table")
    assert html.count("<table>") == html.count("<div class='scroll'><table>") > 5
    runs_table = html[html.index("id='runs-accuracy-and-cost'"):html.index("<h2", html.index("id='runs-accuracy-and-cost'"))]
    assert "vs baseline" in runs_table and "data:image/png;base64," in runs_table  # the tradeoff figure
    assert sum(html.count(w) for w in ("<td>higher</td>", "<td class='l'>higher</td>", "n.s.</td>", "lower</td>")) == 2
    assert html.index("id='appendix'") > html.index("id='cost'") and "modality dropped" in html
    assert "figures/tradeoff.png" in md and md.index("## Conclusion") < md.index("| # |")


@pytest.mark.slow
def test_compare_can_skip_ablation_and_rejects_a_negative_count(tiny_runs, ptbxl_superdiagnostic, tmp_path):
    from ecgnet.errors import ECGNetError
    from ecgnet.evaluation.compare import compare

    runs = [tiny_runs["tiny_early"]]
    result = compare(runs, baseline=tiny_runs["tiny_time"], data=ptbxl_superdiagnostic, out_dir=tmp_path,
                     explain=True, n_boot=20, progress=False, latency_repeats=1, ablation_records=0,
                     explain_records=1, ig_steps=4)
    early = next(r for r in result["runs"] if r["name"] == "tiny_early")
    assert "ablation" not in early and early["complexity"]["macs_per_ecg"] > 0
    # skipping the ablation skips nothing else: the best run is still explained (it was 'no loadable model')
    assert result["explanation"] is not None and result["explanation"]["run"] == result["best"]
    assert not any("not explained" in note for r in result["runs"] for note in r["notes"])
    with pytest.raises(ECGNetError, match="ablation_records must be >= 0"):
        compare(runs, baseline=tiny_runs["tiny_time"], data=ptbxl_superdiagnostic, out_dir=tmp_path / "x",
                explain=False, progress=False, ablation_records=-1)
    assert not (tmp_path / "x").exists()


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(12, 4, kernel_size=3, padding=1, bias=False)
        self.fc = nn.Linear(4 + 8, 5)

    def forward(self, signal, metadata):
        return self.fc(torch.cat([self.conv(signal).mean(-1), metadata], dim=1))


def test_count_macs_of_a_known_model():
    macs = count_macs(_Tiny(), samples=250, windows=7)
    expected = 4 * 12 * 3 * 250 + 12 * 5  # conv: out ch × in ch × kernel × outputs; linear: in × out
    assert macs["per_window"] == expected and macs["per_ecg"] == 7 * expected
    assert n_windows(1000, 250, 125) == 7 and n_windows(1000, None, 125) == 1


class _Spectra(torch.nn.Module):
    def forward(self, signal, metadata):  # a per-lead rFFT and a per-lead STFT (64-point, hop 10, centred)
        leads = signal.reshape(-1, signal.shape[-1])
        stft = torch.stft(leads, 64, 10, window=torch.hann_window(64), return_complex=True)
        return torch.fft.rfft(signal).abs().sum() + stft.abs().sum()


def test_count_macs_includes_the_ffts():
    rfft = 2.5 * 250 * math.log2(250) * 12  # FLOPs: 12 real transforms of length 250
    stft = 2.5 * 64 * math.log2(64) * 12 * (250 // 10 + 1)  # 12 leads × 26 frames of length 64
    assert count_macs(_Spectra(), samples=250)["per_window"] == pytest.approx((rfft + stft) / 2, abs=2)


def test_latency_and_epoch_seconds(tmp_path):
    assert latency_ms(_Tiny(), threads=1, repeats=3, warmup=1) > 0
    assert epoch_seconds(tmp_path) is None
    (tmp_path / "logs").mkdir()
    pd.DataFrame({"epoch": [0, 0, 1, 1], "epoch_seconds": [2.0, None, 4.0, None]}).to_csv(
        tmp_path / "logs" / "metrics.csv", index=False)
    assert epoch_seconds(tmp_path) == pytest.approx(3.0)


def test_per_class_tables_turn_for_many_classes():
    from ecgnet.evaluation.compare_report import MANY_CLASSES
    from ecgnet.evaluation.compare_report.tables import _per_class_tables

    def runs(classes):
        per_class = {c: {"auc": 0.5 + i / 100, "n_positive": i + 1, "balanced_accuracy": 0.6, "accuracy": 0.7}
                     for i, c in enumerate(classes)}
        return [{"name": n, "accuracy": {"per_class": per_class}} for n in ("a", "b")]

    few = [f"C{i}" for i in range(5)]
    (_, header, rows, _), _ = _per_class_tables(few, runs(few))
    assert header == ["Model", *few] and [r[0] for r in rows] == ["a", "b"]
    many = [f"C{i}" for i in range(MANY_CLASSES + 5)]
    (_, header, rows, _), (_, _, acc_rows, _) = _per_class_tables(many, runs(many))
    assert header == ["Class", "n+", "a", "b"] and len(rows) == len(many)
    assert rows[3] == ["C3", "4", "0.530", "0.530"] and acc_rows[0][2] == "0.600 / 0.700"


@pytest.mark.parametrize("config, expected", [("intermediate_concat", "none"),
                                              ("intermediate_concat_focal", "focal loss"),
                                              ("intermediate_concat_oversample", "oversampling")])
def test_run_imbalance_reads_the_option_from_the_config(config, expected, tmp_path):
    from ecgnet.runs.describe import run_config, run_imbalance

    shutil.copy(Path(__file__).resolve().parents[1] / "configs" / f"{config}.yaml", tmp_path / "config.yaml")
    assert run_imbalance(run_config(tmp_path)) == expected
    assert run_config(tmp_path / "missing") is None and run_imbalance(None) is None


@pytest.mark.slow
def test_render_only_redraws_the_report_from_comparison_json(tiny_runs, ptbxl_superdiagnostic, ptbxl_root, tmp_path,
                                                             monkeypatch):
    """`compare --render-only OUT`: the same report from the saved comparison.json, nothing recomputed — the
    attribution PNGs reused, the ROC curves from the runs' saved predictions (skipped, with a note, without
    the labels)."""
    from ecgnet.evaluation.compare import compare
    from ecgnet.evaluation.compare_report import render_comparison

    out = tmp_path / "cmp"
    compare([tiny_runs["tiny_early"]], baseline=tiny_runs["tiny_time"], data=ptbxl_superdiagnostic, out_dir=out,
            explain=True, n_boot=20, progress=False, explain_records=1, latency_repeats=1, ablation_records=200,
            ig_steps=8)
    saved = json.loads((out / "comparison.json").read_text())
    heatmap = next((out / "figures").glob("time_*.png")).read_bytes()
    for f in ("comparison.html", "figures/roc.png", "figures/tradeoff.png"):
        (out / f).unlink()
    start = time.perf_counter()
    html_path = render_comparison(out, data_root=ptbxl_root)
    assert time.perf_counter() - start < 60
    html = html_path.read_text()
    assert (out / "figures" / "roc.png").is_file() and (out / "figures" / "tradeoff.png").is_file()
    assert base64.b64encode(heatmap).decode() in html  # the explain step's figure, reused as it was
    again = json.loads((out / "comparison.json").read_text())
    assert again["runs"] == saved["runs"] and again["conclusion"] == saved["conclusion"]
    assert html.index("Conclusion") < html.index("<table")

    monkeypatch.delenv("ECGNET_DATA", raising=False)
    (out / "figures" / "roc.png").unlink()
    html = render_comparison(out).read_text()
    assert not (out / "figures" / "roc.png").exists() and "ROC curves" in html and "Not drawn" in html


def test_the_committed_report_renders_from_its_json(ptbxl_root, tmp_path):
    """reports/comparison re-rendered from its comparison.json: the conclusion first, all tables in their own
    scrolling box, the conclusion short, and no per-run bullet list before the tables."""
    from ecgnet.evaluation.compare_report import render_comparison

    root = Path(__file__).resolve().parents[1]
    source = root / "reports" / "comparison"
    if not (source / "comparison.json").is_file():
        pytest.skip("no committed reports/comparison")
    out = tmp_path / "reports" / "comparison"
    shutil.copytree(source, out)
    json_before = json.loads((out / "comparison.json").read_text())
    html = render_comparison(out, data_root=ptbxl_root).read_text()
    head = html[:html.index("<table")]
    assert head.count("<li>") <= 7 and "<h2>Conclusion</h2>" in head
    assert html.count("<table>") == html.count("<div class='scroll'><table>")
    assert all(r["name"] in html for r in json_before["runs"])
    assert (out / "figures" / "roc.png").is_file()


def _fake_result(aucs: dict[str, float], macs: dict[str, float], best: str) -> dict:
    """A comparison result with just what the figures and tables read."""
    runs = []
    for name, auc in aucs.items():
        family = name.split("_")[0]
        runs.append({"name": name, "model": {"single": "time_resnet1d"}.get(family, f"{family}_fusion"),
                     "modalities": ["time"] if family == "single" else ["time", "frequency"], "imbalance": "none",
                     "strategy": family, "notes": [],
                     "accuracy": {"val_macro_auc": auc, "macro_auc": {"value": auc, "low": auc - 0.005, "high": auc + 0.005},
                                  "per_class": {"A": {"auc": auc, "n_positive": 50}, "B": {"auc": auc, "n_positive": 9}}},
                     "vs_baseline": {"diff": 0.0, "low": -0.001, "high": 0.001, "p_value": 0.5},
                     "complexity": {"macs_per_ecg": macs[name] * 1e6, "latency_ms": 1.0, "parameters": 10}})
    return {"baseline": next(iter(aucs)), "best": best, "runs": runs, "classes": ["A", "B"], "task": "t",
            "best_rule": "fold 9", "n_test_records": 100, "n_boot": 10}


def test_low_outliers_are_only_the_far_lows():
    from ecgnet.evaluation.compare_report.tradeoff import _low_outliers

    aucs = {"time": 0.934, "freq": 0.889, "freq_phase": 0.898, "spec": 0.910, "meta": 0.702, "late_avg": 0.9255,
            **{f"fusion{k}": 0.932 + k / 2000 for k in range(8)}}
    assert _low_outliers(aucs) == {"meta"}
    assert _low_outliers({k: v for k, v in aucs.items() if k != "meta"}) == set()
    assert _low_outliers({"a": 0.5, "b": 0.6, "c": 0.90, "d": 0.91, "e": 0.92}) == {"a", "b"}
    assert _low_outliers({"a": 0.1, "b": 0.9}) == set()  # never half of the runs


def test_tradeoff_figure_zooms_marks_the_outlier_and_labels_do_not_collide():
    from ecgnet.evaluation.compare_report.tradeoff import _tradeoff_figure

    # as crowded as the committed superdiagnostic report: equal costs, AUCs 0.0001 apart or equal
    aucs = {"single_time": 0.9338, "single_freq": 0.889, "single_spec": 0.9095, "single_meta": 0.702,
            "early_a": 0.932, **{f"intermediate_{k}": 0.9335 + k / 10000 for k in range(6)},
            "late_0": 0.9338, "late_1": 0.9347, "late_2": 0.9347, "late_3": 0.9348, "late_4": 0.9255}
    macs = {n: 219 if n in ("single_time", "late_0") else 54 if "freq" in n else 71 if "spec" in n else
            0.04 if "meta" in n else 235 if n.startswith("early") else 345 if n.startswith("intermediate") else 304
            for n in aucs}
    fig = _tradeoff_figure(_fake_result(aucs, macs, best="intermediate_5"))
    main, zoom = fig.axes[:2]
    assert main.get_ylim()[0] > 0.80 and main.get_ylim()[0] < 0.889 - 0.005  # zoomed, the others all in view
    marked = [t.get_text() for t in main.texts if "single_meta" in t.get_text()]
    assert marked and "0.702" in marked[0] and "below the axis" in marked[0]
    assert zoom.get_ylim()[1] - zoom.get_ylim()[0] < 0.01  # the crowd near the baseline, drawn apart
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    numbers = {str(i) for i in range(1, len(aucs) + 1)}
    for ax in (main, zoom):
        boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_text() in numbers]
        assert boxes
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                assert not boxes[a].overlaps(boxes[b]), (ax.get_title(), a, b)
    labelled = {t.get_text() for ax in (main, zoom) for t in ax.texts} & numbers
    assert labelled == numbers - {"4"}  # every run numbered, the outlier in its own box
    plt.close(fig)


def test_write_document_places_sections_and_scroll_boxes(tmp_path):
    from ecgnet.document import Section, write_document

    png = b"\x89PNG fake"
    path = write_document(tmp_path, "doc", "T", [
        Section("First", ["Name", "Value"], [["a", "1.0"], ["b", "2.0"]], "note", figures=["f.png"]),
        ("Second", ["x"], [["1"]], None)], {"f.png": ("cap", png), "g.png": ("other", png)},
        bullets=("Conclusion", ["one"]), contents=True)
    html, md = path.read_text(), (tmp_path / "doc.md").read_text()
    assert html.index("Conclusion") < html.index("<nav>") < html.index("id='first'") < html.index("<img") \
        < html.index("id='second'") < html.index("id='figures'")  # f.png inside First, g.png left for the end
    assert html.count("<div class='scroll'><table>") == 2 and "<td class='l'>a</td>" in html
    assert md.index("![cap](figures/f.png)") < md.index("## Second") < md.index("![other](figures/g.png)")


def test_the_tradeoff_axis_is_labelled_within_a_decade():
    """Runs of 219–345 M MACs: a log axis with ticks at decades only showed no label at all."""
    import matplotlib.pyplot as plt

    from ecgnet.evaluation.compare_report.tradeoff import _log_axis

    fig, ax = plt.subplots()
    ax.plot([219, 345], [0.93, 0.94])
    _log_axis(ax, 219, 345)
    fig.canvas.draw()
    low, high = ax.get_xlim()
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and low <= t.get_position()[0] <= high]
    plt.close(fig)
    assert shown == ["200", "500"]


def test_the_conclusion_says_how_many_records_the_ablation_used_and_no_one_value_range():
    """'time costs 0.079–0.079 macro AUC' with one fusion model, and no word of the ablation's sample size
    (found in an audit): one loss is one number, and the records are named."""
    from ecgnet.evaluation.compare_report.conclusion import conclusion

    source = Path(__file__).resolve().parents[1] / "reports" / "comparison" / "comparison.json"
    if not source.is_file():
        pytest.skip("no committed reports/comparison")
    saved = json.loads(source.read_text())
    why = next(line for line in conclusion(saved["runs"], saved["baseline"], saved["best"]) if line.startswith("Why"))
    n = {r["ablation"]["n_records"] for r in saved["runs"] if (r.get("ablation") or {}).get("drop")}
    assert f"({'/'.join(map(str, sorted(n)))} fold-10 records)" in why
    fusion = [r for r in saved["runs"] if (r.get("ablation") or {}).get("drop")]
    base = next(r for r in saved["runs"] if r["name"] == saved["baseline"])
    one = conclusion([base, fusion[0]], saved["baseline"], fusion[0]["name"])  # one fusion model: one loss
    line = next(line for line in one if line.startswith("Why"))
    top = line.split(" costs ")[1].split(" macro AUC")[0]
    assert "–" not in top, line


@pytest.mark.slow
def test_compare_takes_the_same_classes_in_another_order_and_refuses_a_manifest_run(tiny_runs, ptbxl_superdiagnostic,
                                                                                   tmp_path):
    """A run whose classes are the baseline's in another order (a manifest's NORM, MI, STTC, CD, HYP) is
    compared, not refused as 'classes differ'; a run scored on its manifest's records is refused for that."""
    from ecgnet.errors import ECGNetError
    from ecgnet.evaluation.compare import compare

    original = tiny_runs["tiny_early"]
    reordered = Path(shutil.copytree(original, tmp_path / "runs" / "reordered"))
    classes = json.loads((original / "run.json").read_text())["classes"]
    order = classes[::-1]
    for name in ("run.json", "test/metrics.json"):
        described = json.loads((reordered / name).read_text())
        (reordered / name).write_text(json.dumps({**described, "classes": order, "name": "reordered"}))
    table = pd.read_csv(original / "test" / "predictions.csv")
    table[["ecg_id", *order]].to_csv(reordered / "test" / "predictions.csv", index=False)
    result = compare([reordered], baseline=tiny_runs["tiny_time"], data=ptbxl_superdiagnostic, out_dir=tmp_path / "a",
                     explain=False, n_boot=20, progress=False, latency_repeats=1, ablation_records=0)
    assert result["classes"] == classes
    got = next(r for r in result["runs"] if r["name"] == "reordered")["accuracy"]["macro_auc"]["value"]
    assert got == pytest.approx(json.loads((original / "test" / "metrics.json").read_text())["macro_auc"]["value"])
    manifest_run = Path(shutil.copytree(original, tmp_path / "runs" / "site"))
    described = json.loads((manifest_run / "run.json").read_text())
    (manifest_run / "run.json").write_text(json.dumps({**described, "collection": {"name": "clinic"}}))
    with pytest.raises(ECGNetError, match="trained and scored on the manifest 'clinic', not on PTB-XL's folds"):
        compare([manifest_run], baseline=tiny_runs["tiny_time"], data=ptbxl_superdiagnostic, out_dir=tmp_path / "b",
                explain=False, progress=False, ablation_records=0)


def test_compare_takes_bundled_model_names_as_runs(ptbxl_root, tmp_path):
    """`ecgnet compare long_time --baseline baseline_time`: --baseline took a bundled name, the runs did not
    ('long_time: no such run directory')."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    result = CliRunner().invoke(app, ["compare", "long_time", "--baseline", "baseline_time", "--out", str(tmp_path),
                                      "--no-explain", "--ablation-records", "0", "--n-boot", "20", "--no-progress",
                                      "--data", str(ptbxl_root)])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads((tmp_path / "comparison.json").read_text())["runs"]] == \
        ["baseline_time", "long_time"]


def test_bad_compare_distill_and_sweep_options_are_refused_before_any_work(tmp_path):
    """--n-boot 0 and --explain-records 0 failed with a traceback after all the work (distill and sweep left
    half-written runs), and --out naming a file after the comparison was computed (found in a CLI audit)."""
    from typer.testing import CliRunner

    from ecgnet.cli import app

    (tmp_path / "taken").write_text("x")
    cases = [(["compare", "long_time", "--out", str(tmp_path / "taken")], "a file, not a folder"),
             (["compare", "long_time", "--n-boot", "0"], "--n-boot"),
             (["compare", "long_time", "--explain-records", "0"], "--explain-records"),
             (["distill", "--teacher", "ensemble_greedy", "--student", "x.yaml", "--n-boot", "0"], "--n-boot"),
             (["sweep", "-c", "x.yaml", "--space", "s.yaml", "--trials", "1", "--n-boot", "0"], "--n-boot")]
    for args, said in cases:
        result = CliRunner().invoke(app, [*args, "--runs-dir", str(tmp_path / "runs")] if args[0] != "compare"
                                    else args)
        assert result.exit_code == 2 and said in result.output and "Traceback" not in result.output, args
    assert not (tmp_path / "runs").exists()


def test_compare_names_a_folder_that_is_no_run(tmp_path):
    """A plain folder or a sweep's study folder was told 'test/metrics.json missing — evaluate the run first'."""
    from ecgnet.errors import ECGNetError
    from ecgnet.evaluation.compare import read_run_outputs

    (tmp_path / "plain").mkdir()
    with pytest.raises(ECGNetError, match=r"plain: not an ECGNet run directory \(no config.yaml or run.json\)"):
        read_run_outputs(tmp_path / "plain")

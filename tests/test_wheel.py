"""ECGNet installed like any Python package: build the wheel, install it outside the checkout, and use
the `ecgnet` command from another directory with the bundled models (no runs/ folder in reach).

The sdist is built offline from a copy of the sources (nothing lands in the checkout) and the wheel from the
sdist, as `make wheel` does; the wheel is installed with ``pip install --target`` into a bare folder put first
on PYTHONPATH; its dependencies come from the test's own environment. Every install path carries the guides
(docs/: setup.py's build step, MANIFEST.in): the sdist, the wheel built from it, and `pip install .`. The slow
tests at the end install it as a user would, into a clean virtual environment with only what the wheel declares,
and use `predict`, `export` and `serve` there.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from ecgnet.manual import EXAMPLES
from ecgnet.runs.bundled import BUNDLED_FILES, BUNDLED_MODELS, DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]


def run(cmd, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


SOURCES = ("src", "docs", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")  # what `make wheel` copies
SHIPPED_DOCS = {p.name for p in (REPO / "docs").glob("*.md")} | set(EXAMPLES)  # what an install carries in ecgnet/docs


def source_tree(dest: Path) -> Path:
    """A clean copy of the sources a build reads, as `make wheel` makes it."""
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(REPO / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    sources = source_tree(tmp_path_factory.mktemp("sdist") / "sources")
    run([sys.executable, "-c", "from setuptools import build_meta; build_meta.build_sdist('dist')"], cwd=sources)
    (path,) = (sources / "dist").glob("ecgnet-*.tar.gz")
    return path


@pytest.fixture(scope="module")
def wheel(sdist, tmp_path_factory) -> Path:
    """The wheel built from the sdist, as `make wheel` (and `python -m build`) does."""
    dist = tmp_path_factory.mktemp("wheel")
    run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, sdist])
    (path,) = dist.glob("ecgnet-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """→ a function running the installed `ecgnet` command (PYTHONPATH: only the install folder) in
    a directory outside the checkout."""
    site = tmp_path_factory.mktemp("site")
    run([*PIP, "install", "--no-deps", "--no-index", "--target", site, wheel])
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}
    where = run([sys.executable, "-c", "import ecgnet.runs.bundled as b; print(b.__file__); print(b.bundled_root())"],
                cwd=elsewhere, env=env).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), f"ecgnet not imported from the wheel: {where}"
    command = site / "bin" / "ecgnet"
    assert command.is_file(), "the wheel installed no `ecgnet` command"

    def ecgnet(*args) -> str:
        return run([sys.executable, command, *args], cwd=elsewhere, env=env).stdout

    return ecgnet


@pytest.mark.slow
def test_wheel_holds_the_bundled_models(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in BUNDLED_MODELS:
        for f in BUNDLED_FILES:
            assert f"ecgnet/models_bundled/{model}/{f}" in names


@pytest.mark.slow
def test_sdist_carries_the_guides_once(sdist):
    with tarfile.open(sdist) as archive:
        files = [m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile()]
    assert {f.removeprefix("docs/") for f in files if f.startswith("docs/")} == SHIPPED_DOCS
    assert "setup.py" in files and not any(f.startswith("src/ecgnet/docs/") for f in files)  # docs/: the one copy


@pytest.mark.slow
def test_wheel_from_the_sdist_carries_the_guides(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.removeprefix("ecgnet/docs/") for n in names if n.startswith("ecgnet/docs/")} == SHIPPED_DOCS


@pytest.mark.slow
def test_pip_install_of_the_source_tree_carries_the_guides(tmp_path):
    """`pip install .` (`pip install git+URL` builds the same way: a wheel straight from the tree, no sdist) into a
    fresh virtual environment, whose python finds the guides and the example in the installed package. The test's
    own pip and setuptools build it (offline); the venv holds ecgnet alone, which ecgnet.manual needs."""
    sources = source_tree(tmp_path / "checkout")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    # --ignore-installed: with --prefix alone, pip would first uninstall the test environment's own ecgnet
    run([*PIP, "install", "--no-deps", "--no-build-isolation", "--no-index", "--ignore-installed", "--prefix", venv,
         sources])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    shown = run([venv / "bin" / "python", "-c", "from ecgnet import manual; print(manual.docs_folder()); "
                 "print(manual.read_guide('own_data'), end=''); print(manual.read_guide('onnx_without_ecgnet.py'))"],
                cwd=tmp_path, env=env).stdout
    folder, text = shown.split("\n", 1)
    assert Path(folder).is_relative_to(venv) and Path(folder).name == "docs"
    guide, script = ((REPO / "docs" / name).read_text() for name in ("own_data.md", "onnx_without_ecgnet.py"))
    assert text == guide + script + "\n"


@pytest.mark.slow
def test_a_build_without_the_guides_fails(tmp_path):
    sources = source_tree(tmp_path / "checkout")
    shutil.rmtree(sources / "docs")
    proc = subprocess.run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp_path / "dist",
                           str(sources)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "no guides (*.md) to put in the package" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_installed_version_and_models(installed):
    from ecgnet import __version__

    assert installed("--version").strip() == f"ecgnet {__version__}"
    table = installed("models")
    for model in BUNDLED_MODELS:
        assert model in table
    config = installed("models", "--config", "long_time")  # a wheel user's config to start from
    assert "name: long_time" in config and "time_resnet1d" in config
    # the guides the help points to, with no repository at hand (a wheel-user audit found none)
    listed = installed("docs")
    assert "own_data" in listed and "ecgnet/docs" in listed.split("Guides in ")[1].split()[0]  # the wheel's copy
    assert installed("docs", "own_data") == (REPO / "docs" / "own_data.md").read_text()
    # the deployment example export.md links to, written out for a machine without ecgnet
    assert "onnx_without_ecgnet.py" in listed.split("Example scripts")[1]
    script = (REPO / "docs" / "onnx_without_ecgnet.py").read_text()
    assert installed("docs", "onnx_without_ecgnet.py") == installed("docs", "onnx_without_ecgnet") == script


@pytest.mark.slow
def test_installed_predict(installed, ptbxl_root):
    """PTB-XL record 1 (a normal ECG, fold 3) with the default and with a multimodal bundled model."""
    record = ptbxl_root / "records100" / "00000" / "00001_lr.hea"
    lines = [line.split() for line in installed("predict", record).splitlines() if line.startswith("  ")]
    assert len(lines) == 3 and lines[0][0] == "NORM" and lines[0][4] == "positive"  # class, p, ≥, threshold, call
    (result,) = json.loads(installed("predict", record, "--checkpoint", "intermediate_concat_weighted_bce", "--json"))
    assert result["model"] == "intermediate_concat_weighted_bce" != DEFAULT_MODEL
    assert result["diagnoses"][0]["class"] == "NORM" and result["diagnoses"][0]["positive"]


@pytest.mark.slow
def test_installed_predict_on_the_shared_challenge_folder(installed, tmp_path):
    """The issue's 'done when': the installed wheel reads every shared Challenge record and diagnoses
    the folder in one command, with the same probabilities as the checkout."""
    samples = REPO.parent / "shared" / "external" / "cinc2021-samples"
    if not samples.is_dir():
        pytest.skip(f"the shared Challenge samples are not at {samples}")
    out = tmp_path / "predictions.csv"
    installed("predict", samples, "--resample", "--out", out, "--no-progress")
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == 122 and (table["error"] == "").all()
    from ecgnet.inference.predictor import Predictor

    header = samples / "georgia" / "E00015.hea"  # a 2020-release header quirk
    row = table.set_index("path").loc[str(header)]
    expected = {d["class"]: d["probability"] for d in Predictor(DEFAULT_MODEL).predict_file(header, resample=True)["diagnoses"]}
    assert {c: row[f"p_{c}"] for c in expected} == pytest.approx(expected, abs=1e-4)
    assert "header quirk" in row["notes"] and "amplitude" in row["warnings"] and row["positives"] == ""  # amplitude flagged: no calls


# --- a clean virtual environment with only what the wheel declares ---------------------------------

SAMPLES = REPO.parent / "shared" / "external" / "cinc2021-samples"
RECORD_500HZ = SAMPLES / "georgia" / "E00001.hea"  # a real 500 Hz, 10 s Challenge record


@pytest.fixture(scope="module")
def clean_venv(wheel, tmp_path_factory):
    """→ (the venv's `ecgnet` command, its python, the environment to run them in, a folder outside the checkout).

    A new venv (no system site-packages, nothing of the test's environment) gets torch 2.13.0 first — the CPU
    wheel that the pip configuration's find-links offers here (installing the wheel straight away would pull
    torch with CUDA) — then the wheel with the dependencies it declares, held to the tested versions by
    requirements.lock as constraints (``-c`` pins versions and adds no package). A dependency missing from
    pyproject.toml fails here, as `serve` once did for captum."""
    root = tmp_path_factory.mktemp("clean")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", venv])
    python, command = venv / "bin" / "python", venv / "bin" / "ecgnet"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["COLUMNS"] = "200"
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    run([*pip, "install", "torch==2.13.0"], timeout=1500, env=env)
    run([*pip, "install", "-c", REPO / "requirements.lock", wheel], timeout=1500, env=env)
    run([*pip, "check"], env=env)  # every declared requirement satisfied
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    where = run([python, "-c", "import ecgnet; print(ecgnet.__file__)"], cwd=elsewhere, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), f"ecgnet not imported from the clean venv: {where}"
    return command, python, env, elsewhere


@pytest.mark.slow
def test_clean_venv_predicts_a_500_hz_record(clean_venv):
    """The README's "diagnose your own ECG": a real 500 Hz record with --resample, the default model, the same
    probabilities as the checkout."""
    if not RECORD_500HZ.is_file():
        pytest.skip(f"the shared Challenge samples are not at {SAMPLES}")
    command, _, env, elsewhere = clean_venv
    (got,) = json.loads(run([command, "predict", RECORD_500HZ, "--resample", "--json"], cwd=elsewhere, env=env).stdout)
    notes = got.get("notes", []) + got["warnings"]  # the routine "resampled" is a note, not a warning
    assert got["model"] == DEFAULT_MODEL and any("resampled" in n for n in notes)
    checkout = subprocess.run([sys.executable, "-c", "from ecgnet.cli import app; app()", "predict", str(RECORD_500HZ),
                               "--resample", "--json"], capture_output=True, text=True, timeout=300)
    assert checkout.returncode == 0, checkout.stderr
    (expected,) = json.loads(checkout.stdout)
    assert {d["class"]: d["probability"] for d in got["diagnoses"]} == pytest.approx(
        {d["class"]: d["probability"] for d in expected["diagnoses"]}, abs=1e-6)
    # resampling is the default (a wheel user's 500 Hz record worked only with --resample); --no-resample refuses
    # it, in one line, with exit status 1 (see docs/reliability.md)
    default = subprocess.run([str(command), "predict", str(RECORD_500HZ), "--json"], capture_output=True, text=True,
                             cwd=elsewhere, env=env, timeout=300)
    assert default.returncode == 0 and json.loads(default.stdout)[0]["diagnoses"] == got["diagnoses"]
    refused = subprocess.run([str(command), "predict", str(RECORD_500HZ), "--no-resample"], capture_output=True,
                             text=True, cwd=elsewhere, env=env, timeout=300)
    assert refused.returncode == 1 and "--no-resample" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.slow
def test_clean_venv_exports_onnx(clean_venv):
    command, python, env, elsewhere = clean_venv
    run([command, "export", "baseline_time", "--out", "baseline.onnx"], cwd=elsewhere, env=env)
    run([python, "-c", "import onnx; onnx.checker.check_model(onnx.load('baseline.onnx'))"], cwd=elsewhere, env=env)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_clean_venv_serves_the_viewer(clean_venv):
    command, python, env, elsewhere = clean_venv
    port = _free_port()
    server = subprocess.Popen([str(command), "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=elsewhere,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health, deadline = None, time.monotonic() + 180
        while health is None and time.monotonic() < deadline:
            assert server.poll() is None, f"ecgnet serve exited ({server.returncode}):\n{server.stdout.read()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
                    health = json.loads(answer.read())
            except OSError:
                time.sleep(0.5)
        assert health is not None, "no answer from /healthz within 180 s"
        shipped = run([python, "-c", "from ecgnet.runs.bundled import BUNDLED_MODELS; print(len(BUNDLED_MODELS))"],
                      cwd=elsewhere, env=env).stdout
        assert health["status"] == "ok" and health["models"] == int(shipped)  # the bundled models, no runs/ here
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
def test_clean_venv_fine_tunes_on_a_manifest_and_uses_the_run_everywhere(clean_venv):
    """Your own data from the installed wheel, outside the checkout: a manifest of real 500 Hz Challenge records,
    a cross-validated fine-tune of the bundled long_time, then the fine-tuned run in predict, evaluate, calibrate
    and export (the issue's 'works everywhere a PTB-XL run does')."""
    if not SAMPLES.is_dir():
        pytest.skip(f"the shared Challenge samples are not at {SAMPLES}")
    command, python, env, elsewhere = clean_venv
    work = elsewhere / "own_data"
    for source in ("georgia", "ningbo"):
        shutil.copytree(SAMPLES / source, work / "records" / source)
    run([command, "manifest", work / "records", "--out", work / "m.csv"], cwd=elsewhere, env=env)
    manifest = pd.read_csv(work / "m.csv")
    assert len(manifest) >= 40 and set(manifest["source"]) == {"georgia", "ningbo"}
    run([command, "train", "--manifest", work / "m.csv", "--from", "long_time", "--folds", "2", "--runs-dir",
         work / "runs", "--set", "name=site_ft", "--set", "training.epochs=2", "--set", "training.threads=1",
         "--n-boot", "50", "--no-progress"], cwd=elsewhere, env=env, timeout=900)
    ft = work / "runs" / "site_ft"
    predictions = pd.read_csv(ft / "cv" / "predictions.csv")
    assert len(predictions) == len(manifest) and predictions.filter(like="p_").notna().all().all()
    record = work / "records" / "georgia" / "E00001.hea"
    shown = " ".join(run([command, "predict", record, "--checkpoint", ft, "--resample"], cwd=elsewhere, env=env).stdout.split())
    assert "site_ft" in shown and "chosen on pooled out-of-fold predictions" in shown
    assert "no positive/negative call for MI" in shown  # no MI positive in these records: no MI threshold, no crash
    run([command, "evaluate", ft, "--manifest", work / "m.csv", "--out", work / "eval", "--n-boot", "50",
         "--no-progress"], cwd=elsewhere, env=env)
    assert json.loads((work / "eval" / "metrics.json").read_text())["n_scored"] == len(manifest)
    run([command, "calibrate", ft, "--manifest", work / "m.csv", "--site", "clinic", "--n-boot", "50",
         "--no-progress"], cwd=elsewhere, env=env)
    assert (ft / "profiles" / "clinic.json").is_file()
    run([command, "export", ft, "--out", work / "site_ft.onnx"], cwd=elsewhere, env=env)
    run([python, "-c", f"import onnx; onnx.checker.check_model(onnx.load({str(work / 'site_ft.onnx')!r}))"],
        cwd=elsewhere, env=env)

"""ONNX export and the ONNX Runtime engine: parity with torch on fold 10, the metadata, predict's engine.

The parity tests export the baseline and the best fusion model (FFT and STFT frontends) and compare
probabilities on 500 fold-10 records, windowed by the same code as torch.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from ecgnet.cli import app
from ecgnet.errors import ECGNetError
from ecgnet.evaluation.inference import windowed_proba
from ecgnet.export import OnnxModel, export
from ecgnet.modalities import dft
from ecgnet.modalities.spectrogram import SpectrogramFrontend
from ecgnet.predict import Predictor
from ecgnet.runs import load_run, save_model

RUNS = Path(__file__).resolve().parents[1] / "runs"
PARITY_RECORDS = 500
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fold10_sample(ptbxl_superdiagnostic):
    return ptbxl_superdiagnostic.split("test", max_records=PARITY_RECORDS, seed=0)


@pytest.mark.parametrize("run", ["baseline_time", "intermediate_concat_weighted_bce"])
def test_onnx_runtime_matches_torch_on_fold_10(run, fold10_sample, tmp_path):
    torch_engine = Predictor(RUNS / run)
    path = export(RUNS / run, out=tmp_path / "model.onnx")
    onnx_engine = OnnxModel(path)
    signal, metadata = torch.as_tensor(fold10_sample.signal), torch.as_tensor(fold10_sample.metadata)
    args = (torch_engine.window, torch_engine.stride, torch_engine.config.data.aggregate)
    expected = windowed_proba(torch_engine.model, signal, metadata, *args).numpy()
    got = windowed_proba(onnx_engine, signal, metadata, *args).numpy()
    assert got.shape == expected.shape == (PARITY_RECORDS, 5)
    assert np.abs(got - expected).max() <= TOLERANCE

    # what a consumer of the file needs, without ecgnet
    assert onnx_engine.classes == torch_engine.classes == ["CD", "HYP", "MI", "NORM", "STTC"]
    assert onnx_engine.thresholds == torch_engine.thresholds and len(onnx_engine.thresholds) == 5
    pre = onnx_engine.preprocessing
    assert (pre["sampling_rate"], pre["window"], pre["stride"], pre["aggregate"]) == (100, 250, 125, "max")
    assert pre["input"] == "window" and pre["windows_per_segment"] == 7 and len(pre["leads"]) == 12
    assert onnx_engine.source["run"] == run


def test_the_exported_spectrogram_keeps_its_log_floor():
    """log(power + 1e-8) of a silent lead is -18.42; the exporter's graph rewriting dropped the 1e-8."""
    import onnxruntime as ort

    frontend = SpectrogramFrontend().eval()  # unfitted: standardisation is the identity
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(frontend, (torch.randn(2, 12, 250),), dynamo=True, optimize=False)
    session = ort.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: np.zeros((2, 12, 250), np.float32)})[0]
    assert np.allclose(out, np.log(1e-8), atol=1e-4)


def test_exported_transforms_match_torch(monkeypatch):
    """The basis forms that an export writes compute torch's FFT and STFT."""
    x = torch.randn(24, 250, dtype=torch.float64)
    window = torch.hann_window(64, dtype=torch.float64)
    fft, stft = dft.rfft(x), dft.stft(x, 64, 10, window)
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
    assert torch.allclose(dft.rfft(x), fft, atol=1e-9)
    assert torch.allclose(dft.stft(x, 64, 10, window), stft, atol=1e-9)


def test_predict_engine_onnx_file_in_memory_and_stale(untrained_run, write_record, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(untrained_run, run)
    header, _ = write_record("rec")
    expected = Predictor(run).predict_file(header)

    in_memory = Predictor(run, engine="onnx")  # no model.onnx yet: exported in memory
    assert "in memory" in in_memory.model.name and not (run / "model.onnx").exists()
    result = CliRunner().invoke(app, ["export", str(run)])
    assert result.exit_code == 0, result.output
    from_file = Predictor(run, engine="onnx")
    assert from_file.model.name == str(run / "model.onnx")
    for predictor in (in_memory, from_file):
        got = predictor.predict_file(header)
        assert [d["class"] for d in got["diagnoses"]] == [d["class"] for d in expected["diagnoses"]]
        assert np.allclose([d["probability"] for d in got["diagnoses"]],
                           [d["probability"] for d in expected["diagnoses"]], atol=1e-4)

    with pytest.raises(ECGNetError, match="takes inputs of 250 samples, not 200"):
        in_memory.model(torch.zeros(1, 12, 200), torch.zeros(1, 8))
    assert in_memory.model.modalities == () and in_memory.model.preprocessing["metadata_features"][0] == "age"

    model, config, info = load_run(run)  # retrained, say: new weights, model.onnx left behind
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    save_model(run, model, config, info)
    with pytest.raises(ECGNetError, match="exported from other weights"):
        Predictor(run, engine="onnx")
    with pytest.raises(ECGNetError, match="--engine must be one of"):
        Predictor(run, engine="tensorrt")


def test_export_errors_name_the_file(untrained_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(untrained_run), "--format", "tflite", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "--format must be one of onnx" in result.output
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ECGNetError, match="bad.onnx: not a readable ONNX model"):
        OnnxModel(tmp_path / "bad.onnx")
    props_free = tmp_path / "plain.onnx"
    x, y = (onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1]) for n in "xy")
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "plain", [x], [y])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]), props_free)
    with pytest.raises(ECGNetError, match="plain.onnx: not an ECGNet export"):
        OnnxModel(props_free)

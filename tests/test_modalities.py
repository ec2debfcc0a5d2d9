"""Modality frontends, their encoders and the registered unimodal models, on synthetic data (fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgnet.modalities.frequency import FrequencyFrontend
from ecgnet.modalities.metadata import MetadataFrontend
from ecgnet.modalities.spectrogram import SpectrogramFrontend
from ecgnet.models import build_model
from ecgnet.models.encoders.cnn2d import CNN2d
from ecgnet.models.encoders.fft_transformer import FFTTransformer
from ecgnet.models.encoders.mlp import MLP

FS = 100


def sine(freq: float = 10.0, samples: int = 250, batch: int = 1) -> torch.Tensor:
    t = torch.arange(samples, dtype=torch.float32) / FS
    return torch.sin(2 * torch.pi * freq * t).expand(batch, 12, samples).clone()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("batch, samples", [(4, 250), (2, 1000)])
def test_frontend_shapes(batch, samples):
    x = torch.randn(batch, 12, samples)
    assert FrequencyFrontend().forward(x).shape == (batch, 12, samples // 2 + 1)
    assert FrequencyFrontend(phase=True)(x).shape == (batch, 36, samples // 2 + 1)
    assert SpectrogramFrontend()(x).shape == (batch, 12, 33, samples // 10 + 1)
    meta = torch.randn(batch, 8)
    assert torch.equal(MetadataFrontend()(meta), meta)
    assert MetadataFrontend.out_features == 8


def test_frequency_frontend_peaks_at_sine_frequency():
    frontend = FrequencyFrontend()
    out = frontend(sine(10.0))
    freqs = frontend.frequencies(250, fs=FS)
    assert len(freqs) == out.shape[-1] and freqs[0] == 0 and freqs[-1] == pytest.approx(50)
    assert freqs[1] == pytest.approx(0.4)
    peak = out.argmax(dim=-1)
    assert torch.all(peak == int(np.argmin(np.abs(freqs - 10.0))))
    assert freqs[peak[0, 0]] == pytest.approx(10.0)


def test_frequency_frontend_phase_channels():
    frontend = FrequencyFrontend(phase=True)
    assert frontend.out_channels == 36 and FrequencyFrontend().out_channels == 12
    x = torch.randn(2, 12, 250)
    out = frontend(x)
    assert torch.allclose(out[:, :12], FrequencyFrontend()(x))
    cos, sin = out[:, 12:24], out[:, 24:]
    assert torch.allclose(cos ** 2 + sin ** 2, torch.ones_like(cos), atol=1e-4)


def test_spectrogram_frontend_peaks_at_sine_frequency():
    frontend = SpectrogramFrontend()
    out = frontend(sine(10.0))
    freqs = frontend.frequencies(FS)
    assert len(freqs) == out.shape[2] == 33
    peak = out.amax(dim=-1).argmax(dim=-1)  # max over time, then the strongest frequency row
    assert torch.all(peak == int(np.argmin(np.abs(freqs - 10.0))))


@pytest.mark.parametrize("frontend", [FrequencyFrontend(), SpectrogramFrontend()])
def test_fit_sets_inner_standardisation(frontend):
    rng = np.random.default_rng(0)
    signals = (rng.normal(size=(20, 12, 250)) * 2 + np.arange(12)[None, :, None]).astype(np.float32)
    assert frontend.fit(signals) is frontend
    np.testing.assert_allclose(frontend.norm.mean.squeeze(1).numpy(), signals.mean(axis=(0, 2)), atol=1e-4)
    np.testing.assert_allclose(frontend.norm.std.squeeze(1).numpy(), signals.std(axis=(0, 2), ddof=1), rtol=1e-3)
    assert set(frontend.state_dict()) == {"norm.mean", "norm.std"}


@pytest.mark.parametrize("encoder, x", [
    (FFTTransformer(12, 5), torch.randn(4, 12, 126)),
    (FFTTransformer(36, 5), torch.randn(4, 36, 501)),
    (FFTTransformer(12, 5, max_tokens=8), torch.randn(2, 12, 16)),
    (CNN2d(12, 5), torch.randn(4, 12, 33, 26)),
    (CNN2d(12, 5), torch.randn(2, 12, 33, 101)),
    (CNN2d(12, 5, widths=(8, 8, 8, 8, 8)), torch.randn(2, 12, 3, 2)),
    (MLP(8, 5), torch.randn(4, 8)),
])
def test_encoder_api(encoder, x):
    features = encoder.forward_features(x)
    assert features.shape == (x.shape[0], encoder.num_features)
    logits = encoder(x)
    assert logits.shape == (x.shape[0], 5)
    logits.sum().backward()
    grads = [p.grad for p in encoder.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_fft_transformer_rejects_too_many_bins():
    with pytest.raises(ValueError, match="max_tokens"):
        FFTTransformer(12, 5, max_tokens=8)(torch.randn(1, 12, 17))


@pytest.mark.parametrize("name", ["frequency_transformer", "spectrogram_cnn2d", "metadata_mlp"])
@pytest.mark.parametrize("samples", [250, 1000])
def test_registered_models_run(name, samples):
    model = build_model(name, 5)
    logits = model(torch.randn(3, 12, samples), torch.randn(3, 8))
    assert logits.shape == (3, 5) and torch.isfinite(logits).all()
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 12, samples), torch.randn(1, 8)).shape == (1, 5)


def test_phase_option_builds():
    model = build_model("frequency_transformer", 5, phase=True, d_model=32, n_layers=1, n_heads=2)
    assert model(torch.randn(3, 12, 250), torch.randn(3, 8)).shape == (3, 5)


def test_centred_time_frontend_ignores_a_baseline_offset():
    from ecgnet.modalities.time import TimeFrontend

    torch.manual_seed(0)
    x = torch.randn(4, 12, 250)
    offset = torch.randn(4, 12, 1) * 2
    centred = TimeFrontend(12, center=True)
    torch.testing.assert_close(centred(x + offset), centred(x))
    assert not torch.allclose(TimeFrontend(12)(x + offset), TimeFrontend(12)(x))

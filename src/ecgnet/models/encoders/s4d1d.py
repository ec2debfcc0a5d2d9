"""A diagonal state-space model over (channels × time): S4D (Gu, Gupta, Goel & Ré 2022, "On the
parameterization and initialization of diagonal state space models"), in plain torch.

Each channel of the sequence runs through its own linear state-space model x' = A x + B u, y = C x + D u
with a diagonal complex A. Discretised with step Δ (zero-order hold), its output is the input convolved with
a kernel as long as the sequence, computed in closed form (a Vandermonde product) rather than learned tap by
tap; its taps decay at rates Re(A) and oscillate at frequencies Im(A), so one layer sees the whole window:

    K[l] = 2 · Re( Σ_n C_n · (exp(Δ A_n) − 1) / A_n · exp(Δ A_n · l) ),   l = 0 … L − 1

(B is folded into C; the modes n come in conjugate pairs, so ``d_state`` N keeps N / 2 of them and takes
twice the real part.) As in the paper: S4D-Lin initialisation A_n = −1/2 + iπn with the real part
parameterised by its log (so it stays negative: a stable system), log Δ learned per channel from
log-uniform [1e-3, 1e-1], C complex standard normal, a learned skip D. The convolution is an FFT product
with the sequence zero-padded to 2L (no wrap-around), computed in float32 even under mixed precision.

``bidirectional`` (default; classification sees the whole window) adds a second kernel for the future:
y[t] = Σ_{s≤t} K_fwd[t−s] u[s] + Σ_{s>t} K_bwd[s−t−1] u[s], i.e. a second SSM run on the reversed sequence,
both in one FFT product. With ``bidirectional=False`` the layer is causal.

The network: a strided convolution stem (kernel 5, stride 2, batch norm, GELU) to ``d_model`` channels, then
``n_layers`` pre-norm residual blocks x + GLU(W · dropout(GELU(S4D(LayerNorm(x))))) (the pointwise W mixes the
channels, 2 × ``d_model`` outputs halved by the GLU gate, as in S4D), a final LayerNorm, and the embedding
concatenates global average and max pooling; the head is dropout + a linear layer. Works for any input
length, so it trains on crops and predicts on windows. The defaults' cost is in
:func:`ecgnet.models.unimodal.time_s4d`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ecgnet.models.encoders.base import Encoder, mean_max_pool


class S4DKernel(nn.Module):
    """The convolution kernels of ``channels`` independent diagonal SSMs with ``d_state`` // 2 complex modes."""

    def __init__(self, channels: int, d_state: int = 64, dt_min: float = 1e-3, dt_max: float = 1e-1):
        super().__init__()
        n = max(d_state // 2, 1)
        self.log_dt = nn.Parameter(torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.log_A_real = nn.Parameter(torch.full((channels, n), math.log(0.5)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(n, dtype=torch.float32).repeat(channels, 1))
        # complex C stored as (real, imaginary) pairs: optimisers, EMA and checkpoints see real tensors
        self.C = nn.Parameter(torch.view_as_real(torch.randn(channels, n, dtype=torch.complex64)).clone())

    def forward(self, length: int) -> torch.Tensor:
        """(channels, length) float32 kernel."""
        dt = self.log_dt.float().exp().unsqueeze(-1)  # (channels, 1)
        A = torch.complex(-self.log_A_real.float().exp(), self.A_imag.float())  # (channels, n)
        dtA = A * dt
        C = torch.view_as_complex(self.C.float().contiguous()) * (torch.exp(dtA) - 1) / A  # zero-order hold
        l = torch.arange(length, device=A.device, dtype=torch.float32)
        # exp(ΔA·l) as modulus and angle: a real exp, cos and sin are several times faster than a complex exp
        vandermonde = torch.polar(torch.exp(dtA.real.unsqueeze(-1) * l), dtA.imag.unsqueeze(-1) * l)
        return 2 * torch.einsum("cn,cnl->cl", C, vandermonde).real  # (channels, length)


class S4DConv(nn.Module):
    """(batch, channels, time) → same: each channel convolved with its SSM kernel(s), plus D × the input."""

    def __init__(self, channels: int, d_state: int = 64, bidirectional: bool = True):
        super().__init__()
        self.bidirectional = bidirectional
        self.kernel = S4DKernel(channels * (2 if bidirectional else 1), d_state)
        self.D = nn.Parameter(torch.randn(channels))

    def direct_filter(self, length: int) -> torch.Tensor:
        """The same convolution as one depthwise ``conv1d`` filter of 2·length − 1 taps (centre = lag 0):
        real arithmetic only, so a model can be exported to ONNX at a fixed length (see :func:`freeze`)."""
        k = self.kernel(length)
        if self.bidirectional:
            k_fwd, k_bwd = k.chunk(2, dim=0)
            return torch.cat([k_fwd.flip(-1), k_bwd[:, :length - 1]], dim=-1)
        return F.pad(k.flip(-1), (0, length - 1))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        L = u.shape[-1]
        frozen = getattr(self, "frozen_filter", None)
        if frozen is not None and frozen.shape[-1] == 2 * L - 1:  # set by freeze(): the export's path
            y = F.conv1d(u.float(), frozen.unsqueeze(1), padding=L - 1, groups=frozen.shape[0])
            return y + u.float() * self.D.float().unsqueeze(-1)
        with torch.autocast(device_type=u.device.type, enabled=False):  # FFTs and kernel in float32
            u = u.float()
            k = self.kernel(L)
            if self.bidirectional:  # taps 0…L−1 act on the past and present, L+1…2L−1 on the future
                k_fwd, k_bwd = k.chunk(2, dim=0)
                k = F.pad(k_fwd, (0, L)) + F.pad(k_bwd.flip(-1), (L, 0))
            y = torch.fft.irfft(torch.fft.rfft(u, n=2 * L) * torch.fft.rfft(k, n=2 * L), n=2 * L)[..., :L]
            return y + u * self.D.float().unsqueeze(-1)


class S4DBlock(nn.Module):
    """x + GLU(W · dropout(GELU(S4D(LayerNorm(x))))) over (batch, d_model, time)."""

    def __init__(self, d_model: int, d_state: int, bidirectional: bool, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.ssm = S4DConv(d_model, d_state, bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.mix = nn.Sequential(nn.Conv1d(d_model, 2 * d_model, 1), nn.GLU(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return x + self.mix(self.dropout(F.gelu(self.ssm(z))))


class S4D1d(Encoder):
    def __init__(self, in_channels: int = 12, num_classes: int = 5, d_model: int = 128, d_state: int = 64,
                 n_layers: int = 4, bidirectional: bool = True, stem_kernel: int = 5, stem_stride: int = 2,
                 block_dropout: float = 0.1, dropout: float = 0.25):
        super().__init__()
        if n_layers < 1 or d_state < 2:
            raise ValueError(f"n_layers must be >= 1 and d_state >= 2, got {n_layers} and {d_state}")
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, d_model, stem_kernel, stem_stride, stem_kernel // 2, bias=False),
            nn.BatchNorm1d(d_model), nn.GELU())
        self.blocks = nn.Sequential(*(S4DBlock(d_model, d_state, bidirectional, block_dropout)
                                      for _ in range(n_layers)))
        self.norm = nn.LayerNorm(d_model)  # pre-norm blocks leave the residual stream un-normalised
        self.num_features = 2 * d_model
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, time) → (batch, num_features) embedding."""
        h = self.norm(self.blocks(self.stem(x)).transpose(1, 2))  # (batch, time, d_model)
        return mean_max_pool(h, 1)


@torch.no_grad()
def freeze(model: nn.Module, *example: torch.Tensor) -> int:
    """Give every :class:`S4DConv` inside ``model`` the direct filter for the length it sees on ``example``
    (one forward pass), so that it convolves without complex numbers or FFTs — what ONNX export needs.
    Returns how many were frozen; a model without S4D layers is left as it is."""
    convs = [m for m in model.modules() if isinstance(m, S4DConv)]
    lengths: dict[S4DConv, int] = {}
    def record(module: S4DConv, args: tuple) -> None:
        lengths.setdefault(module, args[0].shape[-1])

    hooks = [m.register_forward_pre_hook(record) for m in convs]
    try:
        if convs:
            model(*example)
    finally:
        for h in hooks:
            h.remove()
    for m, length in lengths.items():
        m.frozen_filter = m.direct_filter(length).detach()
    return len(lengths)

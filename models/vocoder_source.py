"""NSF excitation: the harmonic sine source of the NSF-HiFiGAN vocoders (prefix ``m_source``).

For harmonics k = 1..9 the per-sample phase increment is ((f0 * k) / sampling_rate) mod 1
in float32; the phase is the running sum of the increments *including* the current sample,
accumulated in float64 (the precision that matches so-vits-svc's CPU cumsum) with whole
cycles subtracted, then rounded to float32. sines = 0.1 * sin(2 pi phase), zeroed where f0 <= 0,
plus (non-deterministic mode) Gaussian noise; merged by ``l_linear`` (9 -> 1) and tanh.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .draws import RandomDraws

#: Overtones above the fundamental (so-vits-svc uses 8, i.e. 9 sine channels).
HARMONIC_NUM = 8
#: Amplitude of each sine.
SINE_AMP = 0.1
#: Std of the additive noise in voiced samples.
VOICED_NOISE_STD = 0.003
#: Std of the additive noise in unvoiced samples.
UNVOICED_NOISE_STD = SINE_AMP / 3


def upsample_f0(f0: torch.Tensor, upp: int) -> torch.Tensor:
    """Frame f0 (B, T) -> sample f0 (B, T*upp, 1) by repeating every frame ``upp`` times."""
    return f0.float().repeat_interleave(upp, dim=1).unsqueeze(-1)


def _cumsum_samples(x: torch.Tensor) -> torch.Tensor:
    """Inclusive float64 cumulative sum of (B, N, dim) along N, computed along the contiguous
    last axis of the transpose: a CUDA scan over a non-innermost axis runs one thread per
    column (dim = 9 here) and took 1 ms per call for a 23 ms live window, the innermost scan
    tens of microseconds."""
    return torch.cumsum(x.double().transpose(1, 2).contiguous(), dim=2).transpose(1, 2)


def running_phase(increments: torch.Tensor) -> torch.Tensor:
    """Inclusive cumulative sum along samples in float64, kept in ~[0, 1) by subtracting one
    cycle after every sample where the wrapped float32 sum decreases. (B, N, dim) float32.
    Shared by :class:`HarmonicSource` and the ONNX / CUDA-graph wrapper
    (models.onnx_wrappers), so both run the same ops."""
    wrapped = _cumsum_samples(increments).float() % 1
    dropped = ((wrapped[:, 1:, :] - wrapped[:, :-1, :]) < 0).float()
    shift = torch.cat([torch.zeros_like(increments[:, :1, :]), -dropped], dim=1)
    return _cumsum_samples(increments + shift).float()


class HarmonicSource(nn.Module):
    """so-vits-svc ``SourceModuleHnNSF`` (4.1-Stable behaviour).

    forward(f0_samples (B, N, 1) Hz float32, draws | None) -> har_source (B, 1, N) in the
    dtype of ``l_linear``. ``draws`` None is the deterministic mode: all harmonics start at
    phase 0 and no noise is added.
    """

    def __init__(self, sampling_rate: int, harmonic_num: int = HARMONIC_NUM) -> None:
        super().__init__()
        self.sampling_rate = sampling_rate
        self.dim = harmonic_num + 1
        self.l_linear = nn.Linear(self.dim, 1)
        self.l_tanh = nn.Tanh()

    def sine_bank(self, f0_samples: torch.Tensor, draws: RandomDraws | None) -> torch.Tensor:
        """(B, N, 1) Hz -> (B, N, dim) float32 sines after voicing mask and noise."""
        f0_samples = f0_samples.float()
        harmonics = torch.arange(1, self.dim + 1, device=f0_samples.device, dtype=torch.float32)
        increments = (f0_samples * harmonics / self.sampling_rate) % 1  # (B, N, dim), float32
        if draws is not None:
            initial = draws.uniform((f0_samples.size(0), self.dim)).to(increments.device, torch.float32)
            initial[:, 0] = 0  # the fundamental always starts at phase 0
            increments[:, 0, :] = increments[:, 0, :] + initial
        phase = running_phase(increments)
        sines = torch.sin(phase * 2 * math.pi) * SINE_AMP
        voiced = (f0_samples > 0).float()
        sines = sines * voiced
        if draws is not None:
            noise_std = voiced * VOICED_NOISE_STD + (1 - voiced) * UNVOICED_NOISE_STD
            sines = sines + noise_std * draws.normal(tuple(sines.shape)).to(sines.device, torch.float32)
        return sines

    def forward(self, f0_samples: torch.Tensor, draws: RandomDraws | None = None) -> torch.Tensor:
        sines = self.sine_bank(f0_samples, draws).to(self.l_linear.weight.dtype)
        return self.l_tanh(self.l_linear(sines)).transpose(1, 2)

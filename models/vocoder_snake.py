"""so-vits-svc ``nsf-snake-hifigan``: the NSF-HiFiGAN skeleton with alias-free SnakeBeta
activations (BigVGAN style) instead of leaky ReLU.

Each activation (state-dict names ``act.alpha``, ``act.beta``, ``upsample.filter``,
``downsample.lowpass.filter``) upsamples x2 with a Kaiser-windowed sinc, applies
SnakeBeta x + sin^2(x * e^alpha) / (e^beta + 1e-9) (log-scale parameters) and low-pass
filters back down x2. Shapes are unchanged: (B, C, N) -> (B, C, N).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .modules import WeightNormConv1d, conv_padding
from .nsf_hifigan import NSFGeneratorBase

#: Resampling ratio and filter length of the alias-free activation.
ALIAS_RATIO = 2
ALIAS_KERNEL = 12
#: Keeps 1/beta finite.
SNAKE_EPS = 1e-9


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass (cutoff and half width in cycles/sample), normalised to
    sum 1. Returns (1, 1, kernel_size) float32."""
    half = kernel_size // 2
    delta_f = 4 * half_width
    attenuation = 2.285 * (half - 1) * math.pi * delta_f + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    if kernel_size % 2 == 0:
        t = torch.arange(-half, half) + 0.5
    else:
        t = torch.arange(kernel_size) - half
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * t)
    return (taps / taps.sum()).view(1, 1, kernel_size)


class Upsample2x(nn.Module):
    """Zero-stuffing x2 upsampler with the sinc filter (buffer ``filter``). (B,C,N) -> (B,C,2N)."""

    def __init__(self) -> None:
        super().__init__()
        k, r = ALIAS_KERNEL, ALIAS_RATIO
        self.pad = k // r - 1
        self.crop_left = self.pad * r + (k - r) // 2
        self.crop_right = self.pad * r + (k - r + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / r, 0.6 / r, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.size(1)
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = ALIAS_RATIO * F.conv_transpose1d(x, self.filter.expand(channels, -1, -1), stride=ALIAS_RATIO, groups=channels)
        return x[..., self.crop_left : x.size(-1) - self.crop_right]


class LowPassDown2x(nn.Module):
    """Low-pass filter (buffer ``filter``) and keep every second sample. (B,C,2N) -> (B,C,N)."""

    def __init__(self) -> None:
        super().__init__()
        k = ALIAS_KERNEL
        self.pad_left = k // 2 - (1 if k % 2 == 0 else 0)
        self.pad_right = k // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ALIAS_RATIO, 0.6 / ALIAS_RATIO, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.size(1)
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(channels, -1, -1), stride=ALIAS_RATIO, groups=channels)


class Downsample2x(nn.Module):
    """Holder giving the state-dict name ``downsample.lowpass.filter``."""

    def __init__(self) -> None:
        super().__init__()
        self.lowpass = LowPassDown2x()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class SnakeBeta(nn.Module):
    """x + sin^2(x * exp(alpha)) / (exp(beta) + eps), per channel; ``alpha``/``beta`` (C,) log-scale."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = torch.exp(self.alpha).view(1, -1, 1)
        beta = torch.exp(self.beta).view(1, -1, 1)
        return x + (1.0 / (beta + SNAKE_EPS)) * torch.sin(x * alpha).pow(2)


class AliasFreeSnake(nn.Module):
    """so-vits-svc ``SnakeAlias``: upsample x2 -> SnakeBeta -> low-pass down x2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.act = SnakeBeta(channels)
        self.upsample = Upsample2x()
        self.downsample = Downsample2x()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


class SnakeResBlock1(nn.Module):
    """Three (act, dilated conv, act, conv) units with residual adds; ``activations`` holds
    6 activations, even indices before convs1, odd before convs2."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            WeightNormConv1d(channels, channels, kernel_size, dilation=d, padding=conv_padding(kernel_size, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            WeightNormConv1d(channels, channels, kernel_size, padding=conv_padding(kernel_size)) for _ in dilations
        )
        self.activations = nn.ModuleList(AliasFreeSnake(channels) for _ in range(2 * len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (c1, c2) in enumerate(zip(self.convs1, self.convs2)):
            xt = c1(self.activations[2 * i](x))
            xt = c2(self.activations[2 * i + 1](xt))
            x = xt + x
        return x


class SnakeResBlock2(nn.Module):
    """Two (act, dilated conv) units with residual adds."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            WeightNormConv1d(channels, channels, kernel_size, dilation=d, padding=conv_padding(kernel_size, d))
            for d in dilations[:2]
        )
        self.activations = nn.ModuleList(AliasFreeSnake(channels) for _ in range(len(self.convs)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, act in zip(self.convs, self.activations):
            x = conv(act(x)) + x
        return x


class NSFSnakeHiFiGAN(NSFGeneratorBase):
    """so-vits-svc ``nsf-snake-hifigan``: ``snakes[i]`` before ``ups[i]``, ``snake_post`` before conv_post."""

    head_skip = False  # the alias-free activations filter in time: ``keep`` decodes all, then slices

    def __init__(self, shape) -> None:
        super().__init__(shape)
        self.snakes = nn.ModuleList(AliasFreeSnake(shape.channels(i - 1)) for i in range(len(shape.upsample_rates)))
        self.snake_post = AliasFreeSnake(shape.channels(len(shape.upsample_rates) - 1))

    def _make_resblock(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> nn.Module:
        block = SnakeResBlock1 if self.shape.resblock == "1" else SnakeResBlock2
        return block(channels, kernel_size, dilations)

    def _stage_activation(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        return self.snakes[stage](x)

    def _final_activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.snake_post(x)

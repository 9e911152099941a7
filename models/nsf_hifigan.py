"""NSF-HiFiGAN vocoders of SoVITS (state-dict prefix ``dec``).

:class:`NSFHiFiGAN` is so-vits-svc's ``nsf-hifigan``; the alias-free SnakeBeta variant
(``nsf-snake-hifigan``) lives in :mod:`models.vocoder_snake` and shares this skeleton.
:func:`build_vocoder` picks one by name.

Latent z (B, inter, T) at frame rate + frame f0 (B, T) Hz -> waveform (B, 1, T * prod(upsample_rates))
in [-1, 1].

Head skip (``keep``): a live window is mostly left context; only its last ``keep`` samples are
used. Each stage's convolutions read a bounded neighbourhood, so the samples a kept output depends
on can be traced back through the stack, and everything before them is skipped, exactly::

    conv_pre ─ stage 0 ─ stage 1 ─ ... ─ stage n-1 ─ conv_post ─ tanh
               │         │                │           └ reads ±3 samples
               │         │                └ resblocks read ±R[n-1], its upsampler K-1-P before
               │         └ needs its input from starts[1] on (stage-0 samples)
               └ needs its input from starts[0] on (frames)

    starts[i] = max(0, floor((need_i - R_i + P_i - K_i + 1) / S_i)),  need_{n-1} = (N - keep) - 3,
    need_{i-1} = starts[i]   (S, K, P: stride, kernel, padding of ups[i]; R: its resblocks' reach)

With 100 ms of left context the last four stages (~80 % of the decoder's work) start well inside
the window; stage 0's resblocks reach ~87 ms at 44.1 kHz, so it stays whole. The excitation and
the noise convolutions (cheap) run on the whole window and are sliced, so the phase is the
whole-window phase. Pointwise activations only (the snake variant's alias-free filters also read
neighbours: it decodes the whole window and slices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .draws import RandomDraws
from .modules import WeightNormConv1d, WeightNormConvTranspose1d, conv_padding
from .vocoder_source import HarmonicSource, upsample_f0

#: Leaky-ReLU slope inside the generator and its residual blocks.
LRELU_SLOPE = 0.1
#: Leaky-ReLU slope before ``conv_post`` (HiFi-GAN uses torch's default there).
FINAL_LRELU_SLOPE = 0.01
#: Kernel size of conv_pre / conv_post.
PRE_POST_KERNEL = 7

VOCODER_NAMES = ("nsf-hifigan", "nsf-snake-hifigan")


@dataclass(frozen=True)
class VocoderShape:
    """The model fields that size a vocoder (so-vits-svc config.json ``model`` section names)."""

    inter_channels: int
    upsample_initial_channel: int
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    resblock: str  # "1" (three dilated conv pairs) or "2" (two dilated convs)
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    gin_channels: int
    sampling_rate: int

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates)

    def channels(self, stage: int) -> int:
        """Channels after upsampling stage ``stage`` (stage -1 = conv_pre output)."""
        return self.upsample_initial_channel // (2 ** (stage + 1))


class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs with residual adds. x (B, C, N) -> (B, C, N)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            WeightNormConv1d(channels, channels, kernel_size, dilation=d, padding=conv_padding(kernel_size, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            WeightNormConv1d(channels, channels, kernel_size, padding=conv_padding(kernel_size))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


class ResBlock2(nn.Module):
    """Two dilated convs with residual adds. x (B, C, N) -> (B, C, N)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            WeightNormConv1d(channels, channels, kernel_size, dilation=d, padding=conv_padding(kernel_size, d))
            for d in dilations[:2]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


def conv_reach(module: nn.Module) -> int:
    """Samples each side that the stride-1 convolutions inside ``module`` read when applied one
    after another (residual adds and pointwise activations add nothing)."""
    reach = 0
    for m in module.modules():
        if isinstance(m, WeightNormConv1d):
            k, d, p = (m.weight if m.folded else m.weight_v).shape[-1], m.dilation, m.padding
        elif isinstance(m, nn.Conv1d):
            k, d, p = m.kernel_size[0], m.dilation[0], m.padding[0]
        else:
            continue
        reach += max(p, d * (k - 1) - p)
    return reach


def _at_least_zero(value):
    return torch.clamp(value, min=0) if isinstance(value, torch.Tensor) else max(0, value)


class NSFGeneratorBase(nn.Module):
    """Shared skeleton: conv_pre (+ speaker cond) -> [activation, upsample, + noise conv of the
    excitation, mean of resblocks] per stage -> activation -> conv_post -> tanh.
    Subclasses supply the activations and residual blocks."""

    def __init__(self, shape: VocoderShape) -> None:
        super().__init__()
        self.shape = shape
        self.upp = shape.hop_length
        self.num_kernels = len(shape.resblock_kernel_sizes)
        self.m_source = HarmonicSource(shape.sampling_rate)
        self.conv_pre = WeightNormConv1d(
            shape.inter_channels, shape.upsample_initial_channel, PRE_POST_KERNEL, padding=PRE_POST_KERNEL // 2
        )
        self.ups = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        n_stages = len(shape.upsample_rates)
        for i, (rate, kernel) in enumerate(zip(shape.upsample_rates, shape.upsample_kernel_sizes)):
            c_in, c_out = shape.channels(i - 1), shape.channels(i)
            self.ups.append(WeightNormConvTranspose1d(c_in, c_out, kernel, stride=rate, padding=(kernel - rate) // 2))
            if i + 1 < n_stages:
                stride = math.prod(shape.upsample_rates[i + 1 :])
                self.noise_convs.append(nn.Conv1d(1, c_out, 2 * stride, stride=stride, padding=(stride + 1) // 2))
            else:
                self.noise_convs.append(nn.Conv1d(1, c_out, 1))
            for k, d in zip(shape.resblock_kernel_sizes, shape.resblock_dilation_sizes):
                self.resblocks.append(self._make_resblock(c_out, k, tuple(d)))
        ch = shape.channels(n_stages - 1)
        self.conv_post = WeightNormConv1d(ch, 1, PRE_POST_KERNEL, padding=PRE_POST_KERNEL // 2)
        self.cond = nn.Conv1d(shape.gin_channels, shape.upsample_initial_channel, 1)
        #: per stage: samples each side its resblocks read (the largest of its parallel blocks)
        self.stage_reach = tuple(
            max(conv_reach(b) for b in self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels])
            for i in range(n_stages))

    #: The body after the excitation reads only through convolutions (see the module doc): a
    #: call with ``keep`` skips the window's head. False where activations filter in time.
    head_skip = True

    def _make_resblock(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> nn.Module:
        raise NotImplementedError

    def _stage_activation(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        raise NotImplementedError

    def _final_activation(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def excitation(self, f0: torch.Tensor, draws: RandomDraws | None = None) -> torch.Tensor:
        """Frame f0 (B, T) Hz -> har_source (B, 1, T*upp) (the noise-conv input)."""
        return self.m_source(upsample_f0(f0, self.upp), draws)

    def keep_starts(self, n_samples, keep) -> list:
        """For the output samples [n_samples - keep, n_samples): per stage i, the first sample of
        its input (frames for stage 0, stage i-1 samples after) that must be computed for them to
        equal the whole-window output (0 = all; see the module doc). Python ints, or 0-d int64
        tensors when traced for export."""
        need = n_samples - keep - PRE_POST_KERNEL // 2
        starts = [0] * len(self.ups)
        for i in reversed(range(len(self.ups))):
            rate, kernel = self.shape.upsample_rates[i], self.shape.upsample_kernel_sizes[i]
            padding = (kernel - rate) // 2
            starts[i] = _at_least_zero((need - self.stage_reach[i] + padding - kernel + 1) // rate)
            need = starts[i]
        return starts

    def forward(
        self, x: torch.Tensor, f0: torch.Tensor, g: torch.Tensor, draws: RandomDraws | None = None, keep=None
    ) -> torch.Tensor:
        """x (B, inter, T), f0 (B, T) Hz, g (B, gin, 1 or T) -> (B, 1, T*upp); with ``keep``
        (int or 0-d tensor, 1..T*upp) only the last ``keep`` samples, (B, 1, keep), equal to the
        tail of the whole output."""
        return self.decode(x, self.excitation(f0, draws), g, keep)

    def decode(self, x: torch.Tensor, har_source: torch.Tensor, g: torch.Tensor, keep=None) -> torch.Tensor:
        """The body after the excitation: x (B, inter, T), har_source (B, 1, T*upp), g -> see
        :meth:`forward`."""
        n = har_source.size(-1)
        starts = self.keep_starts(n, keep) if keep is not None and self.head_skip else None
        x = self.conv_pre(x) + self.cond(g)
        offset = 0  # position of x[..., 0] in the current stage's samples
        for i, up in enumerate(self.ups):
            if starts is not None:
                x = x[..., starts[i] - offset :]
                offset = starts[i] * self.shape.upsample_rates[i]
            x = up(self._stage_activation(x, i))
            noise = self.noise_convs[i](har_source)
            x = x + (noise if starts is None else noise[..., offset:])
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / self.num_kernels
        x = torch.tanh(self.conv_post(self._final_activation(x)))
        return x if keep is None else x[..., n - keep - offset :]


class NSFHiFiGAN(NSFGeneratorBase):
    """so-vits-svc ``nsf-hifigan`` (leaky-ReLU activations)."""

    def _make_resblock(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> nn.Module:
        block = ResBlock1 if self.shape.resblock == "1" else ResBlock2
        return block(channels, kernel_size, dilations)

    def _stage_activation(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        return F.leaky_relu(x, LRELU_SLOPE)

    def _final_activation(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, FINAL_LRELU_SLOPE)


def build_vocoder(name: str, shape: VocoderShape) -> NSFGeneratorBase:
    """``name``: one of :data:`VOCODER_NAMES`."""
    if name == "nsf-hifigan":
        return NSFHiFiGAN(shape)
    if name == "nsf-snake-hifigan":
        from .vocoder_snake import NSFSnakeHiFiGAN

        return NSFSnakeHiFiGAN(shape)
    raise ValueError(f"unknown vocoder {name!r}; known: {', '.join(VOCODER_NAMES)}")

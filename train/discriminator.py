"""The so-vits-svc 4.1 / HiFi-GAN discriminator: one scale discriminator on the raw waveform plus
period discriminators for periods 2, 3, 5, 7 and 11.

State-dict keys and shapes are exactly those of so-vits-svc's ``D_*.pth`` (``discriminators.0``
is the scale discriminator, ``discriminators.1..5`` the period ones), with legacy weight norm
stored as ``weight_g`` / ``weight_v``. The sizes are fixed by the format, not by config.json.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rtsvc.errors import ParameterError

#: Negative slope of every leaky ReLU in the discriminators.
LRELU_SLOPE = 0.1
#: Periods of the period discriminators, in state-dict order after the scale discriminator.
PERIODS = (2, 3, 5, 7, 11)
#: Period discriminator: channel progression, kernel length and stride along time.
PERIOD_CHANNELS = (1, 32, 128, 512, 1024, 1024)
PERIOD_KERNEL = 5
PERIOD_STRIDE = 3
#: Scale discriminator layers: (in, out, kernel, stride, groups); padding = kernel // 2.
SCALE_LAYERS = (
    (1, 16, 15, 1, 1),
    (16, 64, 41, 4, 4),
    (64, 256, 41, 4, 16),
    (256, 1024, 41, 4, 64),
    (1024, 1024, 41, 4, 256),
    (1024, 1024, 5, 1, 1),
)
#: Kernel of the final 1-channel projection of every sub-discriminator.
POST_KERNEL = 3
#: Width divisors accepted by MultiPeriodDiscriminator (1 = so-vits-svc's size).
ALLOWED_DIVISORS = (1, 2, 4, 8, 16)


class WeightNormConv(nn.Module):
    """Conv1d or Conv2d with legacy weight norm: weight = weight_g * weight_v / ||weight_v||
    (norm over all dims but 0). Parameters ``weight_g``, ``weight_v``, ``bias``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: tuple[int, ...], *, stride: tuple[int, ...],
        padding: tuple[int, ...], groups: int = 1,
    ) -> None:
        super().__init__()
        self.stride, self.padding, self.groups = stride, padding, groups
        shape = (out_channels, in_channels // groups, *kernel)
        weight = torch.empty(shape)
        nn.init.kaiming_uniform_(weight, a=5**0.5)
        fan_in = (in_channels // groups) * int(torch.tensor(kernel).prod())
        bound = 1.0 / fan_in**0.5
        self.weight_v = nn.Parameter(weight)
        self.weight_g = nn.Parameter(self._norm(weight).detach().clone())
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))

    @staticmethod
    def _norm(v: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(v, dim=tuple(range(1, v.dim())), keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_v * (self.weight_g / self._norm(self.weight_v))
        if weight.dim() == 3:
            return F.conv1d(x, weight, self.bias, self.stride, self.padding, 1, self.groups)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, 1, self.groups)


def _narrow(channels: int, divisor: int) -> int:
    return channels if channels == 1 else max(1, channels // divisor)


class PeriodDiscriminator(nn.Module):
    """forward(audio (B, 1, N)) -> (scores (B, F), feature maps list of (B, C, T', period)).
    ``divisor`` > 1 divides every hidden width (a smaller, non-so-vits-svc discriminator)."""

    def __init__(self, period: int, divisor: int = 1) -> None:
        super().__init__()
        self.period = period
        pad = (PERIOD_KERNEL - 1) // 2
        self.convs = nn.ModuleList()
        widths = [_narrow(c, divisor) for c in PERIOD_CHANNELS]
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            stride = PERIOD_STRIDE if i < len(PERIOD_CHANNELS) - 2 else 1
            self.convs.append(WeightNormConv(cin, cout, (PERIOD_KERNEL, 1), stride=(stride, 1), padding=(pad, 0)))
        self.conv_post = WeightNormConv(widths[-1], 1, (POST_KERNEL, 1), stride=(1, 1), padding=(1, 0))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = audio.shape
        if t % self.period:
            audio = F.pad(audio, (0, self.period - t % self.period), mode="reflect")
        x = audio.view(b, c, -1, self.period)
        fmap = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class ScaleDiscriminator(nn.Module):
    """forward(audio (B, 1, N)) -> (scores (B, F), feature maps list of (B, C, T')).
    ``divisor`` > 1 divides every width and group count (a smaller, non-so-vits-svc discriminator)."""

    def __init__(self, divisor: int = 1) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            WeightNormConv(_narrow(cin, divisor), _narrow(cout, divisor), (k,), stride=(s,), padding=(k // 2,),
                           groups=max(1, g // divisor))
            for cin, cout, k, s, g in SCALE_LAYERS
        )
        self.conv_post = WeightNormConv(_narrow(SCALE_LAYERS[-1][1], divisor), 1, (POST_KERNEL,), stride=(1,), padding=(1,))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = audio
        fmap = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class MultiPeriodDiscriminator(nn.Module):
    """so-vits-svc's ``MultiPeriodDiscriminator`` (scale + 5 period discriminators).

    forward(real (B, 1, N), fake (B, 1, N)) -> (real scores, fake scores, real fmaps, fake fmaps),
    each a list with one entry per sub-discriminator.

    divisor: 1 (default) is so-vits-svc's discriminator, whose D_*.pth files interchange with
    so-vits-svc (and its pretrained D_0.pth). A power of two up to 16 divides every hidden width:
    the same key set with smaller shapes, for CPU trials and tests only.
    """

    def __init__(self, divisor: int = 1) -> None:
        super().__init__()
        if divisor not in ALLOWED_DIVISORS:
            raise ParameterError(f"discriminator divisor must be one of {ALLOWED_DIVISORS}, got {divisor!r}.")
        self.divisor = divisor
        self.discriminators = nn.ModuleList([ScaleDiscriminator(divisor), *(PeriodDiscriminator(p, divisor) for p in PERIODS)])

    def forward(self, real: torch.Tensor, fake: torch.Tensor):
        # Real and fake go through each sub-discriminator as one batch: the same maths as two
        # calls, but every weight-normed kernel is computed once.
        batch = real.size(0)
        both = torch.cat([real, fake], dim=0)
        real_scores, fake_scores, real_maps, fake_maps = [], [], [], []
        for disc in self.discriminators:
            scores, maps = disc(both)
            real_scores.append(scores[:batch])
            fake_scores.append(scores[batch:])
            real_maps.append([m[:batch] for m in maps])
            fake_maps.append([m[batch:] for m in maps])
        return real_scores, fake_scores, real_maps, fake_maps

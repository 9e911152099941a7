"""Building blocks shared by the SoVITS synthesizer: weight-normed convolutions, channel
LayerNorm, the gated WaveNet stack (``WN``) and depthwise-separable convolutions.

State-dict names follow so-vits-svc exactly (``weight_g`` / ``weight_v`` for weight-normed
layers, ``gamma`` / ``beta`` for LayerNorm, ``in_layers`` / ``res_skip_layers`` / ``cond_layer``
for WN) so that its checkpoints load strictly.

Tensor layout everywhere: (batch, channels, frames).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: Epsilon of the channel LayerNorm (so-vits-svc / VITS value).
LAYER_NORM_EPS = 1e-5


def conv_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd-kernel dilated convolution."""
    return (kernel_size * dilation - dilation) // 2


class _WeightNormConvBase(nn.Module):
    """A convolution whose weight is stored as ``weight_g`` (gain, one per output-dim-0 row)
    and ``weight_v`` (direction): weight = g * v / ||v||, the norm over all dims but dim 0.

    :meth:`remove_weight_norm` folds the pair into a plain ``weight`` once (for inference).
    """

    def __init__(self, weight_shape: tuple[int, ...], bias_channels: int, bias: bool) -> None:
        super().__init__()
        self.weight_v = nn.Parameter(torch.empty(weight_shape))
        self.weight_g = nn.Parameter(torch.empty((weight_shape[0],) + (1,) * (len(weight_shape) - 1)))
        self.bias = nn.Parameter(torch.zeros(bias_channels)) if bias else None
        self.folded = False
        nn.init.kaiming_uniform_(self.weight_v, a=5**0.5)
        with torch.no_grad():
            self.weight_g.copy_(self._norm_v())

    def _norm_v(self) -> torch.Tensor:
        dims = tuple(range(1, self.weight_v.dim()))
        return torch.linalg.vector_norm(self.weight_v, dim=dims, keepdim=True)

    def effective_weight(self) -> torch.Tensor:
        if self.folded:
            return self.weight
        return self.weight_v * (self.weight_g / self._norm_v())

    def remove_weight_norm(self) -> None:
        """Replace ``weight_g``/``weight_v`` by one plain ``weight`` parameter (idempotent)."""
        if self.folded:
            return
        with torch.no_grad():
            weight = self.effective_weight().detach().clone()
        del self.weight_v
        del self.weight_g
        self.weight = nn.Parameter(weight)
        self.folded = True


class WeightNormConv1d(_WeightNormConvBase):
    """Weight-normed ``Conv1d``. x: (B, in, T) -> (B, out, T')."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__((out_channels, in_channels // groups, kernel_size), out_channels, bias)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.effective_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)


class WeightNormConvTranspose1d(_WeightNormConvBase):
    """Weight-normed ``ConvTranspose1d``; dim 0 of the weight is the *input* channel axis.
    x: (B, in, T) -> (B, out, (T-1)*stride - 2*padding + kernel + output_padding)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int,
        padding: int,
        output_padding: int = 0,
    ) -> None:
        super().__init__((in_channels, out_channels, kernel_size), out_channels, True)
        self.stride, self.padding, self.output_padding = stride, padding, output_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(
            x, self.effective_weight(), self.bias, self.stride, self.padding, self.output_padding
        )


class DepthwiseSeparableConv1d(nn.Module):
    """so-vits-svc's ``use_depthwise_conv`` layer: a per-channel (grouped) conv ``depth_conv``
    followed by a 1x1 ``point_conv``; both weight-normed. x: (B, in, T) -> (B, out, T)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, padding: int, dilation: int) -> None:
        super().__init__()
        self.depth_conv = WeightNormConv1d(
            in_channels, in_channels, kernel_size, padding=padding, dilation=dilation, groups=in_channels
        )
        self.point_conv = WeightNormConv1d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))

    def remove_weight_norm(self) -> None:
        self.depth_conv.remove_weight_norm()
        self.point_conv.remove_weight_norm()


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of (B, C, T) tensors (params ``gamma``, ``beta``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, LAYER_NORM_EPS)
        return y.transpose(1, -1)


def gated_activation(x: torch.Tensor, cond: torch.Tensor | None, half: int) -> torch.Tensor:
    """tanh(a[:, :half]) * sigmoid(a[:, half:]) with a = x + cond. x: (B, 2*half, T)."""
    a = x if cond is None else x + cond
    return torch.tanh(a[:, :half]) * torch.sigmoid(a[:, half:])


def remove_weight_norm_everywhere(module: nn.Module) -> int:
    """Fold every weight-normed layer inside ``module``; returns how many were folded."""
    count = 0
    for sub in module.modules():
        if isinstance(sub, _WeightNormConvBase) and not sub.folded:
            sub.remove_weight_norm()
            count += 1
    return count


class WN(nn.Module):
    """Non-causal gated WaveNet stack (VITS ``WN``), used by the posterior encoder and the
    residual coupling flows.

    hidden_channels: width; kernel_size: odd; dilation_rate: dilation of layer i is rate**i;
    gin_channels: speaker-conditioning width (0 = unconditioned); depthwise: so-vits-svc's
    ``use_depthwise_conv`` (the dilated ``in_layers`` become depthwise-separable).
    forward(x (B, H, T), x_mask (B, 1, T), g (B, gin, 1 or T) | None) -> (B, H, T).
    """

    def __init__(
        self,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        *,
        gin_channels: int,
        p_dropout: float = 0.0,
        depthwise: bool = False,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WN kernel_size must be odd, got {kernel_size}")
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.drop = nn.Dropout(p_dropout)
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        if gin_channels:
            self.cond_layer = WeightNormConv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        else:
            self.cond_layer = None
        for i in range(n_layers):
            dilation = dilation_rate**i
            padding = conv_padding(kernel_size, dilation)
            if depthwise:
                layer: nn.Module = DepthwiseSeparableConv1d(
                    hidden_channels, 2 * hidden_channels, kernel_size, padding=padding, dilation=dilation
                )
            else:
                layer = WeightNormConv1d(
                    hidden_channels, 2 * hidden_channels, kernel_size, padding=padding, dilation=dilation
                )
            self.in_layers.append(layer)
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(WeightNormConv1d(hidden_channels, out, 1))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        h = self.hidden_channels
        output = torch.zeros_like(x)
        cond_all = self.cond_layer(g) if (g is not None and self.cond_layer is not None) else None
        for i in range(self.n_layers):
            x_in = self.in_layers[i](x)
            cond = cond_all[:, 2 * h * i : 2 * h * (i + 1)] if cond_all is not None else None
            acts = self.drop(gated_activation(x_in, cond, h))
            res_skip = self.res_skip_layers[i](acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :h]) * x_mask
                output = output + res_skip[:, h:]
            else:
                output = output + res_skip
        return output * x_mask

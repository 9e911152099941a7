"""An NSF-HiFiGAN stage's parallel residual blocks as one block of grouped convolutions.

Each upsampling stage of the decoder averages ``n`` ResBlock1 branches that differ only in
kernel size (so-vits-svc: 3, 7, 11, all with dilations 1, 3, 5)::

    x ─┬─ ResBlock1(k=3)  ─┐
       ├─ ResBlock1(k=7)  ─┼─ sum / n          (n x 6 convolutions, 6 activations, 3 adds each)
       └─ ResBlock1(k=11) ─┘

With the branches stacked on the channel axis, conv pair j of every branch is one grouped
convolution (groups = n) whose kernels are zero-padded to the largest size K, centred (a kernel
of size k sits at taps (K - k) / 2 ...): the same sums, in one kernel launch instead of n::

    x.repeat(n) (B, n*C, N) ─ [lrelu, grouped conv d_j, lrelu, grouped conv 1, + residual] x 3
                            ─ view (B, n, C, N) ─ sum over n

The arithmetic grows from sum(k) to n * K taps (21 -> 33 for so-vits-svc, 1.6x): worth it where
kernel launches, not arithmetic, bound the time (a CUDA-graph replay of a live block), a loss on
a CPU. Inference only: built from a loaded decoder, the branches' weights are copied once.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .modules import conv_padding
from .nsf_hifigan import LRELU_SLOPE, ResBlock1


class _GroupedConv(nn.Module):
    """A grouped Conv1d with given weights (no random init: building one must not touch the
    CUDA generator, which a captured CUDA graph may own)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, dilation: int, groups: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = nn.Parameter(bias, requires_grad=False)
        self.dilation, self.groups = dilation, groups
        self.padding = conv_padding(weight.shape[-1], dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight, self.bias, 1, self.padding, self.dilation, self.groups)


def _grouped_conv(convs: list[nn.Module], dilation: int, kernel: int) -> _GroupedConv:
    """The convs (each (C, C, k_b), 'same' padding at ``dilation``) as one conv with groups =
    len(convs) and zero-padded, centred kernels of size ``kernel``."""
    weights = [conv.effective_weight().detach() for conv in convs]
    channels, n = weights[0].shape[0], len(convs)
    weight = weights[0].new_zeros(n * channels, channels, kernel)
    for b, w in enumerate(weights):
        start = (kernel - w.shape[-1]) // 2
        weight[b * channels : (b + 1) * channels, :, start : start + w.shape[-1]] = w
    bias = torch.cat([conv.bias.detach() for conv in convs])
    return _GroupedConv(weight, bias, dilation, n)


class ParallelResBlock1(nn.Module):
    """The sum of ``n`` ResBlock1 branches with equal dilations, as grouped convolutions.
    forward(x (B, C, N)) -> (B, C, N) = sum of the branches' outputs (the decoder divides by n)."""

    def __init__(self, blocks: list[ResBlock1]) -> None:
        super().__init__()
        self.branches = len(blocks)
        kernel = max(block.convs1[0].weight.shape[-1] for block in blocks)
        dilations = [conv.dilation for conv in blocks[0].convs1]
        self.convs1 = nn.ModuleList(
            _grouped_conv([block.convs1[j] for block in blocks], d, kernel) for j, d in enumerate(dilations))
        self.convs2 = nn.ModuleList(
            _grouped_conv([block.convs2[j] for block in blocks], 1, kernel) for j in range(len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, length = x.shape
        xb = x.repeat(1, self.branches, 1)
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(xb, LRELU_SLOPE))
            xb = c2(F.leaky_relu(xt, LRELU_SLOPE)) + xb
        return xb.view(batch, self.branches, channels, length).sum(1)


def can_fuse(decoder: nn.Module) -> bool:
    """Whether every stage's branches are folded ResBlock1s with one dilation pattern (true of
    so-vits-svc's nsf-hifigan; its SnakeBeta variant and resblock "2" are left as they are)."""
    blocks = list(getattr(decoder, "resblocks", []))
    if not blocks or not all(isinstance(b, ResBlock1) for b in blocks):
        return False
    if not all(getattr(conv, "folded", False) for b in blocks for conv in (*b.convs1, *b.convs2)):
        return False
    pattern = [conv.dilation for conv in blocks[0].convs1]
    return all([conv.dilation for conv in b.convs1] == pattern for b in blocks)


def fuse_parallel_resblocks(decoder: nn.Module) -> bool:
    """Give ``decoder`` (a weight-norm-folded NSFHiFiGAN) one :class:`ParallelResBlock1` per
    stage, which its forward then uses. Returns False (and changes nothing) if it cannot."""
    if not can_fuse(decoder):
        return False
    n = decoder.num_kernels
    stages = len(decoder.resblocks) // n
    decoder.parallel_resblocks = nn.ModuleList(
        ParallelResBlock1(list(decoder.resblocks[i * n : (i + 1) * n])) for i in range(stages))
    return True

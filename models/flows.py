"""Normalizing flow between the posterior latent z and the prior latent z_p.

Four mean-only coupling layers, each followed by a channel flip (the flips sit at the odd
indices of ``flows`` and have no parameters). Coupling networks are WaveNet stacks
(:class:`ResidualCouplingLayer`) or causal transformers (:class:`TransformerCouplingLayer`,
so-vits-svc ``use_transformer_flow``). With ``share_parameter`` every coupling layer uses one
network, registered as ``wn`` on the block (and therefore also under each ``flows.N.enc``).

Tensors: x (B, channels, T), x_mask (B, 1, T), g (B, gin, 1 or T).
"""

from __future__ import annotations

import torch
from torch import nn

from .attentions import CausalTransformer
from .modules import WN

#: Coupling layers in a SoVITS flow (each followed by a flip).
N_COUPLINGS = 4
#: Kernel size of the coupling networks (fixed in so-vits-svc).
COUPLING_KERNEL_SIZE = 5


class Flip(nn.Module):
    """Reverses the channel order; its own inverse."""

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None, reverse: bool = False):
        x = torch.flip(x, [1])
        if reverse:
            return x
        return x, torch.zeros(x.size(0), dtype=x.dtype, device=x.device)


class _MeanOnlyCoupling(nn.Module):
    """x = [x0, x1]; x1 <- x1 + m(x0) (forward) or x1 - m(x0) (reverse). ``enc`` maps hidden to hidden."""

    def __init__(self, channels: int, hidden_channels: int, enc: nn.Module) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"flow channels must be even, got {channels}")
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = enc
        self.post = nn.Conv1d(hidden_channels, self.half_channels, 1)
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None, reverse: bool = False):
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        h = self.pre(x0) * x_mask
        h = self.enc(h, x_mask, g=g)
        m = self.post(h) * x_mask
        if reverse:
            # exp(-logs) with logs = 0 is exactly 1: kept implicit.
            return torch.cat([x0, (x1 - m) * x_mask], 1)
        x1 = m + x1 * x_mask
        return torch.cat([x0, x1], 1), torch.zeros(x.size(0), dtype=x.dtype, device=x.device)


class ResidualCouplingLayer(_MeanOnlyCoupling):
    """Coupling with a WaveNet network (kernel 5, dilation 1, ``n_layers`` layers)."""

    def __init__(
        self, channels: int, hidden_channels: int, n_layers: int, *, gin_channels: int, depthwise: bool,
        shared: WN | None = None,
    ) -> None:
        enc = shared if shared is not None else WN(
            hidden_channels, COUPLING_KERNEL_SIZE, 1, n_layers, gin_channels=gin_channels, depthwise=depthwise
        )
        super().__init__(channels, hidden_channels, enc)


class TransformerCouplingLayer(_MeanOnlyCoupling):
    """Coupling with a speaker-conditioned causal transformer network."""

    def __init__(
        self, channels: int, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int, *,
        p_dropout: float, gin_channels: int, shared: CausalTransformer | None = None,
    ) -> None:
        enc = shared if shared is not None else CausalTransformer(
            hidden_channels, filter_channels, n_heads, n_layers, COUPLING_KERNEL_SIZE,
            p_dropout=p_dropout, gin_channels=gin_channels,
        )
        super().__init__(channels, hidden_channels, enc)


class CouplingFlow(nn.Module):
    """The SoVITS flow (prefix ``flow``). forward(x, x_mask, g, reverse) -> x (reverse) or
    (x, logdet = zeros) (forward; mean-only couplings are volume preserving)."""

    def __init__(self, couplings: list[nn.Module], shared: nn.Module | None) -> None:
        super().__init__()
        if shared is not None:
            self.wn = shared
        self.flows = nn.ModuleList()
        for layer in couplings:
            self.flows.append(layer)
            self.flows.append(Flip())

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None, reverse: bool = False):
        if reverse:
            for flow in reversed(self.flows):
                x = flow(x, x_mask, g=g, reverse=True)
            return x
        logdet = torch.zeros(x.size(0), dtype=x.dtype, device=x.device)
        for flow in self.flows:
            x, ld = flow(x, x_mask, g=g, reverse=False)
            logdet = logdet + ld
        return x, logdet


def build_residual_flow(
    channels: int, hidden_channels: int, wn_layers: int, *, gin_channels: int, depthwise: bool, share: bool,
    n_couplings: int = N_COUPLINGS,
) -> CouplingFlow:
    """WaveNet flow: so-vits-svc's ``n_flow_layer`` is ``wn_layers`` (layers per coupling network)."""
    shared = WN(hidden_channels, COUPLING_KERNEL_SIZE, 1, wn_layers, gin_channels=gin_channels, depthwise=depthwise) if share else None
    couplings = [
        ResidualCouplingLayer(channels, hidden_channels, wn_layers, gin_channels=gin_channels, depthwise=depthwise, shared=shared)
        for _ in range(n_couplings)
    ]
    return CouplingFlow(couplings, shared)


def build_transformer_flow(
    channels: int, hidden_channels: int, filter_channels: int, n_heads: int, transformer_layers: int, *,
    p_dropout: float, gin_channels: int, share: bool, n_couplings: int,
) -> CouplingFlow:
    """Transformer flow: so-vits-svc passes ``n_layers_trans_flow`` as the transformer depth and
    ``n_flow_layer`` as the number of coupling layers (``n_couplings``)."""
    shared = CausalTransformer(
        hidden_channels, filter_channels, n_heads, transformer_layers, COUPLING_KERNEL_SIZE,
        p_dropout=p_dropout, gin_channels=gin_channels,
    ) if share else None
    couplings = [
        TransformerCouplingLayer(
            channels, hidden_channels, filter_channels, n_heads, transformer_layers,
            p_dropout=p_dropout, gin_channels=gin_channels, shared=shared,
        )
        for _ in range(n_couplings)
    ]
    return CouplingFlow(couplings, shared)

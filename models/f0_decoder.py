"""Automatic f0 prediction head (so-vits-svc ``F0Decoder``, prefix ``f0_decoder``) and the
log-f0 helpers around it.

The head reads the content hidden states and a mean-normalised log-f0 of the input, and
predicts a log-f0 contour. Useful for speech only (singing loses its melody).
"""

from __future__ import annotations

import torch
from torch import nn

from .attentions import CausalTransformer

#: log-f0 scale used by so-vits-svc: lf0 = MEL_SCALE * log10(1 + f0 / MEL_BREAK_HZ) / LF0_DIVISOR.
MEL_SCALE = 2595.0
MEL_BREAK_HZ = 700.0
LF0_DIVISOR = 500.0
#: Denominator used when no frame is voiced (so-vits-svc value; keeps the mean at ~0).
EMPTY_VOICING_DENOMINATOR = 9999.0


def f0_to_lf0(f0: torch.Tensor) -> torch.Tensor:
    """f0 (B, T) Hz -> lf0 (B, 1, T), scaled mel."""
    return MEL_SCALE * torch.log10(1.0 + f0.unsqueeze(1) / MEL_BREAK_HZ) / LF0_DIVISOR


def lf0_to_f0(lf0: torch.Tensor) -> torch.Tensor:
    """lf0 (B, 1, T) -> f0 (B, T) Hz (inverse of :func:`f0_to_lf0`)."""
    return (MEL_BREAK_HZ * (torch.pow(10, lf0 * LF0_DIVISOR / MEL_SCALE) - 1)).squeeze(1)


def normalize_lf0(
    lf0: torch.Tensor, x_mask: torch.Tensor, uv: torch.Tensor, scale: torch.Tensor | None = None
) -> torch.Tensor:
    """Subtract the mean over voiced frames. lf0 (B, 1, T), x_mask (B, 1, T), uv (B, T) 0/1.

    scale: optional (B,) factor applied after centring (training draws it in [0.8, 1.2];
    inference uses none). Returns (B, 1, T), masked.
    """
    voiced = uv.sum(dim=1, keepdim=True)
    voiced = torch.where(voiced == 0, torch.full_like(voiced, EMPTY_VOICING_DENOMINATOR), voiced)
    means = (lf0[:, 0, :] * uv).sum(dim=1, keepdim=True) / voiced  # (B, 1)
    centred = lf0 - means.unsqueeze(-1)
    if scale is not None:
        centred = centred * scale.view(-1, 1, 1)
    return centred * x_mask


class F0Decoder(nn.Module):
    """forward(x (B, hidden, T) content states, norm_lf0 (B, 1, T), x_mask (B, 1, T),
    spk_emb (B, gin, 1 or T) | None) -> predicted lf0 (B, 1, T). ``x`` is not modified and no
    gradient flows back into it."""

    def __init__(
        self, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int, kernel_size: int, *,
        p_dropout: float, spk_channels: int, out_channels: int = 1,
    ) -> None:
        super().__init__()
        self.prenet = nn.Conv1d(hidden_channels, hidden_channels, 3, padding=1)
        self.decoder = CausalTransformer(
            hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout=p_dropout
        )
        self.proj = nn.Conv1d(hidden_channels, out_channels, 1)
        self.f0_prenet = nn.Conv1d(1, hidden_channels, 3, padding=1)
        self.cond = nn.Conv1d(spk_channels, hidden_channels, 1)

    def forward(
        self, x: torch.Tensor, norm_lf0: torch.Tensor, x_mask: torch.Tensor, spk_emb: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x.detach()
        if spk_emb is not None:
            x = x + self.cond(spk_emb)
        x = x + self.f0_prenet(norm_lf0)
        x = self.prenet(x) * x_mask
        x = self.decoder(x * x_mask, x_mask)
        return self.proj(x) * x_mask

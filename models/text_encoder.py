"""The two latent encoders of SoVITS.

* :class:`PriorEncoder` (state-dict prefix ``enc_p``): content hidden states plus a pitch
  embedding -> prior mean / log-std of the latent z_p.
* :class:`PosteriorEncoder` (prefix ``enc_q``): linear spectrogram -> posterior sample z
  (training only; kept so training can be built on these modules and full checkpoints load).
"""

from __future__ import annotations

import torch
from torch import nn

from .attentions import RelativeEncoder
from .modules import WN

#: Number of coarse pitch bins embedded by the prior encoder (index 0..255).
F0_BINS = 256


class PriorEncoder(nn.Module):
    """so-vits-svc ``TextEncoder``.

    forward(x (B, hidden, T), x_mask (B, 1, T), f0_coarse (B, T) int64, noise (B, inter, T) | None,
    noise_scale) -> (z_p, m_p, logs_p), each (B, inter, T):
    z_p = (m_p + noise * exp(logs_p) * noise_scale) * x_mask; with noise None, z_p = m_p * x_mask.
    """

    def __init__(
        self, inter_channels: int, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int,
        kernel_size: int, *, p_dropout: float,
    ) -> None:
        super().__init__()
        self.inter_channels = inter_channels
        self.proj = nn.Conv1d(hidden_channels, 2 * inter_channels, 1)
        self.f0_emb = nn.Embedding(F0_BINS, hidden_channels)
        self.enc_ = RelativeEncoder(
            hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout=p_dropout
        )

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, f0_coarse: torch.Tensor, noise: torch.Tensor | None = None,
        noise_scale: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = x + self.f0_emb(f0_coarse).transpose(1, 2)
        x = self.enc_(x * x_mask, x_mask)
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.inter_channels, dim=1)
        if noise is None:
            z = m * x_mask
        else:
            z = (m + noise * torch.exp(logs) * noise_scale) * x_mask
        return z, m, logs


class PosteriorEncoder(nn.Module):
    """so-vits-svc ``Encoder`` (``enc_q``): 1x1 ``pre`` -> 16-layer WN (kernel 5) -> ``proj``.

    forward(spec (B, spec_channels, T), x_mask (B, 1, T), g (B, gin, 1), noise (B, inter, T) | None)
    -> (z, m_q, logs_q), each (B, inter, T); z = (m + noise * exp(logs)) * mask (noise None: z = m).
    """

    def __init__(
        self, spec_channels: int, inter_channels: int, hidden_channels: int, *, kernel_size: int = 5,
        dilation_rate: int = 1, n_layers: int = 16, gin_channels: int, depthwise: bool = False,
    ) -> None:
        super().__init__()
        self.inter_channels = inter_channels
        self.pre = nn.Conv1d(spec_channels, hidden_channels, 1)
        self.enc = WN(
            hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels, depthwise=depthwise
        )
        self.proj = nn.Conv1d(hidden_channels, 2 * inter_channels, 1)

    def forward(
        self, spec: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pre(spec) * x_mask
        x = self.enc(x, x_mask, g=g)
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.inter_channels, dim=1)
        z = m if noise is None else m + noise * torch.exp(logs)
        return z * x_mask, m, logs

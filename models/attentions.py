"""Transformer pieces of SoVITS: multi-head attention (optionally with windowed relative
position embeddings), the conv feed-forward block, the relative-position encoder used by the
prior text encoder, and the causal stack (so-vits-svc ``FFT``) used by the f0 decoder and the
transformer flow.

Tensor layout: (batch, channels, frames). Masks: x_mask (B, 1, T) with 1 = valid frame.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .modules import ChannelLayerNorm, WeightNormConv1d, gated_activation

#: Score given to masked-out attention positions (so-vits-svc / VITS value; fp16-safe).
MASKED_SCORE = -1e4
#: Relative attention window of the prior encoder: positions -4..+4 have embeddings.
RELATIVE_WINDOW = 4


class MultiHeadAttention(nn.Module):
    """Multi-head attention with 1x1-conv projections ``conv_q/k/v/o``.

    window: if not None, adds relative-position embeddings ``emb_rel_k`` / ``emb_rel_v``
    (shape (1, 2*window+1, channels/heads), shared by all heads) for offsets -window..window.
    proximal_init: start conv_k equal to conv_q (initialisation only, as so-vits-svc's ``FFT``).
    forward(x (B, C, Tq), c (B, C, Tk), mask (B or 1, 1, Tq, Tk) | None) -> (B, out, Tq).
    """

    def __init__(
        self, channels: int, out_channels: int, n_heads: int, *, p_dropout: float = 0.0, window: int | None = None,
        proximal_init: bool = False,
    ) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels {channels} must be divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window = window
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        if window is not None:
            std = self.k_channels**-0.5
            self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window + 1, self.k_channels) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window + 1, self.k_channels) * std)
        nn.init.xavier_uniform_(self.conv_q.weight)
        nn.init.xavier_uniform_(self.conv_k.weight)
        nn.init.xavier_uniform_(self.conv_v.weight)
        if proximal_init:
            with torch.no_grad():
                self.conv_k.weight.copy_(self.conv_q.weight)
                self.conv_k.bias.copy_(self.conv_q.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self.conv_q(x), self.conv_k(c), self.conv_v(c)
        b, d, t_k = k.shape
        t_q = q.size(2)
        q = q.view(b, self.n_heads, self.k_channels, t_q).transpose(2, 3)  # (B, H, Tq, dk)
        k = k.view(b, self.n_heads, self.k_channels, t_k).transpose(2, 3)
        v = v.view(b, self.n_heads, self.k_channels, t_k).transpose(2, 3)
        q = q / math.sqrt(self.k_channels)
        scores = torch.matmul(q, k.transpose(-2, -1))  # (B, H, Tq, Tk)
        if self.window is not None:
            if t_q != t_k:
                raise ValueError("relative attention needs self-attention (equal lengths)")
            rel_logits = torch.matmul(q, self.emb_rel_k.unsqueeze(0).transpose(-2, -1))  # (B, H, T, 2w+1)
            scores = scores + self._relative_to_absolute(rel_logits, t_q)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, MASKED_SCORE)
        p_attn = self.drop(F.softmax(scores, dim=-1))
        out = torch.matmul(p_attn, v)  # (B, H, Tq, dk)
        if self.window is not None:
            rel_weights = self._absolute_to_relative(p_attn, t_q)  # (B, H, T, 2w+1)
            out = out + torch.matmul(rel_weights, self.emb_rel_v.unsqueeze(0))
        out = out.transpose(2, 3).contiguous().view(b, d, t_q)
        return self.conv_o(out)

    def _relative_to_absolute(self, rel: torch.Tensor, length: int) -> torch.Tensor:
        """rel (B, H, T, 2w+1) -> (B, H, T, T): entry (i, j) = rel[i, j-i+w] when |j-i| <= w, else 0.

        One gather from ``rel`` with a zero column appended (index 2w+1 for offsets outside the
        window), so the op count does not grow with the window (a CUDA-graph replay is bound by
        the number of kernels, and the ONNX graph stays small)."""
        w = self.window
        pos = torch.arange(length, device=rel.device)
        offset = pos[None, :] - pos[:, None]  # (T, T): j - i
        column = torch.where(offset.abs() <= w, offset + w, 2 * w + 1)
        padded = F.pad(rel, (0, 1))
        return torch.gather(padded, -1, column.expand(rel.shape[:2] + (length, length)))

    def _absolute_to_relative(self, p: torch.Tensor, length: int) -> torch.Tensor:
        """p (B, H, T, T) -> (B, H, T, 2w+1): entry (i, r) = p[i, i+r-w] when inside, else 0.

        One gather from ``p`` padded with w zero columns on each side: column i + r of the padded
        matrix is column i + r - w of ``p``."""
        w = self.window
        pos = torch.arange(length, device=p.device)
        column = pos[:, None] + torch.arange(2 * w + 1, device=p.device)[None, :]  # (T, 2w+1)
        padded = F.pad(p, (w, w))
        return torch.gather(padded, -1, column.expand(p.shape[:2] + (length, 2 * w + 1)))


class FFN(nn.Module):
    """Conv feed-forward block: conv_1 -> relu -> conv_2, masked, 'same' or causal padding.
    forward(x (B, in, T), x_mask (B, 1, T)) -> (B, out, T)."""

    def __init__(
        self, in_channels: int, out_channels: int, filter_channels: int, kernel_size: int, *, p_dropout: float,
        causal: bool,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.causal = causal
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        if k == 1:
            return x
        left, right = (k - 1, 0) if self.causal else ((k - 1) // 2, k // 2)
        return F.pad(x, (left, right))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(self._pad(x * x_mask)))
        x = self.conv_2(self._pad(self.drop(x) * x_mask))
        return x * x_mask


class RelativeEncoder(nn.Module):
    """Prior text encoder stack (so-vits-svc ``attentions.Encoder``): n_layers of relative
    self-attention + 'same'-padded FFN, post-LayerNorm. Parameter names: attn_layers,
    norm_layers_1, ffn_layers, norm_layers_2.
    forward(x (B, H, T), x_mask (B, 1, T)) -> (B, H, T)."""

    def __init__(
        self, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int, kernel_size: int,
        *, p_dropout: float, window: int = RELATIVE_WINDOW,
    ) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_2 = nn.ModuleList()
        for _ in range(n_layers):
            self.attn_layers.append(
                MultiHeadAttention(hidden_channels, hidden_channels, n_heads, p_dropout=p_dropout, window=window)
            )
            self.norm_layers_1.append(ChannelLayerNorm(hidden_channels))
            self.ffn_layers.append(
                FFN(hidden_channels, hidden_channels, filter_channels, kernel_size, p_dropout=p_dropout, causal=False)
            )
            self.norm_layers_2.append(ChannelLayerNorm(hidden_channels))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        for i in range(self.n_layers):
            y = self.drop(self.attn_layers[i](x, x, attn_mask))
            x = self.norm_layers_1[i](x + y)
            y = self.drop(self.ffn_layers[i](x, x_mask))
            x = self.norm_layers_2[i](x + y)
        return x * x_mask


class CausalTransformer(nn.Module):
    """so-vits-svc ``FFT``: n_layers of causal self-attention (no relative embeddings) + causal
    FFN, post-LayerNorm. Parameter names: self_attn_layers, norm_layers_0, ffn_layers,
    norm_layers_1 (+ cond_pre / cond_layer when ``gin_channels`` is given, for flows).
    forward(x (B, H, T), x_mask (B, 1, T), g (B, gin, 1 or T) | None) -> (B, H, T)."""

    def __init__(
        self, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int, kernel_size: int,
        *, p_dropout: float, gin_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.drop = nn.Dropout(p_dropout)
        self.self_attn_layers = nn.ModuleList()
        self.norm_layers_0 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        for _ in range(n_layers):
            self.self_attn_layers.append(
                MultiHeadAttention(hidden_channels, hidden_channels, n_heads, p_dropout=p_dropout, proximal_init=True)
            )
            self.norm_layers_0.append(ChannelLayerNorm(hidden_channels))
            self.ffn_layers.append(
                FFN(hidden_channels, hidden_channels, filter_channels, kernel_size, p_dropout=p_dropout, causal=True)
            )
            self.norm_layers_1.append(ChannelLayerNorm(hidden_channels))
        if gin_channels is not None:
            self.cond_pre = nn.Conv1d(hidden_channels, 2 * hidden_channels, 1)
            self.cond_layer = WeightNormConv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        else:
            self.cond_pre = None
            self.cond_layer = None

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        h = self.hidden_channels
        t = x_mask.size(2)
        causal = torch.tril(torch.ones(t, t, device=x.device, dtype=x.dtype)).view(1, 1, t, t)
        cond_all = self.cond_layer(g) if (g is not None and self.cond_layer is not None) else None
        x = x * x_mask
        for i in range(self.n_layers):
            if cond_all is not None:
                x = gated_activation(self.cond_pre(x), cond_all[:, 2 * h * i : 2 * h * (i + 1)], h)
            y = self.drop(self.self_attn_layers[i](x, x, causal))
            x = self.norm_layers_0[i](x + y)
            y = self.drop(self.ffn_layers[i](x, x_mask))
            x = self.norm_layers_1[i](x + y)
        return x * x_mask

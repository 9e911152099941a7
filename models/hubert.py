"""HuBERT / ContentVec content encoder (base architecture), pure PyTorch.

Turns 16 kHz speech into content features at 50 frames/s (hop 320 samples, receptive field 400).
The same network serves three so-vits-svc encoders:

- vec768l12: output of transformer layer 12 (768-dim in the real model);
- vec256l9: layer 9 followed by ``final_proj`` (768 -> 256);
- hubertsoft: bshall's HuBERT-Soft, all 12 layers followed by its soft-unit projection (768 -> 256),
  with 40 zero samples added on each side of the wave.

Forward pass (post-LN transformer, every GELU exact-erf, every norm eps 1e-5)::

    wave (B, N) -> 7 x [Conv1d (no bias) -> (GroupNorm, first layer only) -> GELU] -> (B, C, T)
    -> transpose -> LayerNorm(C) -> Linear(C -> E) = x                                 (B, T, E)
    -> x + GELU(grouped Conv1d(x), last frame dropped) -> LayerNorm(E)
    -> layers 1..k: x = LN(x + MHA(x)); x = LN(x + fc2(GELU(fc1(x))))
    -> optional projection (E -> P)

This module holds the network only. Weight files are read by :mod:`rtsvc.models.hubert_weights`
(fairseq ContentVec/HuBERT checkpoints and HuBERT-Soft state dicts), which builds the config from
the file and loads it strictly.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

#: eps of every LayerNorm and of the GroupNorm (fairseq and torch default; eps matters here).
NORM_EPS = 1e-5

#: Sample rate the network expects, Hz.
HUBERT_SAMPLE_RATE = 16000
#: On CUDA, inputs up to this many frames (a live window) run the positional convolution as one
#: batched matmul over unfolded frames (see :func:`grouped_conv_as_matmul`); longer ones, the
#: CPU and ONNX export use the Conv1d.
POS_CONV_MATMUL_MAX_FRAMES = 64


def grouped_conv_as_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int,
                           groups: int) -> torch.Tensor:
    """``F.conv1d(x, weight, bias, padding=padding, groups=groups)`` (stride 1) as one batched
    matmul: x (B, C, T), weight (C_out, C / groups, K) -> (B, C_out, T + 2 * padding - K + 1).

    For a few frames and a long kernel (ContentVec's 128 taps, 16 groups) cuDNN ran one slow
    kernel per group; the unfolded input is T x C x K floats (393 KB a frame), so this is for
    short inputs only."""
    batch, channels, _ = x.shape
    kernel = weight.shape[-1]
    per_group, out_per_group = channels // groups, weight.shape[0] // groups
    columns = F.pad(x, (padding, padding)).unfold(2, kernel, 1)  # (B, C, T_out, K), a view
    frames = columns.shape[2]
    columns = columns.reshape(batch, groups, per_group, frames, kernel).permute(0, 1, 3, 2, 4)
    columns = columns.reshape(batch, groups, frames, per_group * kernel)
    out = torch.matmul(columns, weight.reshape(groups, out_per_group, per_group * kernel).transpose(1, 2))
    return out.permute(0, 1, 3, 2).reshape(batch, groups * out_per_group, frames) + bias[:, None]


@dataclass(frozen=True)
class HubertConfig:
    """Sizes of a HuBERT-base-style network.

    conv_layers: ((channels, kernel, stride), ...) of the waveform conv stack; the real model is
        ((512, 10, 5), (512, 3, 2) x 4, (512, 2, 2) x 2): hop 320, receptive field 400 samples.
    embed_dim: transformer width E (768 real).
    ffn_dim: feed-forward hidden size (3072 real).
    num_heads: attention heads (12 real; E must divide by it).
    num_layers: transformer layers (12).
    pos_conv_kernel / pos_conv_groups: positional convolution kernel (128) and groups (16).
    proj_dim: output size P of the final projection (ContentVec ``final_proj`` / HuBERT-Soft
        ``proj``; 256 real), 0 for a network without one.
    input_padding: zero samples added on each side of the wave before the conv stack
        (0 for ContentVec, 40 for HuBERT-Soft).
    """

    conv_layers: tuple[tuple[int, int, int], ...]
    embed_dim: int
    ffn_dim: int
    num_heads: int
    num_layers: int
    pos_conv_kernel: int
    pos_conv_groups: int
    proj_dim: int
    input_padding: int = 0

    def __post_init__(self) -> None:
        layers = tuple(tuple(int(v) for v in layer) for layer in self.conv_layers)
        if not layers or any(len(layer) != 3 or min(layer) <= 0 for layer in layers):
            raise ValueError(f"conv_layers must be non-empty (channels, kernel, stride) triples, got {self.conv_layers!r}")
        object.__setattr__(self, "conv_layers", layers)
        for name in ("embed_dim", "ffn_dim", "num_heads", "num_layers", "pos_conv_kernel", "pos_conv_groups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.proj_dim < 0 or self.input_padding < 0:
            raise ValueError("proj_dim and input_padding must be >= 0")
        if self.embed_dim % self.num_heads or self.embed_dim % self.pos_conv_groups:
            raise ValueError(
                f"embed_dim {self.embed_dim} must divide by num_heads {self.num_heads} and pos_conv_groups {self.pos_conv_groups}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "HubertConfig":
        """Build from a dict of exactly these field names; unknown names are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown HubertConfig field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        missing = sorted(f.name for f in fields(cls) if f.name not in values and f.name != "input_padding")
        if missing:
            raise ValueError(f"HubertConfig field(s) missing: {', '.join(missing)}")
        args = dict(values)
        args["conv_layers"] = tuple(tuple(layer) for layer in args["conv_layers"])
        return cls(**args)

    @property
    def hop(self) -> int:
        """Samples per output frame (product of the conv strides; 320)."""
        hop = 1
        for _, _, stride in self.conv_layers:
            hop *= stride
        return hop

    @property
    def receptive_field(self) -> int:
        """Samples one output frame sees (400 for the real stack)."""
        field, jump = 1, 1
        for _, kernel, stride in self.conv_layers:
            field += (kernel - 1) * jump
            jump *= stride
        return field

    def num_frames(self, samples: int) -> int:
        """Output frames for ``samples`` input samples (0 when too short):
        ``floor((samples + 2 * input_padding - receptive_field) / hop) + 1``."""
        n = samples + 2 * self.input_padding
        if n < self.receptive_field:
            return 0
        for _, kernel, stride in self.conv_layers:
            n = (n - kernel) // stride + 1
        return n


class ConvFeatureExtractor(nn.Module):
    """Waveform conv stack: (B, 1, N) -> (B, C_last, T). GroupNorm (one group per channel,
    i.e. per-channel normalisation over time) after the first conv only."""

    def __init__(self, conv_layers: tuple[tuple[int, int, int], ...]) -> None:
        super().__init__()
        convs = []
        in_channels = 1
        for channels, kernel, stride in conv_layers:
            convs.append(nn.Conv1d(in_channels, channels, kernel, stride=stride, bias=False))
            in_channels = channels
        self.convs = nn.ModuleList(convs)
        first = conv_layers[0][0]
        self.first_norm = nn.GroupNorm(first, first, eps=NORM_EPS, affine=True)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.first_norm(self.convs[0](wave))
        x = F.gelu(x)
        for conv in self.convs[1:]:
            x = F.gelu(conv(x))
        return x


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections (with bias), q scaled by
    head_dim ** -0.5, no mask. (B, T, E) -> (B, T, E)."""

    def __init__(self, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, embed = x.shape
        head_dim = embed // self.num_heads

        def heads(t: torch.Tensor) -> torch.Tensor:  # (B, T, E) -> (B, H, T, D)
            return t.view(batch, frames, self.num_heads, head_dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(batch, frames, embed))


class EncoderLayer(nn.Module):
    """Post-LN transformer layer: x = LN(x + MHA(x)); x = LN(x + ffn_out(GELU(ffn_in(x))))."""

    def __init__(self, embed_dim: int, ffn_dim: int, num_heads: int) -> None:
        super().__init__()
        self.attn = SelfAttention(embed_dim, num_heads)
        self.attn_norm = nn.LayerNorm(embed_dim, eps=NORM_EPS)
        self.ffn_in = nn.Linear(embed_dim, ffn_dim)
        self.ffn_out = nn.Linear(ffn_dim, embed_dim)
        self.ffn_norm = nn.LayerNorm(embed_dim, eps=NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn_norm(x + self.attn(x))
        return self.ffn_norm(x + self.ffn_out(F.gelu(self.ffn_in(x))))


class HubertModel(nn.Module):
    """HuBERT/ContentVec base network for inference (no masking, no dropout, no label heads).

    The positional convolution is a plain Conv1d: its weight-norm (g, v) pair is folded into one
    kernel when the file is loaded. Parameters are float32 whatever the file held.
    """

    def __init__(self, config: HubertConfig) -> None:
        super().__init__()
        self.config = config
        conv_channels = config.conv_layers[-1][0]
        embed = config.embed_dim
        self.feature_extractor = ConvFeatureExtractor(config.conv_layers)
        self.feature_norm = nn.LayerNorm(conv_channels, eps=NORM_EPS)
        self.feature_proj = nn.Linear(conv_channels, embed)
        self.pos_conv = nn.Conv1d(
            embed, embed, config.pos_conv_kernel, padding=config.pos_conv_kernel // 2, groups=config.pos_conv_groups
        )
        self.encoder_norm = nn.LayerNorm(embed, eps=NORM_EPS)
        self.layers = nn.ModuleList(
            [EncoderLayer(embed, config.ffn_dim, config.num_heads) for _ in range(config.num_layers)]
        )
        self.final_proj = nn.Linear(embed, config.proj_dim) if config.proj_dim else None

    def projected_features(self, wav_16k: torch.Tensor) -> torch.Tensor:
        """Conv stack -> LayerNorm -> projection, the transformer input before the positional
        conv. wav_16k: (B, N) float32 in [-1, 1] at 16 kHz. Returns (B, T, E)."""
        wave = wav_16k.unsqueeze(1)
        if self.config.input_padding:
            wave = F.pad(wave, (self.config.input_padding, self.config.input_padding))
        x = self.feature_extractor(wave).transpose(1, 2)
        return self.feature_proj(self.feature_norm(x))

    def units(self, wav_16k: torch.Tensor, output_layer: int, final_proj: bool) -> torch.Tensor:
        """Content features.

        wav_16k: (batch, samples) float32 at 16 kHz, unnormalised, samples >= receptive field
            minus twice ``input_padding`` (400 for ContentVec).
        output_layer: 1-based transformer layer whose output is returned (12 for vec768l12,
            9 for vec256l9); the layers after it are not run.
        final_proj: apply the final projection (vec256l9 / HuBERT-Soft).
        Returns (batch, frames, embed_dim or proj_dim) float32, frames = config.num_frames(samples).
        """
        if not 1 <= output_layer <= self.config.num_layers:
            raise ValueError(f"output_layer must be in 1..{self.config.num_layers}, got {output_layer}")
        if final_proj and self.final_proj is None:
            raise ValueError("this network has no final projection")
        if wav_16k.dim() != 2:
            raise ValueError(f"wav_16k must be (batch, samples), got shape {tuple(wav_16k.shape)}")
        if not torch.jit.is_tracing() and self.config.num_frames(wav_16k.shape[1]) < 1:  # shape check: eager only
            raise ValueError(
                f"{wav_16k.shape[1]} samples is shorter than the encoder's receptive field "
                f"({self.config.receptive_field - 2 * self.config.input_padding} samples)"
            )
        x = self.projected_features(wav_16k.float())
        pos = self._positional_conv(x.transpose(1, 2))
        if self.config.pos_conv_kernel % 2 == 0:
            pos = pos[:, :, :-1]  # an even kernel with padding k/2 yields one frame too many
        x = self.encoder_norm(x + F.gelu(pos).transpose(1, 2))
        for layer in self.layers[:output_layer]:
            x = layer(x)
        if final_proj:
            x = self.final_proj(x)
        return x

    def _positional_conv(self, x: torch.Tensor) -> torch.Tensor:
        """pos_conv of x (B, E, T); a batched matmul for short inputs on CUDA (same sums)."""
        if x.is_cuda and x.shape[-1] <= POS_CONV_MATMUL_MAX_FRAMES and not torch.jit.is_tracing():
            conv = self.pos_conv
            return grouped_conv_as_matmul(x, conv.weight, conv.bias, conv.padding[0], conv.groups)
        return self.pos_conv(x)


class UnitsForExport(nn.Module):
    """Wraps :meth:`HubertModel.units` with a fixed layer/projection in the so-vits-svc ONNX
    encoder signature: input ``source`` (1, 1, samples) float32 -> output ``embed`` (1, frames, dim)."""

    def __init__(self, model: HubertModel, output_layer: int, final_proj: bool) -> None:
        super().__init__()
        self.model = model
        self.output_layer = output_layer
        self.final_proj = final_proj

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        return self.model.units(source[:, 0, :], self.output_layer, self.final_proj)

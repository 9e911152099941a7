"""Export-friendly views of the SoVITS synthesizer (for ``torch.onnx.export``).

The inference modules in :mod:`models.synthesizer` use in-place diagonal copies (relative
attention), in-place slice writes and a ``RandomDraws`` object (NSF excitation) that a graph
cannot hold. The wrappers here *share the parameters* of a loaded synthesizer (nothing is
copied or changed) and recompute the same maths with traceable ops:

* :class:`RelativeAttentionForExport`: windowed relative self-attention with ``gather``
  instead of diagonal copies (exact copies of the same values; no mask, all frames valid).
* :class:`ExcitationForExport`: the NSF harmonic source with its random draws as explicit
  tensors (``harmonic_phase``, ``source_noise``) or none at all (deterministic).
* :class:`SynthesizerForExport`: the whole inference path with so-vits-svc's ONNX input
  contract (MoeVoiceStudio): ``c, f0, mel2ph, uv, noise, sid[, vol][, harmonic_phase,
  source_noise]`` -> ``audio``. See docs/onnx.md for the shapes.

All frames are valid (so-vits-svc's ONNX graphs use an all-ones mask too): batch items of
different lengths must be run separately.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .coarse_f0 import f0_to_coarse
from .vocoder_snake import ALIAS_RATIO
from .vocoder_source import SINE_AMP, UNVOICED_NOISE_STD, VOICED_NOISE_STD, running_phase

#: Graph input names, in order (so-vits-svc / MoeVoiceStudio names first).
CONTRACT_INPUTS = ("c", "f0", "mel2ph", "uv", "noise", "sid")
VOL_INPUT = "vol"
DRAW_INPUTS = ("harmonic_phase", "source_noise")
#: rtsvc's own input: int64 (1,), how many samples at the end of the window to return.
KEEP_INPUT = "keep"
AUDIO_OUTPUT = "audio"


class RelativeAttentionForExport(nn.Module):
    """Self-attention with windowed relative positions, sharing ``attention``'s parameters
    (a :class:`models.attentions.MultiHeadAttention` built with ``window``).

    forward(x (B, C, T)) -> (B, out, T); every frame attends to every frame (no mask).
    """

    def __init__(self, attention: nn.Module) -> None:
        super().__init__()
        if getattr(attention, "window", None) is None:
            raise ValueError("RelativeAttentionForExport needs an attention module with a relative window")
        self.attention = attention
        self.window = int(attention.window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        att = self.attention
        heads, dk, w = att.n_heads, att.k_channels, self.window
        q, k, v = att.conv_q(x), att.conv_k(x), att.conv_v(x)
        b, d, t = k.shape
        q = q.view(b, heads, dk, t).transpose(2, 3) / math.sqrt(dk)  # (B, H, T, dk)
        k = k.view(b, heads, dk, t).transpose(2, 3)
        v = v.view(b, heads, dk, t).transpose(2, 3)
        scores = torch.matmul(q, k.transpose(-2, -1))  # (B, H, T, T)
        rel_logits = torch.matmul(q, att.emb_rel_k.unsqueeze(0).transpose(-2, -1))  # (B, H, T, 2w+1)
        pos = torch.arange(t, device=x.device)
        # absolute (i, j) <- relative column j - i + w, zero outside the window
        rel_col = pos.view(1, -1) - pos.view(-1, 1) + w  # (T, T)
        in_window = (rel_col >= 0) & (rel_col <= 2 * w)
        rel_index = rel_col.clamp(0, 2 * w).expand(b, heads, t, t)
        scores = scores + torch.where(in_window, torch.gather(rel_logits, 3, rel_index), torch.zeros_like(scores))
        p_attn = F.softmax(scores, dim=-1)
        out = torch.matmul(p_attn, v)
        # relative (i, r) <- absolute column i + r - w, zero outside the sequence
        abs_col = pos.view(-1, 1) + torch.arange(2 * w + 1, device=x.device).view(1, -1) - w  # (T, 2w+1)
        inside = (abs_col >= 0) & (abs_col < t)
        abs_index = abs_col.clamp(min=0).clamp(max=t - 1).expand(b, heads, t, 2 * w + 1)
        gathered = torch.gather(p_attn, 3, abs_index)
        rel_weights = torch.where(inside, gathered, torch.zeros_like(gathered))
        out = out + torch.matmul(rel_weights, att.emb_rel_v.unsqueeze(0))
        out = out.transpose(2, 3).reshape(b, d, t)
        return att.conv_o(out)


class ExcitationForExport(nn.Module):
    """NSF harmonic source of ``vocoder`` (its ``m_source``) with explicit draws.

    forward(f0 (B, T) Hz, harmonic_phase (B, H) | None, source_noise (B, T*upp, H) | None)
    -> har_source (B, 1, T*upp). H = number of sine channels (9). harmonic_phase: initial
    phase in cycles (column 0, the fundamental, is ignored: it always starts at 0);
    source_noise: standard normal draws, scaled here by 0.003 (voiced) / 0.1/3 (unvoiced).
    None for both is the deterministic source (zero phase, no noise).
    """

    def __init__(self, vocoder: nn.Module) -> None:
        super().__init__()
        self.source = vocoder.m_source
        self.upp = int(vocoder.upp)
        self.sampling_rate = int(self.source.sampling_rate)
        self.dim = int(self.source.dim)

    def forward(
        self, f0: torch.Tensor, harmonic_phase: torch.Tensor | None = None, source_noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, t = f0.shape
        f0_samples = f0.float().unsqueeze(-1).expand(b, t, self.upp).reshape(b, t * self.upp, 1)
        harmonics = torch.arange(1, self.dim + 1, device=f0.device, dtype=torch.float32)
        increments = (f0_samples * harmonics / self.sampling_rate) % 1  # (B, N, H)
        if harmonic_phase is not None:
            overtones_only = (harmonics > 1).float()  # the fundamental starts at phase 0
            first = increments[:, :1, :] + (harmonic_phase.float() * overtones_only).unsqueeze(1)
            increments = torch.cat([first, increments[:, 1:, :]], dim=1)
        phase = running_phase(increments)
        voiced = (f0_samples > 0).float()
        sines = torch.sin(phase * 2 * math.pi) * SINE_AMP * voiced
        if source_noise is not None:
            noise_std = voiced * VOICED_NOISE_STD + (1 - voiced) * UNVOICED_NOISE_STD
            sines = sines + noise_std * source_noise.float()
        sines = sines.to(self.source.l_linear.weight.dtype)
        return torch.tanh(self.source.l_linear(sines)).transpose(1, 2)


class AliasFreeSnakeForExport(nn.Module):
    """so-vits-svc ``SnakeAlias`` (a :class:`models.vocoder_snake.AliasFreeSnake`) with its
    channel count fixed at build time, so the grouped filter convolutions have a known kernel
    shape in the graph. Shares the module's parameters and buffers. (B, C, N) -> (B, C, N)."""

    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        self.activation = activation
        self.channels = int(activation.act.alpha.numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up, down = self.activation.upsample, self.activation.downsample.lowpass
        ratio = up.filter.new_tensor(float(ALIAS_RATIO))
        x = F.pad(x, (up.pad, up.pad), mode="replicate")
        x = ratio * F.conv_transpose1d(x, up.filter.expand(self.channels, -1, -1), stride=ALIAS_RATIO,
                                       groups=self.channels)
        x = x[..., up.crop_left : x.size(-1) - up.crop_right]
        x = self.activation.act(x)
        x = F.pad(x, (down.pad_left, down.pad_right), mode="replicate")
        return F.conv1d(x, down.filter.expand(self.channels, -1, -1), stride=ALIAS_RATIO, groups=self.channels)


class SnakeResBlockForExport(nn.Module):
    """A snake residual block (``SnakeResBlock1`` with ``convs1``/``convs2``, or
    ``SnakeResBlock2`` with ``convs``) using :class:`AliasFreeSnakeForExport` activations."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block
        self.activations = nn.ModuleList(AliasFreeSnakeForExport(a) for a in block.activations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block, acts = self.block, self.activations
        if hasattr(block, "convs1"):
            for i, (c1, c2) in enumerate(zip(block.convs1, block.convs2)):
                x = c2(acts[2 * i + 1](c1(acts[2 * i](x)))) + x
            return x
        for conv, act in zip(block.convs, acts):
            x = conv(act(x)) + x
        return x


class DecoderForExport(nn.Module):
    """The NSF generator ``vocoder`` body (everything after the excitation), with snake
    activations swapped for :class:`AliasFreeSnakeForExport` views.
    forward(z (B, inter, T), har_source (B, 1, T*upp), g (B, gin, 1 or T), keep (0-d int64) |
    None) -> (B, 1, T*upp), or its last ``keep`` samples (the vocoder's head skip, see
    models.nsf_hifigan)."""

    def __init__(self, vocoder: nn.Module) -> None:
        super().__init__()
        self.vocoder = vocoder
        self.snake = hasattr(vocoder, "snakes")
        if self.snake:
            self.stage_acts = nn.ModuleList(AliasFreeSnakeForExport(a) for a in vocoder.snakes)
            self.final_act = AliasFreeSnakeForExport(vocoder.snake_post)
            self.resblocks = nn.ModuleList(SnakeResBlockForExport(b) for b in vocoder.resblocks)
        else:
            self.resblocks = vocoder.resblocks

    def forward(self, z: torch.Tensor, har_source: torch.Tensor, g: torch.Tensor,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        dec = self.vocoder
        if not self.snake:
            return dec.decode(z, har_source, g, keep)
        x = dec.conv_pre(z) + dec.cond(g)
        for i, up in enumerate(dec.ups):
            x = up(self.stage_acts[i](x)) + dec.noise_convs[i](har_source)
            blocks = self.resblocks[i * dec.num_kernels : (i + 1) * dec.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / dec.num_kernels
        x = torch.tanh(dec.conv_post(self.final_act(x)))
        return x if keep is None else x[..., har_source.size(-1) - keep :]


class SynthesizerForExport(nn.Module):
    """The SoVITS inference path of ``model`` (a :class:`models.synthesizer.SynthesizerTrn`,
    weight norm folded, eval mode) with the ONNX input contract.

    speaker_mix: ``sid`` is float mix weights (T, n_speakers) (one row per frame, rows summing
        to 1: the caller normalises) instead of an int64 speaker id (1,).
    source_draws: the graph takes ``harmonic_phase`` and ``source_noise`` (reproducible
        non-deterministic runs); without them the excitation is deterministic.

    keep_input: the graph takes ``keep`` (int64 (1,), 1..T*hop) and returns only the last
        ``keep`` samples, skipping the decoder work only the rest depends on (rtsvc's live path).

    forward(c (B, U, ssl_dim), f0 (B, T) Hz, mel2ph (B, T) int64 (1-based unit index per frame,
    0 = a zero frame), uv (B, T) 0/1, noise (B, inter, T) (prior noise, already multiplied by
    the noise scale), sid, [vol (B, T)], [harmonic_phase (B, 9), source_noise (B, T*hop, 9)],
    [keep (1,)]) -> audio (B, 1, T*hop or keep) float32. The f0 predictor head is not part of the graph.
    """

    def __init__(self, model: nn.Module, *, speaker_mix: bool, source_draws: bool, keep_input: bool = False) -> None:
        super().__init__()
        self.model = model
        self.speaker_mix = speaker_mix
        self.source_draws = source_draws
        self.keep_input = keep_input
        self.attentions = nn.ModuleList(RelativeAttentionForExport(a) for a in model.enc_p.enc_.attn_layers)
        self.excitation = ExcitationForExport(model.dec)
        self.decoder = DecoderForExport(model.dec)

    def input_names(self) -> list[str]:
        names = list(CONTRACT_INPUTS)
        if self.model.vol_embedding:
            names.append(VOL_INPUT)
        if self.source_draws:
            names.extend(DRAW_INPUTS)
        if self.keep_input:
            names.append(KEEP_INPUT)
        return names

    def _speaker(self, sid: torch.Tensor) -> torch.Tensor:
        weight = self.model.emb_g.weight  # (n_speakers, gin)
        if self.speaker_mix:
            return torch.matmul(sid.to(weight.dtype), weight).transpose(0, 1).unsqueeze(0)  # (1, gin, T)
        return F.embedding(sid.reshape(-1, 1), weight).transpose(1, 2)  # (B, gin, 1)

    def _prior(self, x: torch.Tensor, x_mask: torch.Tensor, coarse: torch.Tensor, noise: torch.Tensor):
        enc_p = self.model.enc_p
        stack = enc_p.enc_
        x = x + enc_p.f0_emb(coarse).transpose(1, 2)
        for i, attention in enumerate(self.attentions):
            x = stack.norm_layers_1[i](x + attention(x))
            x = stack.norm_layers_2[i](x + stack.ffn_layers[i](x, x_mask))
        m, logs = torch.split(enc_p.proj(x), enc_p.inter_channels, dim=1)
        return m + noise.to(m.dtype) * torch.exp(logs)

    def forward(self, c, f0, mel2ph, uv, noise, sid, *extra):
        model = self.model
        extra = list(extra)
        vol = extra.pop(0) if model.vol_embedding else None
        phase, source_noise = (extra.pop(0), extra.pop(0)) if self.source_draws else (None, None)
        keep = extra.pop(0)[0] if self.keep_input else None
        dtype = model.pre.weight.dtype
        units = F.pad(c.to(dtype), (0, 0, 1, 0))  # row 0 = the zero frame mel2ph 0 points at
        index = mel2ph.unsqueeze(2).expand(-1, -1, units.size(2))
        content = torch.gather(units, 1, index).transpose(1, 2)  # (B, ssl_dim, T)
        f0 = f0.float()
        x_mask = torch.ones_like(f0).unsqueeze(1).to(dtype)
        g = self._speaker(sid)
        x = model.pre(content) * x_mask + model.emb_uv(uv.long()).transpose(1, 2)
        if vol is not None:
            x = x + model.emb_vol(vol.to(dtype).unsqueeze(-1)).transpose(1, 2)
        coarse = f0_to_coarse(f0, model.coarse_f0_version)
        z_p = self._prior(x, x_mask, coarse, noise)
        z = model.flow(z_p, x_mask, g=g, reverse=True)
        har_source = self.excitation(f0, phase, source_noise)
        return self.decoder(z, har_source, g, keep).float()

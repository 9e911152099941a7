"""The training forward pass of the SoVITS generator (so-vits-svc 4.1 ``SynthesizerTrn.forward``),
written here over the submodules of :class:`rtsvc.models.synthesizer.SynthesizerTrn`.

Per batch (B clips padded to T frames; lengths gives each clip's frames)::

    c (B, ssl_dim, T) --pre--> + uv embedding + vol embedding --> x (B, hidden, T)
    x, coarse f0 --enc_p--> prior (m_p, logs_p)              x, normalised log-f0 --f0_decoder--> pred_lf0
    spec (B, spec_channels, T) --enc_q--> posterior sample z (m_q, logs_q) --flow--> z_p
    a random window of segment_frames frames of z and f0 --dec (NSF, random phases and noise)--> y_hat
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rtsvc.models.coarse_f0 import f0_to_coarse
from rtsvc.models.draws import RandomDraws
from rtsvc.models.f0_decoder import f0_to_lf0, normalize_lf0

#: Range of the random scale applied to the centred log-f0 fed to the f0 predictor.
F0_NORM_SCALE_RANGE = (0.8, 1.2)


@dataclass
class GeneratorOutput:
    """y_hat: (B, 1, segment_frames * hop) audio; ids_slice: (B,) start frame of each window;
    mask: (B, 1, T); z, z_p, m_p, logs_p, m_q, logs_q: (B, inter, T);
    pred_lf0, lf0: (B, 1, T) or None without automatic f0 prediction."""

    y_hat: torch.Tensor
    ids_slice: torch.Tensor
    mask: torch.Tensor
    z: torch.Tensor
    z_p: torch.Tensor
    m_p: torch.Tensor
    logs_p: torch.Tensor
    m_q: torch.Tensor
    logs_q: torch.Tensor
    pred_lf0: torch.Tensor | None
    lf0: torch.Tensor | None


def sequence_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """lengths (B,) -> (B, 1, max_len) float mask, 1 inside each clip."""
    return (torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]).unsqueeze(1).float()


def random_windows(lengths: torch.Tensor, segment_frames: int) -> torch.Tensor:
    """(B,) int64 start frames, uniform in [0, length - segment_frames] per clip."""
    top = (lengths - segment_frames + 1).clamp(min=1).float()
    return (torch.rand(lengths.shape, device=lengths.device) * top).long()


def slice_frames(x: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """x (B, C, T) or (B, T) -> the windows [starts[i], starts[i] + length) -> (B, C, length) / (B, length)."""
    index = starts[:, None] + torch.arange(length, device=x.device)[None, :]
    if x.dim() == 2:
        return torch.gather(x, 1, index)
    return torch.gather(x, 2, index[:, None, :].expand(-1, x.size(1), -1))


def generator_forward(
    model, c: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, spec: torch.Tensor, speaker: torch.Tensor,
    lengths: torch.Tensor, vol: torch.Tensor | None, segment_frames: int,
) -> GeneratorOutput:
    """One training forward. c (B, ssl_dim, T); f0 (B, T) Hz, unvoiced frames interpolated;
    uv (B, T) 1.0 voiced; spec (B, spec_channels, T) linear magnitude; speaker (B,) int64;
    lengths (B,) frames; vol (B, T) RMS or None; segment_frames: decoder window (frames)."""
    g = model.emb_g(speaker.view(-1, 1)).transpose(1, 2)  # (B, gin, 1)
    mask = sequence_mask(lengths, c.size(2)).to(c.dtype)
    x = model.pre(c) * mask + model.emb_uv(uv.long()).transpose(1, 2)
    if vol is not None and model.vol_embedding:
        x = x + model.emb_vol(vol[:, :, None]).transpose(1, 2)
    pred_lf0 = lf0 = None
    if model.use_automatic_f0_prediction:
        lf0 = f0_to_lf0(f0)
        scale = torch.empty(f0.size(0), device=f0.device).uniform_(*F0_NORM_SCALE_RANGE)
        norm_lf0 = normalize_lf0(lf0, mask, uv, scale=scale)
        pred_lf0 = model.f0_decoder(x, norm_lf0, mask, spk_emb=g)
    _, m_p, logs_p = model.enc_p(x, mask, f0_to_coarse(f0, model.coarse_f0_version))
    noise = torch.randn(spec.size(0), model.inter_channels, spec.size(2), device=spec.device, dtype=spec.dtype)
    z, m_q, logs_q = model.enc_q(spec, mask, g=g, noise=noise)
    z_p, _ = model.flow(z, mask, g=g)
    frames = min(segment_frames, int(lengths.min()))
    starts = random_windows(lengths, frames)
    z_slice = slice_frames(z, starts, frames)
    f0_slice = slice_frames(f0, starts, frames)
    y_hat = model.dec(z_slice, f0_slice, g, draws=RandomDraws(None, f0.device))
    return GeneratorOutput(y_hat, starts, mask, z, z_p, m_p, logs_p, m_q, logs_q, pred_lf0, lf0)

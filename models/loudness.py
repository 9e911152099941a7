"""Frame loudness (RMS amplitude) fed to ``emb_vol`` of SoVITS models with vol_embedding.

"4.1-stable": square the samples, reflect-pad hop//2 at the start and (hop+1)//2 at the end,
mean over non-overlapping hop windows (the first len//hop), square root; frame k is centred
on sample hop*k. "4.1-latest": the same without padding (frame k covers [hop*k, hop*(k+1))).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

LOUDNESS_VARIANTS = ("4.1-stable", "4.1-latest")


def frame_loudness(audio: torch.Tensor, hop_length: int, variant: str = "4.1-stable") -> torch.Tensor:
    """audio (N,) or (B, N) float -> (len // hop,) or (B, len // hop) float32 RMS per frame."""
    if variant not in LOUDNESS_VARIANTS:
        raise ValueError(f"loudness variant must be one of {LOUDNESS_VARIANTS}, got {variant!r}")
    squeeze = audio.dim() == 1
    a = audio.float().reshape(1, -1) if squeeze else audio.float()
    n_frames = a.size(-1) // hop_length
    power = a**2
    if variant == "4.1-stable":
        power = F.pad(power.unsqueeze(1), (hop_length // 2, (hop_length + 1) // 2), mode="reflect").squeeze(1)
    windows = power[:, : n_frames * hop_length].reshape(a.size(0), n_frames, hop_length)
    out = torch.sqrt(windows.mean(dim=-1))
    return out[0] if squeeze else out

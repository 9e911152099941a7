"""Coarse pitch index (0..255) fed to the prior encoder's pitch embedding.

4.1 behaviour (``version="4.1"``): mel = 1127 ln(1 + f0/700); with mel_min/mel_max at 50 Hz /
1100 Hz, v = (mel - mel_min) * 254 / (mel_max - mel_min) + 1 for mel > 0 (else v = mel);
n = round-half-to-even(v); index 1 if n <= 0, **0 if n >= 256** (upstream quirk: f0 above
~1103.25 Hz maps to 0), n otherwise.
4.0 behaviour (``version="4.0"``): the same v, clamped to [1, 255] and rounded half up.
"""

from __future__ import annotations

import math

import torch

F0_BIN = 256
F0_MIN_HZ = 50.0
F0_MAX_HZ = 1100.0
MEL_FACTOR = 1127.0
MEL_BREAK_HZ = 700.0
COARSE_VERSIONS = ("4.1", "4.0")


def _mel(f0_hz: float) -> float:
    return MEL_FACTOR * math.log(1 + f0_hz / MEL_BREAK_HZ)


def f0_to_coarse(f0: torch.Tensor, version: str = "4.1") -> torch.Tensor:
    """f0 (any shape) Hz -> int64 indices of the same shape (computed in float64; agrees with
    upstream's float32 computation on every tested value). f0 <= 0 (unvoiced) maps to 1."""
    if version not in COARSE_VERSIONS:
        raise ValueError(f"coarse f0 version must be one of {COARSE_VERSIONS}, got {version!r}")
    f = f0.double()
    mel_min, mel_max = _mel(F0_MIN_HZ), _mel(F0_MAX_HZ)
    mel = MEL_FACTOR * torch.log1p(f.clamp(min=0) / MEL_BREAK_HZ)
    scaled = torch.where(mel > 0, (mel - mel_min) * (F0_BIN - 2) / (mel_max - mel_min) + 1, mel)
    if version == "4.1":
        n = torch.round(scaled)
        index = torch.where(n <= 0, torch.ones_like(n), n)
        index = torch.where(n >= F0_BIN, torch.zeros_like(n), index)
    else:
        clamped = scaled.clamp(min=1, max=F0_BIN - 1)
        index = torch.floor(clamped + 0.5)
    return index.long()

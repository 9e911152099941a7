"""Expanding content-encoder frames (50 Hz) to the model frame grid (sr / hop).

so-vits-svc's ``data.unit_interpolate_mode``: "left" (the 4.0 behaviour, and the default
when the key is absent), "nearest" (the 4.1 template) or "linear".
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

UNIT_INTERPOLATE_MODES = ("left", "nearest", "linear")


def left_source_index(src: int, target: int) -> np.ndarray:
    """Source frame feeding each of ``target`` output frames in "left" mode (int64, (target,)).

    Boundaries b_j = j * target / src (float32). A pointer starts at frame 0 and, for each
    output frame i in order, moves forward one frame when i >= b_{pointer+1}. Upsampling
    gives the j with b_j <= i < b_{j+1}; downsampling gives the first ``target`` frames.
    """
    bounds = np.arange(src + 1, dtype=np.int64).astype(np.float32) * np.float32(target) / np.float32(src)
    bounds = bounds.astype(np.float32)
    index = np.empty(target, dtype=np.int64)
    pointer = 0
    for i in range(target):
        if i >= bounds[pointer + 1]:
            pointer = min(pointer + 1, src - 1)
        index[i] = pointer
    return index


def expand_frames(x: torch.Tensor, target: int, mode: str) -> torch.Tensor:
    """x (C, src) -> (C, target) float32 using ``mode`` (see :data:`UNIT_INTERPOLATE_MODES`)."""
    if mode not in UNIT_INTERPOLATE_MODES:
        raise ValueError(f"unit_interpolate_mode must be one of {', '.join(UNIT_INTERPOLATE_MODES)}, got {mode!r}")
    if x.dim() != 2 or x.size(1) < 1 or target < 1:
        raise ValueError(f"expand_frames needs x of shape (C, src>=1) and target >= 1, got {tuple(x.shape)}, {target}")
    x = x.float()
    if mode == "left":
        index = torch.from_numpy(left_source_index(x.size(1), target)).to(x.device)
        return x.index_select(1, index)
    if mode == "nearest":
        return F.interpolate(x.unsqueeze(0), size=target, mode="nearest").squeeze(0)
    return F.interpolate(x.unsqueeze(0), size=target, mode="linear", align_corners=False).squeeze(0)

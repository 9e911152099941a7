"""Rolling f0 cache on the voice's frame grid.

The live window moves by ``block`` samples (whole hops) per block, so the cache shifts by
``block / hop`` frames. Only the new block plus a margin is analysed each block: frames near the
window's end were estimated last block with no right context, so they are re-estimated now::

    cache frames  [ ..... kept ..... | context | re-estimated: margin + new block ]
                                      ^ analysed segment (context is read, not written)
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

#: Frames before the block that are re-estimated with more right context (about 20 ms at 44.1k/220).
PITCH_MARGIN_FRAMES = 4
#: Audio each estimator needs before the frames it writes, seconds (dio and harvest return
#: all-unvoiced on segments shorter than ~0.15 s / ~0.3 s; FCPE works on short ones).
PITCH_CONTEXT_SECONDS = {"fcpe": 0.05, "dio": 0.16, "harvest": 0.32}
#: Context for estimators not listed above, seconds.
DEFAULT_PITCH_CONTEXT_SECONDS = 0.1

#: (audio (n,) float32, sample_rate, hop, method, threshold) -> (n // hop,) float32 Hz.
F0Estimator = Callable[[np.ndarray, int, int, str, float], np.ndarray]


#: dio's decimation factor on the live path (WORLD's ``speed``): ~8x faster than 1; after
#: StoneMask 99% of speech frames within 7.4 cents of speed 1 (see rtsvc.pitch); offline keeps 1.
LIVE_DIO_SPEED = 8
#: Estimators that run a torch network: the live path runs them on one intra-op thread (FCPE's
#: network in ONNX Runtime when the onnx extra is installed: rtsvc.pitch_onnx). A second
#: thread gains little on short segments, and on a busy CPU OpenMP's thread barriers turned
#: 15 ms calls into 100-800 ms spikes.
TORCH_METHODS = frozenset({"fcpe", "rmvpe", "crepe"})


def context_frames(method: str, sample_rate: int, hop: int) -> int:
    """Frames of context the cache puts before the frames it writes, for ``method``."""
    return math.ceil(PITCH_CONTEXT_SECONDS.get(method, DEFAULT_PITCH_CONTEXT_SECONDS) * sample_rate / hop)


def default_estimator(audio: np.ndarray, sample_rate: int, hop: int, method: str, threshold: float,
                      device: str = "cpu") -> np.ndarray:
    """rtsvc.pitch.estimate_f0 (imported when first used) with the live settings above;
    ``device``: where the neural estimators run (a GPU: torch there, all its threads)."""
    from rtsvc.pitch import estimate_f0

    if method in TORCH_METHODS and not device.startswith("cpu"):
        return estimate_f0(audio, sample_rate, hop, method, threshold=threshold, device=device)
    if method not in TORCH_METHODS:
        # The segment's first context_frames() frames are context the cache reads but never
        # writes (history_samples() keeps enough audio for that): StoneMask skips them.
        refine_after = context_frames(method, sample_rate, hop) * hop / sample_rate
        return estimate_f0(audio, sample_rate, hop, method, threshold=threshold, dio_speed=LIVE_DIO_SPEED,
                           refine_after_s=refine_after)
    import torch

    from rtsvc.pitch_onnx import onnx_fcpe_available

    backend = "onnxruntime" if method == "fcpe" and onnx_fcpe_available() else "torch"
    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
    try:
        return estimate_f0(audio, sample_rate, hop, method, threshold=threshold, fcpe_backend=backend)
    finally:
        if threads != 1:
            torch.set_num_threads(threads)


def estimator_for_device(device: str) -> F0Estimator:
    """The default estimator for a voice on ``device``: a voice on a GPU gets its FCPE / RMVPE
    pitch there too (the CPU stays free for the worker's own work)."""
    if not isinstance(device, str) or device.startswith("cpu"):
        return default_estimator
    return functools.partial(default_estimator, device=device)


class PitchCache:
    """f0 of the live window. frames: window_v // hop; hop: samples per frame at the voice rate."""

    def __init__(self, frames: int, hop: int, block_frames: int, estimator: F0Estimator) -> None:
        self.hop = int(hop)
        self.block_frames = int(block_frames)
        self.f0 = np.zeros(int(frames), dtype=np.float32)
        self.estimator = estimator

    def advance(self, history: np.ndarray, sample_rate: int, method: str, threshold: float, analyse: bool = True) -> np.ndarray:
        """Shift by one block and fill the new frames. history: (>= frames * hop,) float32 input
        at the voice rate ending with the new block (may reach further back than the window, for
        the estimator's context; see :func:`history_samples`). analyse=False writes 0 (unvoiced) for the new frames
        (gated or bypassed blocks skip pitch estimation). Returns the cache ((frames,) Hz)."""
        nb = self.block_frames
        f0 = self.f0
        f0[:-nb] = f0[nb:].copy()
        f0[-nb:] = 0.0
        if not analyse:
            return f0
        write_frames = self.write_frames
        seg_frames = self.segment_frames(len(history), sample_rate, method)
        seg = history[len(history) - seg_frames * self.hop :]
        raw = np.asarray(self.estimator(seg, sample_rate, self.hop, method, threshold), dtype=np.float32)[:seg_frames]
        est = np.zeros(seg_frames, dtype=np.float32)  # frame i at sample i * hop: left-aligned
        est[: len(raw)] = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
        f0[len(f0) - write_frames :] = est[seg_frames - write_frames :]
        return f0

    @property
    def write_frames(self) -> int:
        """Frames each block writes: the new block's and the re-estimated margin before it."""
        return min(len(self.f0), self.block_frames + PITCH_MARGIN_FRAMES)

    def segment_frames(self, history_samples: int, sample_rate: int, method: str) -> int:
        """Frames the estimator is given each block (the same every block of a stream)."""
        return min(history_samples // self.hop, self.write_frames + context_frames(method, sample_rate, self.hop))

    @staticmethod
    def history_samples(window: int, block: int, hop: int, sample_rate: int) -> int:
        """Audio the pipeline must keep (>= window) so every estimator gets its context."""
        longest = max(max(PITCH_CONTEXT_SECONDS.values()), DEFAULT_PITCH_CONTEXT_SECONDS)
        need = block + PITCH_MARGIN_FRAMES * hop + math.ceil(longest * sample_rate / hop) * hop
        return max(window, need)

    def reset(self) -> None:
        self.f0[:] = 0.0

"""Silence slicing for offline rendering (the meaning of so-vits-svc's slicer, our own code).

A file is cut into alternating *voiced* and *silent* chunks before conversion; silent chunks are
written as silence and never reach the voice. Decisions are made on a frame RMS envelope::

    samples |--hop--|--hop--|--hop--| ...      frame i is centred on sample i * hop
    rms[i] = sqrt(mean(x[i*hop - win//2 : i*hop - win//2 + win] ** 2)), zero outside the file

A run of frames below ``threshold_db`` becomes a cut when it lasts at least ``min_interval_ms``
and the clip before it is at least ``min_length_ms`` long (a leading silence is cut when it is
longer than ``max_sil_kept_ms``). Up to ``max_sil_kept_ms`` of silence stays attached to the
voiced chunks on either side; cut points sit at the quietest frame. Because only the envelope is
needed, a long file can be sliced from a streaming reader (:func:`rms_envelope`) in bounded memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rtsvc.errors import ParameterError

#: so-vits-svc's inference defaults (``slicer.cut``): threshold -40 dB, clips of at least 5 s,
#: silences of at least 300 ms, 20 ms hop, at most 5 s of silence kept beside a clip.
DEFAULT_THRESHOLD_DB = -40.0
DEFAULT_MIN_LENGTH_MS = 5000
DEFAULT_MIN_INTERVAL_MS = 300
DEFAULT_HOP_MS = 20
DEFAULT_MAX_SIL_KEPT_MS = 5000
#: Frames of envelope computed per block when reading a long file.
ENVELOPE_BLOCK_FRAMES = 512


@dataclass(frozen=True)
class SlicerConfig:
    """Slicer settings (milliseconds and dB). Raises ParameterError for inconsistent values."""

    threshold_db: float = DEFAULT_THRESHOLD_DB
    min_length_ms: int = DEFAULT_MIN_LENGTH_MS
    min_interval_ms: int = DEFAULT_MIN_INTERVAL_MS
    hop_ms: int = DEFAULT_HOP_MS
    max_sil_kept_ms: int = DEFAULT_MAX_SIL_KEPT_MS

    def __post_init__(self) -> None:
        if not np.isfinite(self.threshold_db) or not -120.0 <= self.threshold_db <= 0.0:
            raise ParameterError(f"slice threshold must be in [-120, 0] dB, got {self.threshold_db!r}.")
        if not self.min_length_ms >= self.min_interval_ms >= self.hop_ms > 0:
            raise ParameterError("slicer needs min_length_ms >= min_interval_ms >= hop_ms > 0, "
                                 f"got {self.min_length_ms}, {self.min_interval_ms}, {self.hop_ms}.")
        if self.max_sil_kept_ms < self.hop_ms:
            raise ParameterError(f"slicer needs max_sil_kept_ms >= hop_ms, got {self.max_sil_kept_ms} < {self.hop_ms}.")


@dataclass(frozen=True)
class Chunk:
    """A span of the file: samples [start, end) at the slicing rate; ``silent`` = keep as silence."""

    start: int
    end: int
    silent: bool

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class FrameGrid:
    """The slicer's frame grid at one sample rate (all in samples or frames)."""

    hop: int
    win: int
    min_length: int
    min_interval: int
    max_sil_kept: int
    threshold: float

    @classmethod
    def for_rate(cls, sample_rate: int, config: SlicerConfig) -> "FrameGrid":
        hop = max(1, round(sample_rate * config.hop_ms / 1000))
        interval_samples = sample_rate * config.min_interval_ms / 1000
        return cls(
            hop=hop,
            win=max(1, min(round(interval_samples), 4 * hop)),
            min_length=round(sample_rate * config.min_length_ms / 1000 / hop),
            min_interval=round(interval_samples / hop),
            max_sil_kept=round(sample_rate * config.max_sil_kept_ms / 1000 / hop),
            threshold=float(10.0 ** (config.threshold_db / 20.0)),
        )


def frame_count(n_samples: int, grid: FrameGrid) -> int:
    """Frames of the envelope for ``n_samples`` samples (centred frames, as librosa counts them)."""
    return 1 + (n_samples + 2 * (grid.win // 2) - grid.win) // grid.hop


def rms_envelope(read: Callable[[int, int], np.ndarray], n_samples: int, grid: FrameGrid) -> np.ndarray:
    """Frame RMS of a signal read piecewise. read(start, stop) -> (stop - start,) float32 samples
    (zeros outside [0, n_samples)). Returns (frame_count,) float32; memory is one block."""
    n_frames = frame_count(n_samples, grid)
    out = np.empty(n_frames, dtype=np.float32)
    half = grid.win // 2
    for f0 in range(0, n_frames, ENVELOPE_BLOCK_FRAMES):
        f1 = min(n_frames, f0 + ENVELOPE_BLOCK_FRAMES)
        start = f0 * grid.hop - half
        stop = (f1 - 1) * grid.hop - half + grid.win
        x = np.asarray(read(start, stop), dtype=np.float64)
        sq = np.concatenate([[0.0], np.cumsum(x * x)])
        offs = np.arange(f1 - f0) * grid.hop
        out[f0:f1] = np.sqrt(np.maximum(sq[offs + grid.win] - sq[offs], 0.0) / grid.win)
    return out


def padded_reader(audio: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """read(start, stop) over an in-memory array, zero outside it."""
    n = len(audio)

    def read(start: int, stop: int) -> np.ndarray:
        out = np.zeros(stop - start, dtype=np.float32)
        lo, hi = max(start, 0), min(stop, n)
        if hi > lo:
            out[lo - start : hi - start] = audio[lo:hi]
        return out

    return read


def _argmin(rms: np.ndarray, lo: int, hi: int) -> int:
    """Index of the quietest frame in rms[lo:hi] (first one on ties)."""
    return int(np.argmin(rms[lo:hi])) + lo


def silence_spans(rms: np.ndarray, grid: FrameGrid) -> list[tuple[int, int]]:
    """Silent frame spans [a, b) to cut out, in order (b may be len(rms) + 1 for trailing silence)."""
    spans: list[tuple[int, int]] = []
    quiet_from: int | None = None
    clip_start = 0
    keep = grid.max_sil_kept
    for i, level in enumerate(rms):
        if level < grid.threshold:
            if quiet_from is None:
                quiet_from = i
            continue
        if quiet_from is None:
            continue
        leading = quiet_from == 0 and i > keep
        long_enough = i - quiet_from >= grid.min_interval and i - clip_start >= grid.min_length
        if not leading and not long_enough:
            quiet_from = None
            continue
        gap = i - quiet_from
        if gap <= keep:
            pos = _argmin(rms, quiet_from, i + 1)
            spans.append((0, pos) if quiet_from == 0 else (pos, pos))
            clip_start = pos
        elif gap <= 2 * keep:
            pos = _argmin(rms, i - keep, quiet_from + keep + 1)
            left = _argmin(rms, quiet_from, quiet_from + keep + 1)
            right = _argmin(rms, i - keep, i + 1)
            if quiet_from == 0:
                spans.append((0, right))
                clip_start = right
            else:
                spans.append((min(left, pos), max(right, pos)))
                clip_start = max(right, pos)
        else:
            left = _argmin(rms, quiet_from, quiet_from + keep + 1)
            right = _argmin(rms, i - keep, i + 1)
            spans.append((0, right) if quiet_from == 0 else (left, right))
            clip_start = right
        quiet_from = None
    total = len(rms)
    if quiet_from is not None and total - quiet_from >= grid.min_interval:
        end = min(total, quiet_from + keep)
        spans.append((_argmin(rms, quiet_from, end + 1), total + 1))
    return spans


def chunks_from_envelope(rms: np.ndarray, n_samples: int, grid: FrameGrid) -> list[Chunk]:
    """Alternating voiced/silent chunks covering [0, n_samples); empty chunks are dropped."""
    if n_samples <= grid.min_length:
        return [Chunk(0, n_samples, False)] if n_samples else []
    spans = silence_spans(rms, grid)
    if not spans:
        return [Chunk(0, n_samples, False)]
    hop = grid.hop
    raw: list[Chunk] = []
    if spans[0][0]:
        raw.append(Chunk(0, min(n_samples, spans[0][0] * hop), False))
    for k, (a, b) in enumerate(spans):
        if k:
            raw.append(Chunk(spans[k - 1][1] * hop, min(n_samples, a * hop), False))
        raw.append(Chunk(a * hop, min(n_samples, b * hop), True))
    if spans[-1][1] * hop < n_samples:
        raw.append(Chunk(spans[-1][1] * hop, n_samples, False))
    return [c for c in raw if c.end > c.start]


def slice_audio(audio: np.ndarray, sample_rate: int, config: SlicerConfig | None = None) -> list[Chunk]:
    """Slice an in-memory mono signal. audio: (n,) float32 at ``sample_rate``."""
    grid = FrameGrid.for_rate(sample_rate, config or SlicerConfig())
    rms = rms_envelope(padded_reader(np.asarray(audio, dtype=np.float32)), len(audio), grid)
    return chunks_from_envelope(rms, len(audio), grid)

"""Loudness envelope mix (so-vits-svc's ``loudness_envelope_adjustment``, ``-lea``).

The converted slice keeps a mix of its own loudness envelope and the input's::

    env(x)[k] = RMS of x over a 1 s window centred on sample k * sr/2 (zero outside the slice),
                linearly interpolated to one value per output sample
    y'        = y * env(x) ** (1 - rate) * max(env(y), 1e-6) ** (rate - 1)

rate = 1 leaves y untouched (the model's envelope); rate = 0 gives y the input's envelope.
"""

from __future__ import annotations

import numpy as np

#: Floor of the output envelope (avoids dividing by silence).
ENVELOPE_FLOOR = 1e-6


def half_second_rms(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS every half second with a one-second centred window. x: (n,) -> (1 + n // hop,) float64."""
    hop = sample_rate // 2
    win = hop * 2
    x = np.asarray(x, dtype=np.float64)
    padded = np.concatenate([np.zeros(win // 2), x, np.zeros(win // 2)])
    n_frames = 1 + (len(padded) - win) // hop
    sq = np.concatenate([[0.0], np.cumsum(padded * padded)])
    starts = np.arange(n_frames) * hop
    return np.sqrt(np.maximum(sq[starts + win] - sq[starts], 0.0) / win)


def stretch_linear(values: np.ndarray, size: int) -> np.ndarray:
    """Linear interpolation of (m,) values to (size,) with half-sample centres (align_corners=False)."""
    m = len(values)
    if m == 1:
        return np.full(size, values[0], dtype=np.float64)
    pos = np.clip((np.arange(size) + 0.5) * (m / size) - 0.5, 0.0, None)
    lo = np.minimum(np.floor(pos).astype(np.int64), m - 1)
    hi = np.minimum(lo + 1, m - 1)
    w = pos - lo
    return values[lo] * (1.0 - w) + values[hi] * w


def mix_loudness_envelope(source: np.ndarray, converted: np.ndarray, sample_rate: int, rate: float) -> np.ndarray:
    """Apply the envelope mix. source, converted: (n,) float32 at ``sample_rate`` (the same span,
    padding included). rate in [0, 1]. Returns (len(converted),) float32."""
    y = np.asarray(converted, dtype=np.float32)
    if rate >= 1.0 or len(y) == 0:
        return y
    env_in = stretch_linear(half_second_rms(source, sample_rate), len(y))
    env_out = np.maximum(stretch_linear(half_second_rms(y, sample_rate), len(y)), ENVELOPE_FLOOR)
    gain = np.power(env_in, 1.0 - rate) * np.power(env_out, rate - 1.0)
    return (y * gain).astype(np.float32)

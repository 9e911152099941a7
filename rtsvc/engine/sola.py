"""SOLA: join consecutive converted blocks without clicks.

Each block the voice returns ``block + search + crossfade`` samples ``y``. The previous block left
a ``crossfade``-sample tail. SOLA picks the offset ``k`` in ``[0, search]`` where ``y[k:k+C]``
best matches that tail (normalised cross-correlation), then::

    out  = fade(tail, y[k : k+C]) ++ y[k+C : k+B]     (B samples, emitted now)
    tail = y[k+B : k+B+C]                              (kept for the next block)

The fade is equal-power *for the measured correlation* rho of the two aligned segments:
gains g_out = cos(phi) / n, g_in = sin(phi) / n with n = sqrt(1 + rho * sin(2 phi)), so that
g_out^2 + g_in^2 + 2 rho g_out g_in = 1 at every phi. For uncorrelated signals (rho = 0, e.g. voice
-> silence) this is the classic cos/sin equal-power fade; for identical aligned signals (rho = 1)
it becomes an equal-gain fade (g_out + g_in = 1), which adds no level bump at the seam.

With a voice that is consistent across blocks (the same input gives the same output at the same
time) the best offset is 0, so the emitted stream equals the offline conversion delayed by the
constant algorithmic latency. Voices whose waveform phase differs between windows move ``k``
inside ``[0, search]``; the stream then repeats or skips at most ``search`` samples at a seam,
hidden inside the crossfade.
"""

from __future__ import annotations

import numpy as np

#: Below this tail energy (sum of squares) there is nothing to align to: offset 0.
SILENT_TAIL_ENERGY = 1e-8


def equal_power_curves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(fade_out, fade_in), each (n,) float32, with fade_out**2 + fade_in**2 == 1."""
    if n <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    phase = (np.arange(n, dtype=np.float64) + 0.5) / n * (np.pi / 2)
    return np.cos(phase).astype(np.float32), np.sin(phase).astype(np.float32)


def best_offset(tail: np.ndarray, candidate: np.ndarray, search: int) -> tuple[int, float]:
    """Offset k in [0, search] maximising the normalised cross-correlation of
    ``candidate[k : k+len(tail)]`` with ``tail``; returns (k, correlation at k in [-1, 1]).

    candidate: (>= len(tail) + search,) float32. A silent tail or segment gives (0, 0.0).
    """
    c = len(tail)
    if c == 0:
        return 0, 0.0
    tail_energy = float(np.dot(tail, tail))
    if tail_energy < SILENT_TAIL_ENERGY:
        return 0, 0.0
    seg = candidate[: c + max(search, 0)].astype(np.float64)
    num = np.correlate(seg, tail.astype(np.float64), mode="valid")  # (search + 1,)
    sq = np.concatenate(([0.0], np.cumsum(seg * seg)))
    seg_energy = np.maximum(sq[c:] - sq[: len(sq) - c], 0.0)
    ncc = np.where(seg_energy > SILENT_TAIL_ENERGY, num / (np.sqrt(seg_energy * tail_energy) + 1e-12), 0.0)
    k = int(np.argmax(ncc)) if search > 0 else 0
    return k, float(np.clip(ncc[k], -1.0, 1.0))


class SolaJoiner:
    """Stateful SOLA joiner for blocks of ``block`` samples.

    block, crossfade, search: sizes in samples at the voice rate (crossfade <= block).
    The first block is joined against a silent tail (a fade-in from silence).
    """

    def __init__(self, block: int, crossfade: int, search: int) -> None:
        if not 0 <= crossfade <= block:
            raise ValueError(f"crossfade ({crossfade}) must be within [0, block={block}]")
        self.block = int(block)
        self.crossfade = int(crossfade)
        self.search = int(search)
        self.tail = np.zeros(self.crossfade, dtype=np.float32)
        self.fade_out, self.fade_in = equal_power_curves(self.crossfade)
        self.cross = 2.0 * self.fade_out * self.fade_in  # sin(2 phi)
        self.last_offset = 0

    @property
    def needed(self) -> int:
        """Samples the voice must return per block: block + search + crossfade."""
        return self.block + self.search + self.crossfade

    def join(self, y: np.ndarray, align: bool = True) -> np.ndarray:
        """Join one block. y: (needed,) float32. Returns (block,) float32.

        align=False forces offset 0 (used when switching source, e.g. voice -> dry fallback,
        where matching the waveform makes no sense; the crossfade still hides the seam).
        """
        if len(y) != self.needed:
            raise ValueError(f"SOLA expects {self.needed} samples, got {len(y)}")
        b, c = self.block, self.crossfade
        k, rho = best_offset(self.tail, y, self.search if align else 0)
        self.last_offset = k
        out = np.empty(b, dtype=np.float32)
        norm = np.sqrt(1.0 + max(rho, 0.0) * self.cross).astype(np.float32)
        out[:c] = (self.tail * self.fade_out + y[k : k + c] * self.fade_in) / norm
        out[c:] = y[k + c : k + b]
        self.tail = y[k + b : k + b + c].astype(np.float32, copy=True)
        return out

    def reset(self) -> None:
        """Forget the tail (next block fades in from silence)."""
        self.tail[:] = 0.0
        self.last_offset = 0

"""Worker statistics: per-block times, levels, event counters (worker-written, read anywhere)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Blocks kept for the worker-time percentiles.
TIME_HISTORY = 512
#: Level reported for digital silence (dBFS).
SILENCE_DB = -120.0


def dbfs(peak: float) -> float:
    """Peak amplitude -> dBFS (SILENCE_DB for silence)."""
    return SILENCE_DB if peak <= 10 ** (SILENCE_DB / 20) else max(SILENCE_DB, 20.0 * math.log10(peak))


def db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


class BlockTimes:
    """Ring of the last TIME_HISTORY worker times (seconds)."""

    def __init__(self) -> None:
        self.times = np.zeros(TIME_HISTORY, dtype=np.float64)
        self.count = 0
        self.worst = 0.0

    def add(self, seconds: float) -> None:
        self.times[self.count % TIME_HISTORY] = seconds
        self.count += 1
        self.worst = max(self.worst, seconds)

    def recent_mean(self, n: int) -> float:
        """Mean of the last ``n`` times (fewer before ``n`` blocks; 0 before the first)."""
        k = min(n, self.count, TIME_HISTORY)
        if k == 0:
            return 0.0
        end = self.count % TIME_HISTORY
        idx = np.arange(end - k, end) % TIME_HISTORY
        return float(self.times[idx].mean())

    def summary(self) -> tuple[float, float, float]:
        """(p50, p95, max over the history) in seconds; zeros before the first block."""
        n = min(self.count, TIME_HISTORY)
        if n == 0:
            return 0.0, 0.0, 0.0
        t = self.times[:n]
        return float(np.percentile(t, 50)), float(np.percentile(t, 95)), float(t.max())


@dataclass
class WorkerCounters:
    """Block-level events (written by the worker only).

    blocks: blocks produced. voice_blocks: blocks the voice converted. gated_blocks: blocks the
    noise gate silenced (no inference). fallback_blocks: blocks replaced by the fallback (dry or
    silence) because the worker was overloaded. late_blocks: blocks that reached the output
    after it had run dry (the output played silence while waiting for them). slow_blocks: blocks
    whose worker time exceeded the block duration. over_allowance_blocks: blocks whose worker time
    exceeded the processing allowance (``prefill_ms``): each could have been late had the output
    ring been at its low point; 0 over a long run means the allowance holds. dropped_blocks:
    input blocks thrown away to keep the input queue at most two blocks old. skipped_out / inserted_out: output samples the
    timeline keeper removed (after underflows) or inserted (after dropped input). queue_age_ms /
    queue_age_max_ms: input waiting (ring + resampled FIFO) when the last block started / at most.
    """

    blocks: int = 0
    voice_blocks: int = 0
    gated_blocks: int = 0
    fallback_blocks: int = 0
    late_blocks: int = 0
    slow_blocks: int = 0
    over_allowance_blocks: int = 0
    dropped_blocks: int = 0
    skipped_out: int = 0
    inserted_out: int = 0
    in_level_db: float = SILENCE_DB
    out_level_db: float = SILENCE_DB
    queue_age_ms: float = 0.0
    queue_age_max_ms: float = 0.0
    sola_offset_ms: float = 0.0

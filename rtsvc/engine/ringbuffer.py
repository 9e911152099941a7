"""Lock-free single-producer / single-consumer ring buffer of float32 samples.

The audio callback and the worker thread exchange audio through these buffers without locks:

    data      [.........................................]  capacity samples, preallocated
    read_count ----^              write_count ----^        monotonic sample counters
               (owned by the reader)          (owned by the writer)

``write_count - read_count`` samples are readable, ``capacity - that`` are writable. Each counter
has exactly one writer (the producer bumps ``write_count`` after copying, the consumer bumps
``read_count`` after copying), so a reader of the other side's counter sees either the old or the
new value, both safe: the producer never overwrites unread samples, the consumer never reads
unwritten ones. Counters are Python ints (assignment is atomic under the GIL and they never wrap).

Nothing here allocates sample memory after construction; copies go through ``np.copyto`` into
views of the preallocated array.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """SPSC ring of mono float32 samples.

    capacity: samples the ring holds (fixed at construction).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"ring capacity must be >= 1 sample, got {capacity}")
        self.capacity = int(capacity)
        self.data = np.zeros(self.capacity, dtype=np.float32)
        self.write_count = 0
        self.read_count = 0

    # -- either side ------------------------------------------------------------------------
    def readable(self) -> int:
        """Samples written and not yet read."""
        return self.write_count - self.read_count

    def writable(self) -> int:
        """Samples that can be written without overwriting unread ones."""
        return self.capacity - (self.write_count - self.read_count)

    # -- producer side ----------------------------------------------------------------------
    def write(self, samples: np.ndarray) -> int:
        """Copy as many of ``samples`` ((n,) float32) as fit; returns how many were written.

        Only the producer calls this. The rest (``n - written``) is the caller's overflow.
        """
        n = min(len(samples), self.writable())
        if n <= 0:
            return 0
        start = self.write_count % self.capacity
        first = min(n, self.capacity - start)
        np.copyto(self.data[start : start + first], samples[:first])
        if n > first:
            np.copyto(self.data[: n - first], samples[first:n])
        self.write_count += n
        return n

    def write_zeros(self, n: int) -> int:
        """Write up to ``n`` zero samples (pre-fill, gaps); returns how many were written."""
        n = min(int(n), self.writable())
        if n <= 0:
            return 0
        start = self.write_count % self.capacity
        first = min(n, self.capacity - start)
        self.data[start : start + first] = 0.0
        if n > first:
            self.data[: n - first] = 0.0
        self.write_count += n
        return n

    # -- consumer side ----------------------------------------------------------------------
    def read_into(self, out: np.ndarray) -> int:
        """Copy up to ``len(out)`` readable samples into ``out``; returns how many were read.

        Only the consumer calls this. ``out[read:]`` is left untouched (the caller fills the
        shortfall, e.g. with silence, and counts an underflow).
        """
        n = min(len(out), self.readable())
        if n <= 0:
            return 0
        start = self.read_count % self.capacity
        first = min(n, self.capacity - start)
        np.copyto(out[:first], self.data[start : start + first])
        if n > first:
            np.copyto(out[first:n], self.data[: n - first])
        self.read_count += n
        return n

    def skip(self, n: int) -> int:
        """Discard up to ``n`` of the oldest readable samples (consumer only); returns how many."""
        n = min(int(n), self.readable())
        if n > 0:
            self.read_count += n
        return max(n, 0)

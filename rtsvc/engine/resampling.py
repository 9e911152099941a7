"""Stateful resampling with a small, fixed, known delay, and a sample FIFO for the worker.

One :class:`StreamResampler` per direction, created once per stream configuration (never per
block). It is a polyphase FIR resampler of our own (a Kaiser-windowed sinc designed once with
scipy; numpy per block) instead of soxr's stream resampler, which releases output in bursts (up
to ~10 ms look-ahead at 48 <-> 44.1 kHz, ~18 ms for 48 kHz -> 16 kHz)::

    rate_in / rate_out = down / up (reduced fraction); prototype filter h: (up * K + 1,) taps
    y[j] = sum_k x[i0(j) - k] * h[r(j) + k * up],  i0(j) = (j * down + c) // up,
           r(j) = (j * down + c) % up,  c = up * K / 2 (the filter centre)

Output sample j is the band-limited input at time j / rate_out exactly (the filter is
symmetric and centred there), so positions never drift; it is released as soon as input sample
i0(j) has arrived, i.e. K / 2 input samples late (0.3 - 1.4 ms at the rates used live). That
release delay is what :func:`stream_lag` reports and the output prefill absorbs.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.signal import firwin, kaiser_beta, kaiserord

#: Stopband attenuation of the anti-alias / anti-image filter, dB.
RESAMPLE_STOPBAND_DB = 70.0
#: Transition band width as a fraction of the lower rate's Nyquist frequency (flat to ~80 % of it:
#: ~17.6 kHz at 44.1 kHz, ~6.4 kHz at 16 kHz). The stopband starts at the lower Nyquist frequency.
RESAMPLE_TRANSITION_FRACTION = 0.2
#: Output samples computed per vectorised step (bounds the phase-row table: (up + this) rows).
OUTPUT_CHUNK = 1024


@lru_cache(maxsize=16)
def _design(rate_in: int, rate_out: int) -> tuple[int, int, int, np.ndarray]:
    """(up, down, K, phase_taps) for rate_in -> rate_out.

    phase_taps: (up, K + 1) float32; row r holds h[r + k * up] for k = 0..K (zero past the end),
    so output j uses row r(j) against x[i0(j)], x[i0(j) - 1], ..., x[i0(j) - K].
    """
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    nyq_low = 0.5 * min(rate_in, rate_out)
    width_hz = RESAMPLE_TRANSITION_FRACTION * nyq_low
    taps_in, _ = kaiserord(RESAMPLE_STOPBAND_DB, width_hz / (0.5 * rate_in))  # taps at the input rate
    k = max(2, 2 * math.ceil(taps_in / 2))  # even: the centre falls on an upsampled tap
    length = up * k + 1
    cutoff_hz = nyq_low - 0.5 * width_hz
    h = firwin(length, cutoff_hz, window=("kaiser", kaiser_beta(RESAMPLE_STOPBAND_DB)), fs=rate_in * up) * up
    padded = np.zeros(up * (k + 1), dtype=np.float64)
    padded[:length] = h
    phase_taps = padded.reshape(k + 1, up).T.astype(np.float32)  # [r, k] = h[r + k * up]
    return up, down, k, np.ascontiguousarray(phase_taps)


class StreamResampler:
    """rate_in -> rate_out, stateful across calls; a copy-through when the rates are equal.

    process(x) returns every output sample whose input support has arrived (see module doc).
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        self.rate_in = int(rate_in)
        self.rate_out = int(rate_out)
        if self.rate_in <= 0 or self.rate_out <= 0:
            raise ValueError(f"rates must be positive, got {rate_in} -> {rate_out}")
        self.passthrough = self.rate_in == self.rate_out
        if self.passthrough:
            return
        self.up, self.down, self.taps, self._phase_taps = _design(self.rate_in, self.rate_out)
        self._centre = self.up * self.taps // 2
        # r(j) depends on j mod up only: row m of this table is phase_taps[r(m)] reversed, so the
        # taps of outputs j .. j + n - 1 (n <= OUTPUT_CHUNK) are rows j % up .. j % up + n - 1 (a view).
        m = np.arange(self.up + OUTPUT_CHUNK, dtype=np.int64)
        self._reversed_rows = np.ascontiguousarray(self._phase_taps[(m * self.down + self._centre) % self.up, ::-1])
        # history: input samples from absolute index self._hist_start on (zeros before the stream)
        self._hist = np.zeros(self.taps + 1, dtype=np.float32)
        self._hist_start = -(self.taps + 1)
        self._total_in = 0
        self._next_out = 0  # index of the next output sample to release

    @property
    def delay_samples_in(self) -> float:
        """Release delay in input samples (K / 2): output j needs input up to j*rate_in/rate_out + K/2."""
        return 0.0 if self.passthrough else self.taps / 2

    def process(self, x: np.ndarray) -> np.ndarray:
        """x: (n,) float32 at rate_in -> (about n * rate_out / rate_in,) float32 at rate_out."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.passthrough:
            return x.copy()
        self._hist = np.concatenate((self._hist, x))
        self._total_in += len(x)
        # last j with i0(j) <= total_in - 1
        last = (self._total_in * self.up - 1 - self._centre) // self.down
        if last < self._next_out:
            return np.zeros(0, dtype=np.float32)
        # windows[q] = hist[q : q + K + 1] (a strided view): output j reads x[i0(j) - K .. i0(j)],
        # row i0(j) - K - hist_start, against its phase's taps in reverse order.
        hist = self._hist
        k = self.taps
        windows = np.ndarray((len(hist) - k, k + 1), np.float32, hist, 0, (hist.itemsize, hist.itemsize))
        y = np.empty(last + 1 - self._next_out, dtype=np.float32)
        for start in range(self._next_out, last + 1, OUTPUT_CHUNK):
            js = np.arange(start, min(start + OUTPUT_CHUNK, last + 1), dtype=np.int64)
            first = (js * self.down + self._centre) // self.up - k - self._hist_start
            phase = start % self.up
            y[start - self._next_out : start - self._next_out + len(js)] = np.einsum(
                "nk,nk->n", self._reversed_rows[phase : phase + len(js)], windows.take(first, axis=0))
        self._next_out = last + 1
        keep_from = (self._next_out * self.down + self._centre) // self.up - self.taps  # oldest sample still needed
        drop = keep_from - self._hist_start
        if drop > 0:
            self._hist = self._hist[drop:]
            self._hist_start += drop
        return y


def stream_lag(rate_in: int, rate_out: int, chunk: int, chunks: int = 64) -> float:
    """Worst release delay of a stream resampler fed ``chunk`` samples at a time, in seconds: how
    far the output it has released may trail the input it was given (K / 2 input samples plus up
    to one output sample of rounding). Measured by running a scratch stream on silence;
    deterministic for given rates and chunk size."""
    if rate_in == rate_out or chunk <= 0:
        return 0.0
    rs = StreamResampler(rate_in, rate_out)
    zeros = np.zeros(chunk, dtype=np.float32)
    released = 0
    worst = 0.0
    for i in range(1, chunks + 1):
        released += len(rs.process(zeros))
        worst = max(worst, i * chunk * rate_out / rate_in - released)
    return worst / rate_out


class SampleFifo:
    """Growable float32 FIFO (worker-side only; not for the audio thread)."""

    def __init__(self, initial: int = 4096) -> None:
        self._buf = np.zeros(max(16, initial), dtype=np.float32)
        self._start = 0
        self._end = 0
        self.total_in = 0  # samples ever pushed

    def __len__(self) -> int:
        return self._end - self._start

    def push(self, x: np.ndarray) -> None:
        n = len(x)
        if self._end + n > len(self._buf):
            live = self._buf[self._start : self._end].copy()
            size = max(len(self._buf), 2 * (len(live) + n))
            self._buf = np.zeros(size, dtype=np.float32)
            self._buf[: len(live)] = live
            self._start, self._end = 0, len(live)
        self._buf[self._end : self._end + n] = x
        self._end += n
        self.total_in += n

    def peek(self, n: int) -> np.ndarray:
        """View of the oldest ``n`` samples (valid until the next push/pop)."""
        return self._buf[self._start : self._start + min(n, len(self))]

    def pop(self, n: int) -> np.ndarray:
        """Remove and return the oldest ``n`` samples (n <= len(self))."""
        if n > len(self):
            raise ValueError(f"FIFO holds {len(self)} samples, {n} requested")
        out = self._buf[self._start : self._start + n].copy()
        self._start += n
        if self._start == self._end:
            self._start = self._end = 0
        return out

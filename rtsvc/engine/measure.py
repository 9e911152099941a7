"""Measuring the real latency: a chirp through the engine with the output routed to the input.

With the engine in bypass (the dry input goes through the same path and latency as the voice)
and the output looped back to the input, a chirp mixed into the output comes back twice::

    output timeline  P (chirp written)
    input timeline        A1 = P + device round trip       (first arrival)
                               A2 = A1 + chain latency     (bypass re-emitted it, it came back)

chain latency (A2 - A1) is what a listener hears from microphone to speaker: algorithmic +
device. The device round trip (A1 - P) assumes the input and output streams started together
(true for a duplex stream; approximate for two streams). Output gain is lowered so the echoes
die out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

#: Chirp used as the probe: seconds, start and end frequency (Hz), peak level.
CHIRP_SECONDS = 0.08
CHIRP_BAND = (300.0, 6000.0)
CHIRP_LEVEL = 0.5
#: Output gain during the measurement (each loop loses this much).
LOOP_GAIN_DB = -6.0
#: Correlation peaks below this fraction of the strongest are not arrivals.
ARRIVAL_THRESHOLD = 0.2
#: Two arrivals closer than this are one (the chirp's matched-filter main lobe is ~0.2 ms wide).
MIN_ARRIVAL_GAP_SECONDS = 0.005


def make_chirp(rate: int, seconds: float = CHIRP_SECONDS, band: tuple[float, float] = CHIRP_BAND) -> np.ndarray:
    """Hann-windowed linear chirp, (round(seconds * rate),) float32 peak CHIRP_LEVEL."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    f0, f1 = band
    phase = 2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / seconds * t * t)
    return (CHIRP_LEVEL * np.hanning(n) * np.sin(phase)).astype(np.float32)


def find_arrivals(recorded: np.ndarray, probe: np.ndarray, count: int = 2, min_gap: int | None = None) -> list[int]:
    """Sample indices in ``recorded`` where ``probe`` starts: the strongest ``count`` peaks of the
    matched filter at least ``min_gap`` samples apart (default: a tenth of the probe), in time order."""
    if len(recorded) < len(probe):
        return []
    corr = np.abs(fftconvolve(recorded, probe[::-1], mode="valid"))
    gap = min_gap or max(1, len(probe) // 10)
    found: list[int] = []
    peak = float(corr.max()) if len(corr) else 0.0
    work = corr.copy()
    while len(found) < count and peak > 0:
        i = int(np.argmax(work))
        if work[i] < ARRIVAL_THRESHOLD * peak:
            break
        found.append(i)
        work[max(0, i - gap) : i + gap] = 0.0
    return sorted(found)


@dataclass
class LatencyMeasurement:
    """Measured and reported latencies (ms). chain_ms: input sound -> output sound through the
    engine; device_round_trip_ms: output -> input through the devices and the loopback."""

    chain_ms: float | None
    device_round_trip_ms: float | None
    reported_algorithmic_ms: float
    reported_device_ms: float

    @property
    def reported_chain_ms(self) -> float:
        return self.reported_algorithmic_ms + self.reported_device_ms


def analyse(worker: "object", probe: np.ndarray, input_rate: int, output_rate: int,
            algorithmic_ms: float, device_ms: float) -> LatencyMeasurement:
    """Find the probe in the worker's input capture (armed with :func:`arm_probe`; see
    :meth:`rtsvc.engine.controller.Controller.measure_latency`)."""
    captured = np.concatenate(worker.capture) if worker.capture else np.zeros(0, np.float32)
    probe_in = probe if input_rate == output_rate else _resample(probe, output_rate, input_rate)
    arrivals = find_arrivals(captured, probe_in, count=2, min_gap=round(MIN_ARRIVAL_GAP_SECONDS * input_rate))
    chain = rt = None
    if arrivals:
        a1 = worker.capture_start + arrivals[0]
        if worker.probe_pos is not None:
            rt = 1000.0 * (a1 / input_rate - worker.probe_pos / output_rate)
        if len(arrivals) > 1:
            chain = 1000.0 * (arrivals[1] - arrivals[0]) / input_rate
    return LatencyMeasurement(chain, rt, algorithmic_ms, device_ms)


def _resample(x: np.ndarray, a: int, b: int) -> np.ndarray:
    from rtsvc.audio_io import resample

    return resample(x, a, b)


def arm_probe(worker: "object", output_rate: int) -> np.ndarray:
    """Start capturing the worker's input and mix a chirp into its next output; returns the chirp."""
    probe = make_chirp(output_rate)
    worker.capture = []
    worker.probe_pos = None
    worker.probe = probe
    return probe

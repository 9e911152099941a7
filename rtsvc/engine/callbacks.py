"""The audio callbacks: copy between the device and preallocated ring buffers, bump counters.

This is all that runs on the audio thread. No torch, no allocation of sample memory, no logging,
no locks: each callback copies into or out of a :class:`RingBuffer` and updates integer counters
that only it writes (single writer per counter), so the worker and the controller can read them
at any time without coordination.

Counters (all monotonic ints):

    callbacks           callbacks run on this side
    overflow_samples    input samples lost because the input ring was full
    underflow_samples   output samples played as silence because the output ring was empty;
                        the worker later skips the same number of samples so that the output
                        timeline (and therefore the latency) never shifts
    underflow_events    callbacks that hit an empty ring (after priming)
    xruns               callbacks whose PortAudio status flags reported an over/underflow,
                        not counting the first PRIMING_CALLBACKS callbacks of a stream
                        (PortAudio flags the priming of a fresh stream; that is not an xrun)
    worst_ns            longest callback body seen, nanoseconds
"""

from __future__ import annotations

import time

import numpy as np

from rtsvc.engine.ringbuffer import RingBuffer

#: Callbacks at the start of a stream whose status flags are priming, not xruns.
PRIMING_CALLBACKS = 8


class SideCounters:
    """Counters of one callback side (input, output or monitor); written only by that callback."""

    __slots__ = ("callbacks", "overflow_samples", "underflow_samples", "underflow_events", "xruns", "worst_ns")

    def __init__(self) -> None:
        self.callbacks = 0
        self.overflow_samples = 0
        self.underflow_samples = 0
        self.underflow_events = 0
        self.xruns = 0
        self.worst_ns = 0


class AudioCallbacks:
    """Callbacks for sounddevice (or the virtual-clock driver) bound to the engine's rings.

    input_ring: device-rate samples from the microphone (callback writes, worker reads).
    output_ring: device-rate samples to the output device (worker writes, callback reads).
    monitor_ring: device-rate samples to the monitor device, or None.

    The first input channel is used; output and monitor write the same sample to every channel.
    """

    def __init__(self, input_ring: RingBuffer, output_ring: RingBuffer, monitor_ring: RingBuffer | None = None) -> None:
        self.input_ring = input_ring
        self.output_ring = output_ring
        self.monitor_ring = monitor_ring
        self.input = SideCounters()
        self.output = SideCounters()
        self.monitor = SideCounters()

    # -- input ------------------------------------------------------------------------------
    def input_callback(self, indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        """sounddevice InputStream callback. indata: (frames, channels) float32."""
        t0 = time.perf_counter_ns()
        c = self.input
        if status and c.callbacks >= PRIMING_CALLBACKS:
            c.xruns += 1
        written = self.input_ring.write(indata[:frames, 0])
        if written < frames:
            c.overflow_samples += frames - written
        c.callbacks += 1
        dt = time.perf_counter_ns() - t0
        if dt > c.worst_ns:
            c.worst_ns = dt

    # -- output -----------------------------------------------------------------------------
    def _play(self, ring: RingBuffer, c: SideCounters, outdata: np.ndarray, frames: int, status: object) -> None:
        t0 = time.perf_counter_ns()
        priming = c.callbacks < PRIMING_CALLBACKS
        if status and not priming:
            c.xruns += 1
        first = outdata[:frames, 0]
        got = ring.read_into(first)
        if got < frames:
            first[got:] = 0.0
            c.underflow_samples += frames - got
            c.underflow_events += 1
        if outdata.shape[1] > 1:
            outdata[:frames, 1:] = outdata[:frames, :1]
        c.callbacks += 1
        dt = time.perf_counter_ns() - t0
        if dt > c.worst_ns:
            c.worst_ns = dt

    def output_callback(self, outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        """sounddevice OutputStream callback. outdata: (frames, channels) float32."""
        self._play(self.output_ring, self.output, outdata, frames, status)

    def monitor_callback(self, outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        """sounddevice OutputStream callback for the monitor device."""
        if self.monitor_ring is None:
            outdata.fill(0.0)
            return
        self._play(self.monitor_ring, self.monitor, outdata, frames, status)

    def duplex_callback(self, indata: np.ndarray, outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        """sounddevice Stream callback (input and output on one device)."""
        self.input_callback(indata, frames, time_info, status)
        self.output_callback(outdata, frames, time_info, None)  # one status, counted once

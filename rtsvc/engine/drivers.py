"""Drivers: what clocks the engine. A driver opens streams and calls the audio callbacks.

* :class:`VirtualClockDriver` runs the same engine over an array with no sound card: for every
  period it calls the input callback with the next ``period`` samples, lets the worker run, then
  calls the output callback and keeps what it produced. ``realtime=False`` (default) steps the
  worker itself between the two callbacks, so results are deterministic and as fast as the CPU
  allows; ``realtime=True`` paces the callbacks by the wall clock from a clock thread while the
  worker runs in its own thread, exactly as with a sound card (used by the overload test).
* :class:`rtsvc.engine.sd_driver.SoundDeviceDriver` opens PortAudio streams via sounddevice.

The controller talks to drivers only through :class:`Driver`.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import numpy as np

from rtsvc.engine.callbacks import AudioCallbacks
from rtsvc.engine.params import LiveParams

#: Default callback period of the virtual driver (frames).
VIRTUAL_PERIOD = 256


@dataclass(frozen=True)
class StreamConfig:
    """What a driver resolved from the parameters: rates (Hz), period (frames per callback, 0 if
    the host decides), device names shown to the user."""

    input_rate: int
    output_rate: int
    period: int
    input_name: str
    output_name: str
    monitor_name: str | None = None
    host_api: str = ""


class Driver(ABC):
    """A source of audio clock. Lifecycle: configure -> open -> start -> stop -> close.

    steps_worker: True if the driver calls the worker's step function itself (no worker thread).
    latency_in / latency_out: the open streams' reported latencies, seconds.
    """

    steps_worker: bool = False
    latency_in: float = 0.0
    latency_out: float = 0.0

    @abstractmethod
    def configure(self, params: LiveParams) -> StreamConfig:
        """Resolve devices and rates for ``params``; raise DeviceError if impossible."""

    @abstractmethod
    def open(self, config: StreamConfig, callbacks: AudioCallbacks, step: Callable[[], int]) -> None:
        """Create the streams (not yet running). step: the worker's process_available."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    def close(self) -> None:
        """Release the streams (after stop)."""

    def devices(self) -> dict:
        """Host APIs and devices this driver can open (see :func:`rtsvc.engine.devices.list_devices`)."""
        return {"host_apis": [], "devices": []}


class VirtualClockDriver(Driver):
    """Runs the engine over ``audio`` ((n,) float32 at ``sample_rate``) with no sound card.

    output_rate: rate of the virtual output device (default: sample_rate).
    period: frames per callback. tail_seconds: silence fed after the input so the latency drains.
    realtime: pace callbacks by the wall clock (worker in its own thread) instead of stepping.
    loopback: if set, the output is also fed back into the input this many samples later (a
    virtual cable from output to input; needs loopback >= period and output_rate == sample_rate), for latency tests.
    stalls: {tick: ticks}: stepped mode only; from that tick the worker is not run for that many
    ticks (a stalled worker: the output runs dry, input piles up), for timeline/overload tests.
    Results: :attr:`output` and :attr:`monitor` ((m,) float32 at output_rate), available after
    :meth:`run` (or :meth:`wait` in realtime mode). Realtime mode also keeps
    :attr:`worst_lateness_s`, how far the callbacks fell behind the wall clock at worst, and
    :attr:`worst_lateness_at_s`, the stream time then: a clock thread that falls behind was
    itself held up (the process paused, or the interpreter lock held), which a real sound card
    would see as an underflow and an overflow however fast the worker is.
    """

    def __init__(self, audio: np.ndarray, sample_rate: int, output_rate: int | None = None, period: int = VIRTUAL_PERIOD,
                 tail_seconds: float = 0.5, realtime: bool = False, loopback: int | None = None,
                 stalls: dict[int, int] | None = None) -> None:
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.sample_rate = int(sample_rate)
        self.output_rate = int(output_rate or sample_rate)
        self.period = int(period)
        self.tail_seconds = float(tail_seconds)
        self.realtime = bool(realtime)
        if loopback is not None and (loopback < self.period or self.output_rate != self.sample_rate):
            raise ValueError("loopback needs a delay >= period samples and output_rate == sample_rate")
        self.loopback = loopback
        self.stalls = dict(stalls or {})
        self.steps_worker = not self.realtime
        self.latency_in = self.latency_out = 0.0
        self.output = np.zeros(0, dtype=np.float32)
        self.monitor = np.zeros(0, dtype=np.float32)
        self._cb: AudioCallbacks | None = None
        self._step: Callable[[], int] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.done = threading.Event()
        self.worst_lateness_s = 0.0
        self.worst_lateness_at_s = 0.0

    def configure(self, params: LiveParams) -> StreamConfig:
        return StreamConfig(self.sample_rate, self.output_rate, self.period, "virtual input", "virtual output",
                            "virtual monitor" if params.monitor_device is not None else None, "virtual")

    def open(self, config: StreamConfig, callbacks: AudioCallbacks, step: Callable[[], int]) -> None:
        self._cb, self._step = callbacks, step

    def start(self) -> None:
        if self.realtime:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="rtsvc-virtual-clock", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
            self._thread = None

    def run(self) -> np.ndarray:
        """Stepped mode: push the whole input (plus tail) through; returns :attr:`output`."""
        if self.realtime:
            self.start()
            self.wait()
        else:
            self._loop()
        return self.output

    def wait(self, timeout: float | None = None) -> bool:
        """Realtime mode: block until the input (and tail) has been played."""
        return self.done.wait(timeout)

    def _loop(self) -> None:
        cb = self._cb
        assert cb is not None and self._step is not None, "open() first"
        p = self.period
        n_in = len(self.audio) + round(self.tail_seconds * self.sample_rate)
        ticks = -(-n_in // p)
        out_per_tick = p * self.output_rate / self.sample_rate
        src = np.zeros(ticks * p, dtype=np.float32)
        src[: len(self.audio)] = self.audio
        out = np.zeros(round(ticks * out_per_tick) + p, dtype=np.float32)
        mon = np.zeros_like(out)
        inbuf = np.zeros((p, 1), dtype=np.float32)
        written = 0
        stalled_until = -1
        t_next = time.perf_counter()
        for t in range(ticks):
            if self._stop.is_set():
                break
            inbuf[:, 0] = src[t * p : (t + 1) * p]
            if self.loopback is not None:  # output played loopback samples ago comes back
                lo, hi = t * p - self.loopback, (t + 1) * p - self.loopback
                if hi > 0:
                    seg = out[max(lo, 0) : hi]
                    inbuf[p - len(seg) :, 0] += seg
            cb.input_callback(inbuf, p, None, None)
            stalled_until = max(stalled_until, t + self.stalls.get(t, 0))
            if self.steps_worker and t >= stalled_until:
                self._step()
            m = round((t + 1) * out_per_tick) - written
            o = np.zeros((m, 1), dtype=np.float32)
            cb.output_callback(o, m, None, None)
            out[written : written + m] = o[:, 0]
            if cb.monitor_ring is not None:
                cb.monitor_callback(o, m, None, None)
                mon[written : written + m] = o[:, 0]
            written += m
            if self.realtime:
                t_next += p / self.sample_rate
                delay = t_next - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                elif -delay > self.worst_lateness_s:
                    self.worst_lateness_s, self.worst_lateness_at_s = -delay, (t + 1) * p / self.sample_rate
        self.output = out[:written]
        self.monitor = mon[:written]
        self.done.set()

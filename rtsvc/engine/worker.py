"""The worker: turns queued input into output, one fixed block at a time.

Runs in its own thread (real streams) or is stepped by the virtual-clock driver. Per block it
reads :attr:`Worker.params` once, decides the block's source (voice, dry bypass/fallback, gated
silence), runs the :class:`Pipeline`, applies ramped gains, and places the result on the output
timeline. Nothing here runs on the audio thread.

Output timeline: the pipeline's output sample j belongs at played position ``origin + j``. The
output callback counts samples it had to play as silence (underflows); a block arriving after
such an underflow is trimmed by that many samples (and a gap after dropped input is filled with
zeros), so the latency stays exactly the reported one and never creeps. The output ring is also
capped at prefill + two blocks (a faster input clock cannot pile up latency either).

Overload: input waiting longer than two blocks (plus one device period) is dropped (oldest
first, counted in ``dropped_blocks``; input lost to a full ring is accounted the same way). When
the worker itself has fallen behind (its last BEHIND_WINDOW_BLOCKS blocks took longer than real
time on average), a drop or a second late block (the output ran dry before it arrived) within
RECOVERY_SECONDS of another switch the next RECOVERY_SECONDS of blocks to ``params.fallback``
(dry or silence) - cheap, so the queue drains - then the voice is tried again; so do two slow
blocks in a row. A single late block is only counted: it is a gap of a few milliseconds (a
scheduling spike), and half a second of the dry voice in its place would be far more audible.
Drops and late blocks while the worker keeps up come from a stall of the whole process (the
operating system held it up; the device's callbacks then catch up at once): the stale input is
dropped and the voice goes on, since the fallback could not make up for lost time either.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from typing import Callable

import numpy as np

from rtsvc.engine.callbacks import AudioCallbacks
from rtsvc.engine.params import LiveParams
from rtsvc.engine.pipeline import Pipeline
from rtsvc.engine.recorder import Recorder
from rtsvc.engine.stats import BlockTimes, WorkerCounters, db_to_gain, dbfs

#: Time spent in fallback after an overload before the voice is tried again.
RECOVERY_SECONDS = 0.5
#: Consecutive slow blocks (worker time > block duration) that trigger the fallback.
SLOW_BLOCKS_TO_FALLBACK = 2
#: Recent blocks whose mean worker time tells whether the worker itself has fallen behind.
BEHIND_WINDOW_BLOCKS = 4
#: Worker thread poll interval when no block is ready (seconds).
POLL_SECONDS = 0.001


def freeze_heap() -> None:
    """Move every object alive now (torch, the voices, the GUI) out of the cyclic garbage
    collector's reach (``gc.freeze``). Without it a full collection scans the ~200k objects an
    imported torch brings and stops the worker for 50-90 ms (measured on the 2-core CI machine),
    which at a 10-20 ms block is several late blocks. Called when the worker starts and after each
    voice swap; objects made later are still collected."""
    gc.freeze()


class Worker:
    """Block processor bound to one set of rings.

    callbacks: the :class:`AudioCallbacks` whose rings and counters this worker serves.
    pipeline: the first pipeline (voice + layout). params: the first :class:`LiveParams`.
    period_in: the input device's callback period in samples (0 if unknown); widens the
    queue-age bound by one period, since input arrives in periods.
    realtime: False when a virtual clock steps the worker (time does not pass while it works,
    so slow blocks are counted but never trigger the fallback).
    """

    def __init__(self, callbacks: AudioCallbacks, pipeline: Pipeline, params: LiveParams, period_in: int = 0,
                 realtime: bool = True) -> None:
        self.realtime = bool(realtime)
        self.cb = callbacks
        self.pipeline = pipeline
        self.params = params  # swapped whole by the controller; read once per block
        self.pending_pipeline: Pipeline | None = None
        self.recorder: Recorder | None = None
        self.muted = False  # fade to silence at the next block (stream restart, stop)
        self.period_in = int(period_in)
        self.counters = WorkerCounters()
        self.times = BlockTimes()
        self.last_error: str | None = None
        #: Pitch of the newest converted frame, for status displays (read without locks; floats,
        #: Hz, 0 = unvoiced / not converted): the raw input f0 the pitch estimator found, and the
        #: f0 the voice was asked to sing (input * 2^(transpose/12); 0 with auto_f0, where the
        #: model picks its own pitch).
        self.last_input_f0_hz = 0.0
        self.last_output_f0_hz = 0.0
        self.on_block: Callable[[], None] | None = None
        # Latency measurement (rtsvc.engine.measure): a probe mixed into the output and a
        # capture of the raw input, both placed on the stream timelines.
        self.probe: np.ndarray | None = None
        self.probe_pos: int | None = None  # output timeline index of the probe's first sample
        self.capture: list[np.ndarray] | None = None
        self.capture_start = 0  # input position of the capture's first sample
        self._scratch = np.zeros(8192, dtype=np.float32)
        self._in_gain = db_to_gain(params.input_gain_db)
        self._out_gain = db_to_gain(params.output_gain_db)
        self._mon_gain = db_to_gain(params.monitor_gain_db)
        self._gate_hold = 0
        self._fallback_left = 0
        self._slow_run = 0
        self._last_late = -1  # block index of the last late block
        self._uf_seen = 0
        self._overflow_seen = 0
        self._vparams_of: LiveParams | None = None
        self._vparams = params.voice_params()
        self.in_pos = 0  # input device samples consumed (read or dropped)
        self._shift = 0.0  # permanent output shifts (ring cap), output samples
        self._start_pipeline(pipeline)
        self.cb.output_ring.write_zeros(pipeline.layout.prefill_out)
        if self.cb.monitor_ring is not None:
            self.cb.monitor_ring.write_zeros(pipeline.layout.prefill_out)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- timeline ---------------------------------------------------------------------------
    def _start_pipeline(self, pipe: Pipeline) -> None:
        L = pipe.layout
        self._rho = L.output_rate / L.input_rate
        self._origin = self.in_pos * self._rho + L.prefill_out + self._shift
        self._pipe_out = 0
        self.pipeline = pipe

    def _place(self, out: np.ndarray) -> None:
        """Write pipeline output (next samples of this pipeline) where the timeline says."""
        ring = self.cb.output_ring
        target = round(self._origin + self._pipe_out) - self.cb.output.underflow_samples
        self._pipe_out += len(out)
        gap = target - ring.write_count
        if gap > 0:
            self.counters.inserted_out += ring.write_zeros(gap)
        elif gap < 0:
            cut = min(-gap, len(out))
            self.counters.skipped_out += cut
            out = out[cut:]
        L = self.pipeline.layout
        cap = L.prefill_out + 2 * math.ceil(L.block_out) + self.period_in
        excess = ring.readable() + len(out) - cap
        if excess > 0:  # output clock slower than input: never let latency pile up
            self._shift -= excess
            self._origin -= excess
            self.counters.skipped_out += min(excess, len(out))
            out = out[min(excess, len(out)) :]
        ring.write(out)

    # -- one pass ---------------------------------------------------------------------------
    def process_available(self) -> int:
        """Consume queued input and produce every complete block; returns blocks produced."""
        produced = 0
        while True:
            if self.pending_pipeline is not None:
                self._swap()
            pipe = self.pipeline
            L = pipe.layout
            ring = self.cb.input_ring
            lost = self.cb.input.overflow_samples - self._overflow_seen
            if lost > 0:  # the input ring was full (worker stalled): those samples never arrived
                self._overflow_seen += lost
                self.in_pos += lost
                self._origin += lost * self._rho
                self._enter_fallback_if_behind()
            waiting = ring.readable()
            limit = 2 * L.block_in + self.period_in
            if waiting > limit:
                drop = ring.skip(waiting - math.ceil(L.block_in))
                self.in_pos += drop
                self._origin += drop * self._rho
                self.counters.dropped_blocks += max(1, round(drop / L.block_in))
                self._enter_fallback_if_behind()
                waiting = ring.readable()
            if waiting > 0:
                if len(self._scratch) < waiting:
                    self._scratch = np.zeros(2 * waiting, dtype=np.float32)
                buf = self._scratch[:waiting]
                n = ring.read_into(buf)
                if self.capture is not None:
                    if not self.capture:
                        self.capture_start = self.in_pos
                    self.capture.append(buf[:n].copy())
                self.in_pos += n
                g1 = db_to_gain(self.params.input_gain_db)
                if g1 != 1.0 or self._in_gain != 1.0:
                    buf *= np.linspace(self._in_gain, g1, n, dtype=np.float32)
                self._in_gain = g1
                pipe.push_input(buf)
            if not pipe.ready():
                return produced
            self._block(pipe)
            produced += 1

    def _enter_fallback(self) -> None:
        blocks = math.ceil(RECOVERY_SECONDS / self.pipeline.layout.block_seconds)
        self._fallback_left = max(self._fallback_left, blocks)

    def _enter_fallback_if_behind(self) -> None:
        """The fallback for a drop or a repeated late block, when the worker's own recent blocks
        were slower than real time (see the module docstring)."""
        if self.times.recent_mean(BEHIND_WINDOW_BLOCKS) > self.pipeline.layout.block_seconds:
            self._enter_fallback()

    def _choose_mode(self, params: LiveParams, pipe: Pipeline) -> str:
        block = pipe.peek_block()
        rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64)))) if len(block) else 0.0
        loud = dbfs(rms) >= params.threshold_db
        if loud:
            self._gate_hold = math.ceil(params.gate_hold_ms / 1000.0 / pipe.layout.block_seconds)
        elif self._gate_hold > 0:
            self._gate_hold -= 1
        if params.bypass:
            return "dry"
        if self._fallback_left > 0:
            self._fallback_left -= 1
            self.counters.fallback_blocks += 1
            return params.fallback
        if not loud and self._gate_hold <= 0:
            self.counters.gated_blocks += 1
            return "silence"
        return "voice"

    def _block(self, pipe: Pipeline) -> None:
        t0 = time.perf_counter()
        params = self.params  # read once per block
        L = pipe.layout
        c = self.counters
        c.queue_age_ms = 1000.0 * (self.cb.input_ring.readable() / L.input_rate + len(pipe.fifo) / L.voice_rate)
        c.queue_age_max_ms = max(c.queue_age_max_ms, c.queue_age_ms)
        mode = self._choose_mode(params, pipe)
        if params is not self._vparams_of:  # params are swapped whole: rebuild only on change
            self._vparams, self._vparams_of = params.voice_params(), params
        vparams = self._vparams
        new, out = pipe.next_block(vparams, mode, params.fallback)
        f_in = pipe.last_f0_hz if pipe.error is None else 0.0
        self.last_input_f0_hz = f_in
        self.last_output_f0_hz = 0.0 if vparams.auto_f0 else f_in * 2.0 ** (vparams.transpose / 12.0)
        if pipe.error is not None:
            self.last_error, pipe.error = pipe.error, None
            self._enter_fallback()
        elif mode == "voice":
            c.voice_blocks += 1
        c.in_level_db = dbfs(float(np.max(np.abs(new))) if len(new) else 0.0)
        g_out = 0.0 if self.muted else db_to_gain(params.output_gain_db)
        g_mon = 0.0 if self.muted or params.monitor_gain_db <= -60 else db_to_gain(params.monitor_gain_db)
        n = len(out)
        main = out * np.linspace(self._out_gain, g_out, n, dtype=np.float32) if n else out
        self._out_gain = g_out
        c.out_level_db = dbfs(float(np.max(np.abs(main))) if n else 0.0)
        c.sola_offset_ms = 1000.0 * pipe.sola.last_offset / L.voice_rate
        if self.probe is not None and n:
            if self.probe_pos is None:
                self.probe_pos = round(self._origin + self._pipe_out)
            k = min(n, len(self.probe))
            main = main.copy()
            main[:k] += self.probe[:k]
            self.probe = self.probe[k:] if k < len(self.probe) else None
        rec = self.recorder
        if rec is not None:
            rec.write(main)
        mring = self.cb.monitor_ring
        if mring is not None:
            mon = out * np.linspace(self._mon_gain, g_mon, n, dtype=np.float32) if n else out
            cap = L.prefill_out + 2 * math.ceil(L.block_out) + self.period_in
            if mring.readable() + n <= cap:  # a slower monitor clock drops blocks, never piles up latency
                mring.write(mon)
        self._mon_gain = g_mon
        uf = self.cb.output.underflow_samples
        if uf > self._uf_seen and c.blocks > 0:
            c.late_blocks += 1
            # one late block is a short gap (a scheduling spike); a second one soon after is overload
            if self._last_late >= 0 and c.blocks - self._last_late <= math.ceil(RECOVERY_SECONDS / L.block_seconds):
                self._enter_fallback_if_behind()
            self._last_late = c.blocks
        self._place(main)
        self._uf_seen = self.cb.output.underflow_samples
        dt = time.perf_counter() - t0
        self.times.add(dt)
        if dt > L.processing_s:
            c.over_allowance_blocks += 1
        if dt > L.block_seconds:
            c.slow_blocks += 1
            self._slow_run += 1
            if self.realtime and self._slow_run >= SLOW_BLOCKS_TO_FALLBACK:
                self._enter_fallback()
        else:
            self._slow_run = 0
        c.blocks += 1
        if self.on_block is not None:
            self.on_block()

    def _swap(self) -> None:
        """Switch to the pending pipeline at this block boundary (old tail fades out)."""
        new = self.pending_pipeline
        self.pending_pipeline = None
        old = self.pipeline
        self._place(old.flush_tail() * self._out_gain)
        if old.voice is not new.voice:
            old.voice.close()
            freeze_heap()  # the new voice's objects
        self._start_pipeline(new)

    # -- thread -----------------------------------------------------------------------------
    def start_thread(self) -> None:
        """Run :meth:`process_available` in a daemon thread until :meth:`stop_thread`."""
        self._stop.clear()
        freeze_heap()
        self._thread = threading.Thread(target=self._run, name="rtsvc-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.process_available() == 0:
                    time.sleep(POLL_SECONDS)
            except Exception as exc:  # keep the stream alive; report through status()
                self.last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(POLL_SECONDS)

    def stop_thread(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

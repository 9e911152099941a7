"""The status snapshot the controller hands out (CLI status line, panel, remote control)."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rtsvc.engine.drivers import StreamConfig
from rtsvc.engine.layout import LatencyBreakdown, latency_breakdown, make_layout
from rtsvc.engine.params import LiveParams
from rtsvc.engine.stats import SILENCE_DB
from rtsvc.engine.voices import VoiceSpec
from rtsvc.engine.worker import Worker
from rtsvc.voice import Voice

#: How often the controller's status thread checks whether a subscriber is due (seconds).
PUBLISH_POLL_SECONDS = 0.01


@dataclass
class EngineStatus:
    """A plain snapshot (``to_dict()`` is JSON-able).

    running: streams open. loading: a voice is being loaded. voice: Voice.describe() or None
    (for SoVITS voices this includes the backend facts: backend, device, precision, provider,
    threads, backend_reason, synthesizer_provider, encoder_provider).
    input_level_db / output_level_db: peak of the last block, dBFS.
    latency: LatencyBreakdown.to_dict() (ms, with definitions) or None when stopped.
    latency_preview: while stopped, the latency terms (ms) the current parameters will give
    with the loaded voice (or the built-in one), devices at ``sample_rate`` (else the voice
    rate), device latency unknown (0); None while running or when the voice's rate is unknown.
    worker_ms_p50 / _p95 / _max: worker time per block over the last 512 blocks (ms);
    worker_ms_worst: the longest block since the stream started (ms).
    rtf: worker time p50 / block duration (below 1 keeps up).
    xruns: PortAudio over/underflow flags after priming (input + output + monitor callbacks).
    input_overflow_samples: input lost to a full ring. output_underflows: callbacks that found the
    output ring empty. late_blocks, dropped_blocks, slow_blocks, over_allowance_blocks, fallback_blocks,
    gated_blocks, blocks, voice_blocks: see rtsvc.engine.stats.WorkerCounters.
    queue_age_ms / queue_age_max_ms: input waiting when the last block started / at most. sola_offset_ms: last SOLA offset.
    callback_worst_ms: longest audio callback body. recording: path being recorded, or None.
    last_error: the current problem (a failing voice or pitch estimator, a failed voice load, a
    failing status subscriber); None again once a later block is converted by the voice.
    error_count: errors met since the controller was made. last_error_time: Unix time of the
    latest error (kept after last_error clears), or None.
    extra: ``input_f0_hz`` / ``output_f0_hz``: the latest block's input pitch and output pitch
    (after transpose), Hz, 0 = unvoiced or stopped (the panel's pitch plot).
    """

    running: bool = False
    loading: bool = False
    voice: dict | None = None
    input_device: str | None = None
    output_device: str | None = None
    monitor_device: str | None = None
    input_rate: int | None = None
    output_rate: int | None = None
    input_level_db: float = SILENCE_DB
    output_level_db: float = SILENCE_DB
    latency: dict | None = None
    worker_ms_p50: float = 0.0
    worker_ms_p95: float = 0.0
    worker_ms_max: float = 0.0
    worker_ms_worst: float = 0.0
    rtf: float = 0.0
    xruns: int = 0
    input_overflow_samples: int = 0
    output_underflows: int = 0
    late_blocks: int = 0
    dropped_blocks: int = 0
    slow_blocks: int = 0
    over_allowance_blocks: int = 0
    fallback_blocks: int = 0
    gated_blocks: int = 0
    blocks: int = 0
    voice_blocks: int = 0
    queue_age_ms: float = 0.0
    queue_age_max_ms: float = 0.0
    sola_offset_ms: float = 0.0
    callback_worst_ms: float = 0.0
    recording: str | None = None
    last_error: str | None = None
    error_count: int = 0
    last_error_time: float | None = None
    latency_preview: dict | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One status line for a terminal."""
        if not self.running:
            preview = self.latency_preview or {}
            text = f" (latency {preview['algorithmic_ms']:.0f} ms + device)" if "algorithmic_ms" in preview else ""
            return "stopped" + text + (f" (error: {self.last_error})" if self.last_error else "")
        lat = self.latency or {}
        return (
            f"in {self.input_level_db:6.1f} dB | out {self.output_level_db:6.1f} dB | "
            f"latency {lat.get('algorithmic_ms', 0):.0f}+{lat.get('device_input_ms', 0) + lat.get('device_output_ms', 0):.0f} ms | "
            f"worker p50 {self.worker_ms_p50:.1f} p95 {self.worker_ms_p95:.1f} ms | RTF {self.rtf:.2f} | "
            f"xruns {self.xruns} late {self.late_blocks} over-allowance {self.over_allowance_blocks} "
            f"dropped {self.dropped_blocks}"
            + (" | REC" if self.recording else "")
            + (f" | error: {self.last_error}" if self.last_error else "")
        )


class ErrorLog:
    """The engine's errors: the current one, how many, when the last one was (thread-safe).

    The controller calls :meth:`observe` after every block (worker thread) and from status():
    it takes the worker's ``last_error`` (and resets it), and clears the current error once a
    later block was converted by the voice (the worker's ``voice_blocks`` counter moved on).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current: str | None = None
        self.count = 0
        self.last_time: float | None = None
        self._worker: Worker | None = None
        self._mark = 0  # the observed worker's voice_blocks when the current error happened

    def record(self, text: str, worker: Worker | None = None) -> None:
        """An error outside the blocks (voice load, subscriber), or one a worker reported."""
        with self._lock:
            self.current, self.count, self.last_time = text, self.count + 1, time.time()
            if worker is not None and worker is self._worker:
                self._mark = worker.counters.voice_blocks

    def observe(self, worker: Worker) -> None:
        """Take ``worker.last_error`` if set; else clear the current error if a voice block
        succeeded since it was recorded."""
        text = worker.last_error
        if text is not None:
            worker.last_error = None
        with self._lock:
            if worker is not self._worker:  # a new stream: its counters start at 0
                self._worker, self._mark = worker, 0
            if text is not None:
                self.current, self.count, self.last_time = text, self.count + 1, time.time()
                self._mark = worker.counters.voice_blocks
            elif self.current is not None and worker.counters.voice_blocks > self._mark:
                self.current = None


def latency_preview(params: LiveParams, voice_rate: int, hop: int, needs_16k: bool) -> dict:
    """Latency terms (ms, with definitions) of ``params`` for a voice of this rate and hop, both
    devices at ``params.sample_rate`` (else the voice rate), device period and latency 0."""
    device_rate = params.sample_rate or voice_rate
    layout = make_layout(params, voice_rate, hop, device_rate, device_rate, 0, needs_16k)
    return latency_breakdown(layout).to_dict()


def stopped_preview(params: LiveParams, voice: Voice | None, spec: VoiceSpec | None) -> dict | None:
    """:func:`latency_preview` for the loaded voice, or for the built-in voice when that is what
    start() will load; None for a SoVITS voice not loaded yet (its rate is unknown)."""
    if voice is not None:
        return latency_preview(params, voice.sample_rate, voice.hop_length, voice.needs_16k)
    if spec is not None and spec.kind == "world":
        from rtsvc.world_voice import WORLD_HOP, WORLD_SAMPLE_RATE

        return latency_preview(params, WORLD_SAMPLE_RATE, WORLD_HOP, False)
    return None


def next_due(due: float | None, now: float, rate_hz: float) -> float:
    """When a status subscriber called at ``now`` is due next: on a fixed grid ``1 / rate_hz``
    apart (polling lateness does not add up, so the rate is exact), never in the past (a stalled
    thread skips missed pushes instead of bursting). ``due`` None: after the first push."""
    period = 1.0 / rate_hz
    return now + period if due is None else max(due + period, now)


def build_status(worker: Worker | None, config: StreamConfig | None, latency: LatencyBreakdown | None,
                 voice: Voice | None, loading: bool, errors: ErrorLog, recording: Path | None,
                 preview: dict | None = None) -> EngineStatus:
    st = EngineStatus(running=worker is not None, loading=loading, voice=voice.describe() if voice else None,
                      last_error=errors.current, error_count=errors.count, last_error_time=errors.last_time,
                      recording=str(recording) if recording else None, latency_preview=preview)
    st.extra["input_f0_hz"] = float(getattr(worker, "last_input_f0_hz", 0.0) or 0.0) if worker is not None else 0.0
    st.extra["output_f0_hz"] = float(getattr(worker, "last_output_f0_hz", 0.0) or 0.0) if worker is not None else 0.0
    if worker is None or config is None:
        return st
    cb, c = worker.cb, worker.counters
    p50, p95, mx = worker.times.summary()
    block_s = worker.pipeline.layout.block_seconds
    st.input_device, st.output_device, st.monitor_device = config.input_name, config.output_name, config.monitor_name
    st.input_rate, st.output_rate = config.input_rate, config.output_rate
    st.input_level_db, st.output_level_db = c.in_level_db, c.out_level_db
    st.latency = latency.to_dict() if latency else None
    st.worker_ms_p50, st.worker_ms_p95, st.worker_ms_max = 1000 * p50, 1000 * p95, 1000 * mx
    st.worker_ms_worst = 1000 * worker.times.worst
    st.rtf = p50 / block_s if block_s > 0 else 0.0
    st.xruns = cb.input.xruns + cb.output.xruns + cb.monitor.xruns
    st.input_overflow_samples = cb.input.overflow_samples
    st.output_underflows = cb.output.underflow_events
    st.late_blocks, st.dropped_blocks, st.slow_blocks = c.late_blocks, c.dropped_blocks, c.slow_blocks
    st.over_allowance_blocks = c.over_allowance_blocks
    st.fallback_blocks, st.gated_blocks, st.blocks, st.voice_blocks = c.fallback_blocks, c.gated_blocks, c.blocks, c.voice_blocks
    st.queue_age_ms, st.queue_age_max_ms, st.sola_offset_ms = c.queue_age_ms, c.queue_age_max_ms, c.sola_offset_ms
    st.callback_worst_ms = max(cb.input.worst_ns, cb.output.worst_ns, cb.monitor.worst_ns) / 1e6
    return st

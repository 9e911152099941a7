"""The status snapshot the controller hands out (CLI status line, panel, remote control)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rtsvc.engine.drivers import StreamConfig
from rtsvc.engine.layout import LatencyBreakdown
from rtsvc.engine.stats import SILENCE_DB
from rtsvc.engine.worker import Worker
from rtsvc.voice import Voice


@dataclass
class EngineStatus:
    """A plain snapshot (``to_dict()`` is JSON-able).

    running: streams open. loading: a voice is being loaded. voice: Voice.describe() or None.
    input_level_db / output_level_db: peak of the last block, dBFS.
    latency: LatencyBreakdown.to_dict() (ms, with definitions) or None when stopped.
    worker_ms_p50 / _p95 / _max: worker time per block over the last 512 blocks (ms).
    rtf: worker time p50 / block duration (below 1 keeps up).
    xruns: PortAudio over/underflow flags after priming (input + output + monitor callbacks).
    input_overflow_samples: input lost to a full ring. output_underflows: callbacks that found the
    output ring empty. late_blocks, dropped_blocks, slow_blocks, fallback_blocks, gated_blocks,
    blocks, voice_blocks: see rtsvc.engine.stats.WorkerCounters.
    queue_age_ms / queue_age_max_ms: input waiting when the last block started / at most. sola_offset_ms: last SOLA offset.
    callback_worst_ms: longest audio callback body. recording: path being recorded, or None.
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
    rtf: float = 0.0
    xruns: int = 0
    input_overflow_samples: int = 0
    output_underflows: int = 0
    late_blocks: int = 0
    dropped_blocks: int = 0
    slow_blocks: int = 0
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
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One status line for a terminal."""
        if not self.running:
            return "stopped" + (f" (error: {self.last_error})" if self.last_error else "")
        lat = self.latency or {}
        return (
            f"in {self.input_level_db:6.1f} dB | out {self.output_level_db:6.1f} dB | "
            f"latency {lat.get('algorithmic_ms', 0):.0f}+{lat.get('device_input_ms', 0) + lat.get('device_output_ms', 0):.0f} ms | "
            f"worker p50 {self.worker_ms_p50:.1f} p95 {self.worker_ms_p95:.1f} ms | RTF {self.rtf:.2f} | "
            f"xruns {self.xruns} late {self.late_blocks} dropped {self.dropped_blocks}"
            + (" | REC" if self.recording else "")
        )


def build_status(worker: Worker | None, config: StreamConfig | None, latency: LatencyBreakdown | None,
                 voice: Voice | None, loading: bool, error: str | None, recording: Path | None) -> EngineStatus:
    st = EngineStatus(running=worker is not None, loading=loading, voice=voice.describe() if voice else None,
                      last_error=error, recording=str(recording) if recording else None)
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
    st.rtf = p50 / block_s if block_s > 0 else 0.0
    st.xruns = cb.input.xruns + cb.output.xruns + cb.monitor.xruns
    st.input_overflow_samples = cb.input.overflow_samples
    st.output_underflows = cb.output.underflow_events
    st.late_blocks, st.dropped_blocks, st.slow_blocks = c.late_blocks, c.dropped_blocks, c.slow_blocks
    st.fallback_blocks, st.gated_blocks, st.blocks, st.voice_blocks = c.fallback_blocks, c.gated_blocks, c.blocks, c.voice_blocks
    st.queue_age_ms, st.queue_age_max_ms, st.sola_offset_ms = c.queue_age_ms, c.queue_age_max_ms, c.sola_offset_ms
    st.callback_worst_ms = max(cb.input.worst_ns, cb.output.worst_ns, cb.monitor.worst_ns) / 1e6
    return st

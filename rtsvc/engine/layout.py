"""Block layout and the latency it implies.

Sizes are derived once per stream configuration from the parameters, the voice (rate, hop) and the
device rates. All voice-rate sizes except crossfade and search are whole hops so that the f0 and
feature frame grids line up across blocks (the window moves by ``block`` samples each block)::

    window (voice rate, W samples, a multiple of hop)
    |-- left context --|------ y: block + search + crossfade ------|-- right --|
                                                                     ^ newest input sample

Latency definitions (what ``rtsvc live`` and ``Controller.status()`` show):

* algorithmic = block + SOLA search + crossfade + right context + prefill, where prefill is the
  allowance the output ring is pre-filled with beyond the block: the processing allowance
  (``prefill_ms`` setting, for the worker's time) + the stream resamplers' worst look-ahead +
  one device period. It is exact for a voice whose SOLA offset stays 0; a voice that moves the
  offset makes the latency smaller by that offset (at most the search length). If the worker
  needs more than its allowance, blocks are late (counted) - the latency itself never changes.
* device = the open streams' reported input latency + output latency (PortAudio's figures).
* total = algorithmic + device.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from rtsvc.engine.params import LiveParams
from rtsvc.engine.resampling import stream_lag
from rtsvc.voice import ENCODER_RATE

#: How each latency term is defined, for displays.
LATENCY_DEFINITIONS = {
    "block_ms": "audio collected before a block is converted (rounded to the voice hop)",
    "sola_search_ms": "SOLA search window: look-ahead for the best splice offset",
    "crossfade_ms": "equal-power crossfade held back for the next block's seam",
    "right_context_ms": "look-ahead the voice sees after the returned samples",
    "prefill_ms": "processing allowance the output is pre-filled with: processing_ms + resample_ms + period_ms",
    "processing_ms": "worker time allowance (the prefill_ms setting)",
    "resample_ms": "worst look-ahead of the stream resamplers (device <-> voice rate, 16 kHz)",
    "period_ms": "one device callback period (input arrives in periods)",
    "algorithmic_ms": "sum of the above: input sample -> same content in the output stream",
    "device_input_ms": "input stream latency reported by the audio driver",
    "device_output_ms": "output stream latency reported by the audio driver",
    "total_ms": "algorithmic + device input + device output",
}


@dataclass(frozen=True)
class BlockLayout:
    """Sizes of one stream configuration. ``*_v``: samples at the voice rate; ``*_in``/``*_out``:
    samples at the input/output device rates."""

    voice_rate: int
    hop: int
    input_rate: int
    output_rate: int
    block_v: int
    crossfade_v: int
    search_v: int
    right_v: int
    left_v: int
    prefill_out: int
    processing_s: float = 0.0
    resample_s: float = 0.0
    period_s: float = 0.0

    @property
    def window_v(self) -> int:
        """Window length W (a multiple of hop)."""
        return self.left_v + self.block_v + self.search_v + self.crossfade_v + self.right_v

    @property
    def needed_v(self) -> int:
        """Samples the voice returns per block: block + search + crossfade."""
        return self.block_v + self.search_v + self.crossfade_v

    @property
    def block_seconds(self) -> float:
        return self.block_v / self.voice_rate

    @property
    def block_in(self) -> float:
        """Input device samples per block (fractional when the rates are not multiples)."""
        return self.block_v * self.input_rate / self.voice_rate

    @property
    def block_out(self) -> float:
        return self.block_v * self.output_rate / self.voice_rate

    def algorithmic_seconds(self) -> float:
        """Prefill (block + allowance) + search + crossfade + right context, in seconds."""
        return self.prefill_out / self.output_rate + (self.search_v + self.crossfade_v + self.right_v) / self.voice_rate


def make_layout(params: LiveParams, voice_rate: int, hop: int, input_rate: int, output_rate: int,
                period: int = 0, needs_16k: bool = False) -> BlockLayout:
    """Round the requested sizes (block to whole hops, >= 1 hop; window to whole hops) and size
    the prefill: block + processing allowance (params.prefill_ms) + the resamplers' worst
    look-ahead + one input period (``period`` frames at the input rate)."""
    ms = voice_rate / 1000.0
    block_v = max(1, round(params.block_ms * ms / hop)) * hop
    crossfade_v = min(block_v, round(params.crossfade_ms * ms))
    search_v = round(params.sola_search_ms * ms)
    right_v = round(params.right_context_ms * ms)
    core = block_v + search_v + crossfade_v + right_v
    window_v = math.ceil((core + params.extra_context_ms * ms) / hop) * hop
    chunk = period or round(block_v * input_rate / voice_rate)
    lag_in = stream_lag(input_rate, voice_rate, chunk)
    if needs_16k:
        lag_in = max(lag_in, stream_lag(input_rate, ENCODER_RATE, chunk))
    resample_s = lag_in + stream_lag(voice_rate, output_rate, block_v)
    processing_s = params.prefill_ms / 1000.0
    period_s = period / input_rate
    prefill_out = round((block_v / voice_rate + processing_s + resample_s + period_s) * output_rate)
    return BlockLayout(
        voice_rate=int(voice_rate), hop=int(hop), input_rate=int(input_rate), output_rate=int(output_rate),
        block_v=block_v, crossfade_v=crossfade_v, search_v=search_v, right_v=right_v,
        left_v=window_v - core, prefill_out=prefill_out, processing_s=processing_s, resample_s=resample_s,
        period_s=period_s,
    )


@dataclass(frozen=True)
class LatencyBreakdown:
    """Latency terms in milliseconds; see :data:`LATENCY_DEFINITIONS` (also in ``definitions``)."""

    block_ms: float
    sola_search_ms: float
    crossfade_ms: float
    right_context_ms: float
    prefill_ms: float
    processing_ms: float
    resample_ms: float
    period_ms: float
    algorithmic_ms: float
    device_input_ms: float
    device_output_ms: float
    total_ms: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["definitions"] = dict(LATENCY_DEFINITIONS)
        return d


def latency_breakdown(layout: BlockLayout, device_input_s: float = 0.0, device_output_s: float = 0.0) -> LatencyBreakdown:
    """Latency of ``layout`` plus the device latencies the stream reported (seconds)."""
    v = layout.voice_rate / 1000.0
    block_ms = layout.block_v / v
    prefill_ms = layout.prefill_out / (layout.output_rate / 1000.0) - block_ms
    algo = layout.algorithmic_seconds() * 1000.0
    din, dout = device_input_s * 1000.0, device_output_s * 1000.0
    return LatencyBreakdown(
        block_ms=block_ms, sola_search_ms=layout.search_v / v, crossfade_ms=layout.crossfade_v / v,
        right_context_ms=layout.right_v / v, prefill_ms=prefill_ms, processing_ms=1000.0 * layout.processing_s,
        resample_ms=1000.0 * layout.resample_s, period_ms=1000.0 * layout.period_s, algorithmic_ms=algo,
        device_input_ms=din, device_output_ms=dout, total_ms=algo + din + dout,
    )

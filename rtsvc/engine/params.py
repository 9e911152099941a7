"""Live parameters: one frozen, validated dataclass, swapped whole.

The controller builds a new :class:`LiveParams` on every change (``with_changes``) and hands it to
the worker, which reads it once per block, so a block always sees one consistent set. Fields are
flat so that the CLI, presets (JSON), the Qt panel and remote control all name them the same way.

Hot fields (applied at the next block, no click): everything in :data:`HOT_FIELDS`.
Stream fields (:data:`STREAM_FIELDS`) change buffer sizes, rates or devices: the controller
restarts the stream inside the engine with a short fade.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from rtsvc.errors import ParameterError
from rtsvc.params import VoiceParams

#: What overload (and dropped input) falls back to: the dry input or silence.
FALLBACK_MODES = ("dry", "silence")

#: Fields that need new buffers or a new stream (restart with a short fade).
STREAM_FIELDS = frozenset({
    "block_ms", "crossfade_ms", "extra_context_ms", "sola_search_ms", "right_context_ms", "prefill_ms",
    "sample_rate", "input_device", "output_device", "monitor_device", "host_api",
})


def _number(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{name} must be a number, got {type(value).__name__} {value!r}.")
    v = float(value)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ParameterError(f"{name} must be a finite number in [{lo:g}, {hi:g}], got {value!r}.")
    return v


def _device(name: str, value: Any) -> str | int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    if isinstance(value, str) and value.strip():
        return int(value) if value.strip().isdigit() else value.strip()
    raise ParameterError(f"{name} must be a device index (>= 0), a name substring or null, got {value!r}.")


@dataclass(frozen=True)
class LiveParams:
    """Everything the live engine can be told. Units are in the field names.

    Voice (hot): transpose (semitones, -48..48), formant (semitones, -24..24), speaker (name or id,
    None = first), speaker_mix (((name, weight), ...)), cluster_ratio ("mix ratio", 0..1),
    noise_scale (0..2), auto_f0, f0_method (one of rtsvc.params.F0_METHODS), f0_threshold (0..1),
    deterministic (no random draws).
    Engine (hot): threshold_db (noise gate, dBFS of a block's RMS, -120 = off), gate_hold_ms (the
    gate stays open this long after the last loud block), bypass (dry input through the same path
    and latency), input_gain_db / output_gain_db / monitor_gain_db (-60..24; monitor_gain_db
    -60 mutes the monitor), fallback ("dry" or "silence" while the worker is overloaded).
    Stream (restart): block_ms (10..1000, rounded to the voice hop), crossfade_ms, sola_search_ms,
    extra_context_ms (left context the voice sees), right_context_ms (look-ahead the voice sees,
    adds latency), prefill_ms (processing allowance the output is pre-filled with, adds latency),
    sample_rate (device rate in Hz, None = the devices' default), input_device / output_device /
    monitor_device (index or name substring; None = default; monitor None = no monitor),
    host_api (name substring, e.g. "JACK", "WASAPI"; None = any).
    """

    transpose: float = 0.0
    formant: float = 0.0
    speaker: str | int | None = None
    speaker_mix: tuple[tuple[str, float], ...] = ()
    cluster_ratio: float = 0.0
    noise_scale: float = 0.4
    auto_f0: bool = False
    f0_method: str = "fcpe"
    f0_threshold: float = 0.05
    deterministic: bool = False
    threshold_db: float = -60.0
    gate_hold_ms: float = 300.0
    bypass: bool = False
    input_gain_db: float = 0.0
    output_gain_db: float = 0.0
    monitor_gain_db: float = 0.0
    fallback: str = "dry"
    block_ms: float = 20.0
    crossfade_ms: float = 4.0
    sola_search_ms: float = 4.0
    extra_context_ms: float = 100.0
    right_context_ms: float = 0.0
    prefill_ms: float = 10.0
    sample_rate: int | None = None
    input_device: str | int | None = None
    output_device: str | int | None = None
    monitor_device: str | int | None = None
    host_api: str | None = None

    def __post_init__(self) -> None:
        ranges = {
            "threshold_db": (-120, 0), "gate_hold_ms": (0, 5000), "input_gain_db": (-60, 24),
            "output_gain_db": (-60, 24), "monitor_gain_db": (-60, 24), "block_ms": (10, 1000),
            "crossfade_ms": (0, 100), "sola_search_ms": (0, 50), "extra_context_ms": (0, 2000),
            "right_context_ms": (0, 500), "prefill_ms": (0, 1000),
        }
        for name, (lo, hi) in ranges.items():
            object.__setattr__(self, name, _number(name, getattr(self, name), lo, hi))
        if self.crossfade_ms > self.block_ms:
            raise ParameterError(f"crossfade_ms ({self.crossfade_ms:g}) must not exceed block_ms ({self.block_ms:g}).")
        if self.fallback not in FALLBACK_MODES:
            raise ParameterError(f"fallback must be one of {', '.join(FALLBACK_MODES)}, got {self.fallback!r}.")
        if self.sample_rate is not None:
            if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int) or not 8000 <= self.sample_rate <= 192000:
                raise ParameterError(f"sample_rate must be an integer in [8000, 192000] Hz or null, got {self.sample_rate!r}.")
        if not isinstance(self.bypass, bool):
            raise ParameterError(f"bypass must be true or false, got {self.bypass!r}.")
        for name in ("input_device", "output_device", "monitor_device"):
            object.__setattr__(self, name, _device(name, getattr(self, name)))
        if self.host_api is not None and not (isinstance(self.host_api, str) and self.host_api.strip()):
            raise ParameterError(f"host_api must be a host API name (substring) or null, got {self.host_api!r}.")
        if isinstance(self.speaker_mix, list):
            object.__setattr__(self, "speaker_mix", tuple(tuple(x) for x in self.speaker_mix))
        self.voice_params()  # validates the voice fields, naming the bad one

    def voice_params(self) -> VoiceParams:
        """The :class:`rtsvc.params.VoiceParams` the voice sees."""
        return VoiceParams(
            transpose=self.transpose, formant=self.formant, speaker=self.speaker,
            speaker_mix=self.speaker_mix, noise_scale=self.noise_scale, auto_f0=self.auto_f0,
            f0_method=self.f0_method, f0_threshold=self.f0_threshold,
            cluster_ratio=self.cluster_ratio, deterministic=self.deterministic,
        )

    def with_changes(self, **changes: Any) -> "LiveParams":
        """A new validated object with ``changes`` applied; unknown names are refused."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ParameterError(
                f"unknown live parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (speaker_mix as a list of [name, weight])."""
        d = asdict(self)
        d["speaker_mix"] = [list(p) for p in self.speaker_mix]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LiveParams":
        """Inverse of :meth:`to_dict`; unknown keys are refused (ParameterError)."""
        if not isinstance(data, dict):
            raise ParameterError(f"live parameters must be a JSON object, got {type(data).__name__}.")
        return cls().with_changes(**data)

    def stream_changes(self, other: "LiveParams") -> list[str]:
        """Names of :data:`STREAM_FIELDS` that differ between ``self`` and ``other``."""
        return sorted(n for n in STREAM_FIELDS if getattr(self, n) != getattr(other, n))


#: Fields applied at the next block without a restart.
HOT_FIELDS = frozenset(f.name for f in fields(LiveParams)) - STREAM_FIELDS

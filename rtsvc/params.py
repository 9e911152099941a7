"""Conversion parameters: one frozen, validated dataclass, swapped whole.

:class:`VoiceParams` is what a voice needs to convert audio. The offline renderer builds one per
run; the live engine holds one inside its own frozen parameter set and hands the worker a new
object on every change (never mutated in place, so a block always sees one consistent set).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from rtsvc.errors import ParameterError

#: Pitch estimators rtsvc knows. Which are usable depends on what is installed (see rtsvc.pitch).
F0_METHODS = ("fcpe", "dio", "harvest", "crepe", "rmvpe", "pm")
#: Inference backends for SoVITS voices (see rtsvc.backends).
BACKEND_NAMES = ("auto", "torch", "onnxruntime")


def _finite(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{name} must be a number, got {type(value).__name__} {value!r}.")
    v = float(value)
    if not math.isfinite(v) or not (lo <= v <= hi):
        raise ParameterError(f"{name} must be a finite number in [{lo:g}, {hi:g}], got {value!r}.")
    return v


@dataclass(frozen=True)
class VoiceParams:
    """What a voice needs to convert audio (shared by render, the live engine, panel and remote).

    transpose: pitch shift in semitones (so-vits-svc ``-t``), -48..48.
    formant: spectral-envelope shift in semitones (built-in voice only), -24..24.
    speaker: speaker name or id for multi-speaker models (None = the first speaker).
    speaker_mix: ((name, weight), ...) static speaker mix; empty = use ``speaker``.
    speaker_mix_mode: "convex" (weights scaled to sum 1, so-vits-svc's default) or "linear"
        (weights used as given).
    noise_scale: prior sampling noise of SoVITS (so-vits-svc default 0.4), 0..2.
    auto_f0: let the model predict f0 (speech only: singing goes off-key, transpose has no effect).
    f0_method: pitch estimator name (see :data:`F0_METHODS`).
    f0_threshold: voicing threshold of the pitch estimator (FCPE/crepe confidence), 0..1.
    cluster_ratio: mix ratio of cluster / feature-retrieval features, 0 (off) .. 1.
    deterministic: all random draws off (prior mean, zero harmonic phase, no source noise).
    seed: seed of the random draws when not deterministic (so-vits-svc's default 52468).
    """

    transpose: float = 0.0
    formant: float = 0.0
    speaker: str | int | None = None
    speaker_mix: tuple[tuple[str, float], ...] = ()
    speaker_mix_mode: str = "convex"
    noise_scale: float = 0.4
    auto_f0: bool = False
    f0_method: str = "fcpe"
    f0_threshold: float = 0.05
    cluster_ratio: float = 0.0
    deterministic: bool = False
    seed: int = 52468

    def __post_init__(self) -> None:
        object.__setattr__(self, "transpose", _finite("transpose", self.transpose, -48, 48))
        object.__setattr__(self, "formant", _finite("formant", self.formant, -24, 24))
        object.__setattr__(self, "noise_scale", _finite("noise_scale", self.noise_scale, 0, 2))
        object.__setattr__(self, "f0_threshold", _finite("f0_threshold", self.f0_threshold, 0, 1))
        object.__setattr__(self, "cluster_ratio", _finite("cluster_ratio", self.cluster_ratio, 0, 1))
        if self.speaker_mix_mode not in ("convex", "linear"):
            raise ParameterError(f"speaker_mix_mode must be 'convex' or 'linear', got {self.speaker_mix_mode!r}.")
        if self.f0_method not in F0_METHODS:
            raise ParameterError(f"f0_method must be one of {', '.join(F0_METHODS)}, got {self.f0_method!r}.")
        if self.speaker is not None and (isinstance(self.speaker, bool) or not isinstance(self.speaker, (str, int))):
            raise ParameterError(f"speaker must be a name or an integer id, got {self.speaker!r}.")
        for flag in ("auto_f0", "deterministic"):
            if not isinstance(getattr(self, flag), bool):
                raise ParameterError(f"{flag} must be true or false, got {getattr(self, flag)!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ParameterError(f"seed must be an integer, got {self.seed!r}.")
        mix = tuple(self.speaker_mix)
        for item in mix:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise ParameterError(f"speaker_mix entries must be (name, weight) pairs, got {item!r}.")
            _finite(f"speaker_mix weight of {item[0]!r}", item[1], 0, 1e6)
        if mix and sum(w for _, w in mix) <= 0:
            raise ParameterError("speaker_mix weights sum to 0; give at least one positive weight.")
        object.__setattr__(self, "speaker_mix", tuple((n, float(w)) for n, w in mix))

    def with_changes(self, **changes: Any) -> "VoiceParams":
        """A new validated object with ``changes`` applied; unknown names are refused."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ParameterError(f"unknown voice parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}.")
        return replace(self, **changes)

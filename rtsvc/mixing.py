"""Speaker mix: static weights (``--speaker-mix``) and dynamic mix tracks (``--mix-track``).

Static: ``name=0.3,other=0.7`` (names or integer ids). ``convex`` (default) scales the weights to
sum to 1, as so-vits-svc does for its character mix; ``linear`` keeps them as given (a plain
weighted sum of speaker embeddings, which can sound louder/stranger when the sum is not 1).

Dynamic track (so-vits-svc's ``spkmix.py`` rules): for every speaker of the model, a chain of
segments ``[t_start, t_end, w_start, w_end]`` with times as fractions of the whole file (0..1).
The first segment starts at 0, the last ends at 1, each starts where the previous one ended, and
the weight goes linearly from ``w_start`` to ``w_end`` inside it. Every speaker must be listed
(use ``[[0, 1, 0, 0]]`` for an unused one). Per frame the weights are made convex (a frame where
all weights are 0 gets equal weights). Files: JSON ``{"alto": [[0, 0.5, 1, 0], ...], ...}``, or
so-vits-svc's ``spkmix.py`` itself (read as data with :mod:`ast`, never executed).
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rtsvc.errors import ParameterError, RtsvcError
from rtsvc.params import VoiceParams

MIX_MODES = ("convex", "linear")
#: Name of the dict in so-vits-svc's spkmix.py.
SPKMIX_VARIABLE = "spk_mix_map"


@runtime_checkable
class SupportsFrameSpeakerMix(Protocol):
    """A voice that can take per-frame speaker weights (needed for dynamic mix tracks).

    weights: (len(audio) // hop_length, len(speakers)) float32, rows in speaker order.
    """

    def convert_with_speaker_weights(self, audio: np.ndarray, params: VoiceParams, weights: np.ndarray,
                                     f0: np.ndarray | None = None) -> np.ndarray: ...


def resolve_speaker(spec: str | int, speakers: tuple[str, ...]) -> str:
    """A speaker name from a name or an id ("1" counts as id 1 unless a speaker is named "1")."""
    text = str(spec).strip()
    if text in speakers:
        return text
    if text.lstrip("-").isdigit():
        idx = int(text)
        if 0 <= idx < len(speakers):
            return speakers[idx]
    listing = ", ".join(f"{i}={n}" for i, n in enumerate(speakers))
    raise ParameterError(f"speaker {spec!r} does not exist in this voice; it has: {listing}.",
                         "pass one of these names or ids.")


def parse_static_mix(text: str, speakers: tuple[str, ...], mode: str = "convex") -> tuple[tuple[str, float], ...]:
    """``"a=0.3,b=0.7"`` -> ((name, weight), ...) resolved against ``speakers``; convex or linear."""
    if mode not in MIX_MODES:
        raise ParameterError(f"speaker mix mode must be one of {', '.join(MIX_MODES)}, got {mode!r}.")
    pairs: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.rpartition("=")
        if not sep or not name.strip():
            raise ParameterError(f"--speaker-mix entry {part!r} is not name=weight.",
                                 "write it like alto=0.3,tenor=0.7.")
        try:
            weight = float(value)
        except ValueError:
            raise ParameterError(f"--speaker-mix weight {value!r} of {name.strip()!r} is not a number.") from None
        if not math.isfinite(weight) or weight < 0:
            raise ParameterError(f"--speaker-mix weight of {name.strip()!r} must be a finite number >= 0, got {value}.")
        resolved = resolve_speaker(name.strip(), speakers)
        if resolved in pairs:
            raise ParameterError(f"--speaker-mix names speaker {resolved!r} twice.")
        pairs[resolved] = weight
    if not pairs:
        raise ParameterError("--speaker-mix is empty.", "write it like alto=0.3,tenor=0.7.")
    total = sum(pairs.values())
    if total <= 0:
        raise ParameterError("--speaker-mix weights sum to 0; give at least one positive weight.")
    if mode == "convex":
        return tuple((n, w / total) for n, w in pairs.items())
    return tuple(pairs.items())


@dataclass(frozen=True)
class MixTrack:
    """A validated dynamic mix. segments[s]: (k, 4) float64 rows [t0, t1, w0, w1] of speaker s."""

    speakers: tuple[str, ...]
    segments: tuple[np.ndarray, ...]
    mode: str = "convex"

    def frame_weights(self, n_frames: int) -> np.ndarray:
        """(n_frames, n_speakers) float32 weights for a file of ``n_frames`` frames."""
        n_frames = max(int(n_frames), 1)
        w = np.zeros((n_frames, len(self.speakers)), dtype=np.float64)
        for s, segs in enumerate(self.segments):
            for t0, t1, w0, w1 in segs:
                a, b = int(n_frames * t0), int(n_frames * t1)
                if b <= a:
                    continue
                w[a:b, s] = w0 + (w1 - w0) * (np.arange(b - a) / (b - a))
        if self.mode == "convex":
            total = w.sum(axis=1, keepdims=True)
            zero = total[:, 0] <= 0
            w[zero] = 1.0 / len(self.speakers)
            total[zero] = 1.0
            w /= total
        return w.astype(np.float32)


def _speaker_key(key: object, speakers: tuple[str, ...], where: str) -> str:
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise RtsvcError(f"{where}: speaker key {key!r} must be a name or an integer id.")
    try:
        return resolve_speaker(key, speakers)
    except ParameterError as exc:
        raise RtsvcError(f"{where}: {exc.message}", exc.fix) from None


def validate_track(raw: object, speakers: tuple[str, ...], where: str, mode: str = "convex") -> MixTrack:
    """Check a parsed track against the so-vits-svc rules; one clear message per problem."""
    if not isinstance(raw, dict) or not raw:
        raise RtsvcError(f"{where}: expected a mapping of speaker -> [[t_start, t_end, w_start, w_end], ...].")
    if len(speakers) < 2:
        raise RtsvcError(f"{where}: a mix track needs a voice with 2 or more speakers; this one has {len(speakers)}.")
    per_speaker: dict[str, np.ndarray] = {}
    for key, segs in raw.items():
        name = _speaker_key(key, speakers, where)
        if name in per_speaker:
            raise RtsvcError(f"{where}: speaker {name!r} is listed twice.")
        label = f"{where}: speaker {name!r}"
        if not isinstance(segs, (list, tuple)) or not segs:
            raise RtsvcError(f"{label}: expected a non-empty list of [t_start, t_end, w_start, w_end] segments.")
        rows = []
        for j, seg in enumerate(segs):
            if (not isinstance(seg, (list, tuple)) or len(seg) != 4
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in seg)):
                raise RtsvcError(f"{label}, segment {j}: expected 4 numbers [t_start, t_end, w_start, w_end], got {seg!r}.")
            t0, t1, w0, w1 = (float(v) for v in seg)
            if not (0.0 <= t0 <= 1.0 and 0.0 <= t1 <= 1.0):
                raise RtsvcError(f"{label}, segment {j}: times must be fractions of the file in [0, 1], got {t0:g}..{t1:g}.")
            if t1 <= t0:
                raise RtsvcError(f"{label}, segment {j}: t_start {t0:g} must be before t_end {t1:g}.")
            if w0 < 0 or w1 < 0:
                raise RtsvcError(f"{label}, segment {j}: weights must be >= 0, got {w0:g}, {w1:g}.")
            if j == 0 and t0 != 0.0:
                raise RtsvcError(f"{label}: the first segment must start at 0, got {t0:g}.")
            if j and t0 != rows[-1][1]:
                raise RtsvcError(f"{label}, segment {j}: starts at {t0:g} but the previous segment ends at "
                                 f"{rows[-1][1]:g}; segments must be chained.")
            rows.append((t0, t1, w0, w1))
        if rows[-1][1] != 1.0:
            raise RtsvcError(f"{label}: the last segment must end at 1, got {rows[-1][1]:g}.")
        per_speaker[name] = np.asarray(rows, dtype=np.float64)
    missing = [s for s in speakers if s not in per_speaker]
    if missing:
        raise RtsvcError(f"{where}: every speaker must be listed; missing {', '.join(missing)}.",
                         "add [[0, 1, 0, 0]] for a speaker you do not use.")
    return MixTrack(speakers, tuple(per_speaker[s] for s in speakers), mode)


def _read_spkmix_py(text: str, where: str) -> object:
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise RtsvcError(f"{where}: not valid Python ({exc.msg}, line {exc.lineno}).") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == SPKMIX_VARIABLE for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                raise RtsvcError(f"{where}: {SPKMIX_VARIABLE} must be a plain literal (numbers, lists, a dict).") from None
    raise RtsvcError(f"{where}: no '{SPKMIX_VARIABLE} = {{...}}' assignment found.")


def load_mix_track(path: str | Path, speakers: tuple[str, ...], mode: str = "convex") -> MixTrack:
    """Read a JSON track (or so-vits-svc's spkmix.py, as data) and validate it against ``speakers``."""
    p = Path(path)
    if not p.is_file():
        raise RtsvcError(f"{p}: mix track file not found.", "give a .json (or spkmix.py) file.")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RtsvcError(f"{p}: cannot read the mix track ({exc.__class__.__name__}).") from None
    if p.suffix.lower() == ".py":
        raw = _read_spkmix_py(text, str(p))
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RtsvcError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno}).",
                             'write it like {"alto": [[0, 1, 1, 0]], "tenor": [[0, 1, 0, 1]]}.') from None
    return validate_track(raw, speakers, str(p), mode)

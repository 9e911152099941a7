"""Offline rendering: files in, converted files out, written atomically.

The renderer only knows the :class:`rtsvc.voice.Voice` interface, so the built-in WORLD voice and
SoVITS voices render the same way.
"""

from __future__ import annotations

import glob
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtsvc.audio_io import read_audio, resample, write_audio_atomic
from rtsvc.errors import AudioFileError, RtsvcError
from rtsvc.params import VoiceParams
from rtsvc.voice import Voice

#: Extensions picked up when a folder is given as input.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus", ".m4a")


@dataclass
class RenderResult:
    """One file's outcome. ``error`` is None on success."""

    source: Path
    output: Path | None
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def rtf(self) -> float:
        """Real-time factor: wall time / audio time (below 1 is faster than real time)."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds > 0 else float("nan")


def collect_inputs(specs: list[str]) -> list[Path]:
    """Expand files, folders (recursively, audio extensions only) and glob patterns, in order.

    Raises AudioFileError for a spec that names nothing (a missing file, an empty glob).
    """
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in AUDIO_EXTENSIONS)
            if not found:
                raise AudioFileError(f"{p}: the folder holds no audio files ({', '.join(AUDIO_EXTENSIONS)}).")
            out.extend(found)
        elif p.exists() or not any(ch in spec for ch in "*?["):
            out.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=True) if Path(m).is_file())
            if not matches:
                raise AudioFileError(f"{spec}: the pattern matches no files.")
            out.extend(matches)
    return out


def output_name(source: Path, params: VoiceParams, voice: Voice, ext: str = ".wav") -> str:
    """so-vits-svc style output name: <stem>_<key>key_<speaker>_<f0 method><ext>."""
    key = f"{params.transpose:+g}".replace("+0", "0")
    speaker = "mix" if params.speaker_mix else str(params.speaker if params.speaker is not None else voice.speakers[0])
    f0 = "autof0" if params.auto_f0 else params.f0_method
    return f"{source.stem}_{key}key_{speaker}_{f0}{ext}"


def render_file(voice: Voice, source: Path, output: Path, params: VoiceParams, out_rate: int | None = None) -> RenderResult:
    """Convert ``source`` with ``voice`` and write ``output`` atomically (nothing on failure)."""
    t0 = time.perf_counter()
    result = RenderResult(source=source, output=None)
    loaded = read_audio(source, target_rate=voice.sample_rate)
    result.notes = loaded.notes
    result.audio_seconds = loaded.duration
    y = voice.convert(loaded.audio, params)
    if not np.all(np.isfinite(y)):
        raise RtsvcError(f"{source}: the voice produced NaN/Inf samples; nothing was written.")
    rate = voice.sample_rate
    if out_rate and out_rate != rate:
        y = resample(y, rate, out_rate)
        rate = out_rate
    result.output = write_audio_atomic(output, y, rate)
    result.wall_seconds = time.perf_counter() - t0
    return result


def plan_outputs(inputs: list[Path], out: str | None, params: VoiceParams, voice: Voice, fmt: str = "wav") -> list[Path]:
    """Where each input goes. ``out`` is a file for one input (by extension), else a folder."""
    ext = "." + fmt.lower().lstrip(".")
    if out is not None:
        o = Path(out)
        if len(inputs) == 1 and o.suffix and not o.is_dir():
            return [o]
        if o.exists() and not o.is_dir():
            raise RtsvcError(f"{o}: exists and is not a folder, but {len(inputs)} inputs need a folder.", "give a folder with -o.")
        folder = o
    else:
        folder = Path("results")
    names = [folder / output_name(src, params, voice, ext) for src in inputs]
    seen: dict[Path, int] = {}
    for i, n in enumerate(names):  # two inputs with the same stem in different folders
        if n in seen:
            names[i] = n.with_name(f"{n.stem}_{i}{n.suffix}")
        seen[names[i]] = i
    return names

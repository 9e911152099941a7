"""Offline rendering: files in, converted files out, written atomically.

The renderer only knows the :class:`rtsvc.voice.Voice` interface, so the built-in WORLD voice and
SoVITS voices render the same way. Each file goes through :func:`rtsvc.render_core.render_stream`
(silence slicing, padding, forced clips with crossfade, loudness envelope mix), reading from
:func:`rtsvc.render_io.open_source` and writing through :class:`rtsvc.render_io.AtomicWriter`,
so a file of any length renders in bounded memory and a failed render leaves nothing behind.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtsvc.errors import AudioFileError, RtsvcError
from rtsvc.mixing import MixTrack
from rtsvc.params import VoiceParams
from rtsvc.render_core import ProgressFn, RenderOptions, render_stream
from rtsvc.render_io import LONG_FILE_SECONDS, AtomicWriter, open_source
from rtsvc.voice import Voice

#: Extensions picked up when a folder is given as input.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus", ".m4a")
#: Clip cap (seconds) for long files when no forced clip length is given, and its crossfade.
LONG_FILE_MAX_CLIP_SECONDS = 30.0
LONG_FILE_CROSSFADE_SECONDS = 0.5


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


def _walk_audio(folder: Path) -> list[Path]:
    found: list[Path] = []

    def fail(exc: OSError) -> None:
        raise AudioFileError(f"{exc.filename or folder}: cannot read the folder ({exc.strerror or exc}).",
                             "check its permissions.")

    for root, dirs, files in os.walk(folder, onerror=fail):
        dirs.sort()
        found.extend(Path(root) / f for f in sorted(files) if Path(f).suffix.lower() in AUDIO_EXTENSIONS)
    return found


def collect_inputs(specs: list[str]) -> list[Path]:
    """Expand files, folders (recursively, audio extensions only) and glob patterns, in order.

    Raises AudioFileError for a spec that names nothing (a missing file, an empty glob) or a
    folder that cannot be read.
    """
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = _walk_audio(p)
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
    """so-vits-svc style name: <stem>_<key>_<speaker>[_<cluster ratio>]_<f0 method><ext>.

    key is "<t>key" (e.g. "-3key") or "auto" with automatic f0; speaker is "spk_mix" for a mix.
    """
    key = "auto" if params.auto_f0 else f"{params.transpose:g}key"
    if params.speaker_mix:
        speaker = "spk_mix"
    else:
        speaker = str(params.speaker if params.speaker is not None else voice.speakers[0])
    ratio = f"_{params.cluster_ratio:g}" if params.cluster_ratio > 0 else ""
    return f"{source.stem}_{key}_{speaker}{ratio}_{params.f0_method}{ext}"


def long_file_options(options: RenderOptions) -> RenderOptions:
    """Options for a long file: clips capped at LONG_FILE_MAX_CLIP_SECONDS (with a crossfade when
    none is set) so that memory stays bounded even without silences."""
    if options.max_clip_seconds is not None:
        return options
    if options.clip_seconds and options.clip_seconds <= LONG_FILE_MAX_CLIP_SECONDS:
        return options
    lg = options.linear_gradient or LONG_FILE_CROSSFADE_SECONDS
    return RenderOptions(options.pad_seconds, options.slice_db, options.clip_seconds, lg,
                         options.linear_gradient_retain, options.loudness_envelope_adjustment,
                         LONG_FILE_MAX_CLIP_SECONDS)


def render_file(voice: Voice, source: Path, output: Path, params: VoiceParams, out_rate: int | None = None,
                options: RenderOptions | None = None, mix_track: MixTrack | None = None,
                progress: ProgressFn | None = None, long_file_seconds: float = LONG_FILE_SECONDS) -> RenderResult:
    """Convert ``source`` with ``voice`` and write ``output`` atomically (nothing on failure).

    out_rate: output sample rate (default: the voice's). Files of ``long_file_seconds`` or more
    are read block-wise and their clips capped (see :func:`long_file_options`).
    progress(done_seconds, total_seconds) is called after each chunk.
    """
    t0 = time.perf_counter()
    options = options or RenderOptions()
    src = open_source(source, long_file_seconds)
    try:
        if src.streaming:
            options = long_file_options(options)
        result = RenderResult(source=Path(source), output=None, audio_seconds=src.duration, notes=list(src.notes))
        if src.sample_rate != voice.sample_rate:
            result.notes.append(f"resampled {src.sample_rate} Hz -> {voice.sample_rate} Hz")
        if out_rate and out_rate != voice.sample_rate:
            result.notes.append(f"output resampled to {out_rate} Hz")
        rate = src.sample_rate
        in_seconds = (lambda done, total: progress(done / rate, total / rate)) if progress else None
        with AtomicWriter(output, voice.sample_rate, out_rate) as writer:
            render_stream(voice, src.read, src.n_samples, src.sample_rate, params, options, writer.write,
                          in_seconds, mix_track)
        result.output = Path(output)
    finally:
        src.close()
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

"""Sources and sinks for offline rendering: read a file in memory or block-wise, write incrementally.

A source is a reader ``read(start, stop)`` of mono float32 samples at the file's own rate (zeros
outside the file). Files shorter than :data:`LONG_FILE_SECONDS` are decoded whole; longer ones are
read with soundfile seeks, block by block, so memory does not grow with the file. The output is
written block by block to a temp file beside the target (resampled on the fly when ``--sr``
differs) and renamed over the target only when complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from rtsvc.atomic import commit, discard, temp_path
from rtsvc.audio_io import OUTPUT_FORMATS, read_audio
from rtsvc.errors import AudioFileError, RtsvcError
from rtsvc.slicer import padded_reader

#: Files at least this long (seconds) are rendered block-wise in bounded memory.
LONG_FILE_SECONDS = 600.0


@dataclass
class Source:
    """An opened input. read(start, stop) -> (stop - start,) float32 mono at ``sample_rate``."""

    path: Path
    n_samples: int
    sample_rate: int
    channels: int
    streaming: bool
    notes: list[str] = field(default_factory=list)
    _handle: sf.SoundFile | None = None
    _audio: np.ndarray | None = None

    @property
    def duration(self) -> float:
        return self.n_samples / self.sample_rate

    def read(self, start: int, stop: int) -> np.ndarray:
        if self._audio is not None:
            return padded_reader(self._audio)(start, stop)
        out = np.zeros(stop - start, dtype=np.float32)
        lo, hi = max(start, 0), min(stop, self.n_samples)
        if hi > lo:
            assert self._handle is not None
            self._handle.seek(lo)
            data = self._handle.read(hi - lo, dtype="float32", always_2d=True)
            mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            out[lo - start : lo - start + len(mono)] = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
        return out

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _unreadable(p: Path, exc: Exception) -> AudioFileError:
    detail = str(exc).split(":")[-1].strip() or "unreadable"
    return AudioFileError(f"{p}: not a readable audio file ({detail}).",
                          "give a wav, flac, ogg or mp3 file; re-export it if the file is damaged.")


def open_source(path: str | os.PathLike, long_file_seconds: float = LONG_FILE_SECONDS) -> Source:
    """Open an input; decode it whole unless it lasts ``long_file_seconds`` or more.

    Raises AudioFileError (missing, folder, empty, zero-length, undecodable) with one message.
    """
    p = Path(path)
    if not p.exists() or p.is_dir() or p.stat().st_size == 0:
        read_audio(p)  # raises the standard message for these cases
    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise _unreadable(p, exc) from None
    if info.frames == 0:
        raise AudioFileError(f"{p}: the file holds no audio samples (zero length).", "give a file with sound in it.")
    if info.frames / info.samplerate < long_file_seconds:
        loaded = read_audio(p)
        return Source(p, len(loaded.audio), loaded.sample_rate, loaded.source_channels, False,
                      list(loaded.notes), _audio=loaded.audio)
    try:
        handle = sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise _unreadable(p, exc) from None
    notes = [f"downmixed {info.channels} channels to mono"] if info.channels > 1 else []
    notes.append(f"long file ({info.frames / info.samplerate / 60:.1f} min): rendered block-wise")
    return Source(p, int(info.frames), int(info.samplerate), int(info.channels), True, notes, _handle=handle)


class AtomicWriter:
    """Writes mono blocks (at ``in_rate``) to ``path`` via a temp file; resamples to ``out_rate``.

    Use as a context manager: on success the temp file replaces ``path``; on error it is removed
    and ``path`` is untouched.
    """

    def __init__(self, path: str | os.PathLike, in_rate: int, out_rate: int | None = None) -> None:
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in OUTPUT_FORMATS:
            raise RtsvcError(f"{self.path}: cannot write '{ext or 'no extension'}' files, expected one of "
                             f"{', '.join(OUTPUT_FORMATS)}.", "name the output .wav or .flac.")
        self.fmt, self.subtype = OUTPUT_FORMATS[ext]
        self.clip = ext == ".flac"
        self.in_rate = int(in_rate)
        self.rate = int(out_rate or in_rate)
        self.resampler = soxr.ResampleStream(self.in_rate, self.rate, 1, dtype="float32") if self.rate != self.in_rate else None
        self.tmp: str | None = None
        self.file: sf.SoundFile | None = None
        self.frames = 0

    def __enter__(self) -> "AtomicWriter":
        self.tmp = temp_path(self.path)
        self.file = sf.SoundFile(self.tmp, "w", samplerate=self.rate, channels=1, format=self.fmt, subtype=self.subtype)
        return self

    def _put(self, y: np.ndarray) -> None:
        if len(y):
            assert self.file is not None
            self.file.write(np.clip(y, -1.0, 1.0) if self.clip else y)
            self.frames += len(y)

    def write(self, block: np.ndarray) -> None:
        y = np.ascontiguousarray(block, dtype=np.float32)
        self._put(self.resampler.resample_chunk(y) if self.resampler else y)

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.file is not None and self.tmp is not None
        try:
            if exc_type is None and self.resampler is not None:
                self._put(self.resampler.resample_chunk(np.zeros(0, np.float32), last=True))
            self.file.close()
            if exc_type is None:
                commit(self.tmp, self.path)
                self.tmp = None
        finally:
            discard(self.tmp)

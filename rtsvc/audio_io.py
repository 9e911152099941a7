"""Reading, resampling and atomically writing audio files.

All audio inside rtsvc is mono float32 in [-1, 1] at a stated sample rate. Files in other shapes
(stereo, 8-bit..32-bit integer, float, any rate libsndfile reads) are converted on the way in, and
what was converted is reported once in :attr:`LoadedAudio.notes`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from rtsvc.atomic import atomic_write
from rtsvc.errors import AudioFileError, RtsvcError

#: File extensions written by :func:`write_audio_atomic`, with their libsndfile subtype.
OUTPUT_FORMATS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24")}


@dataclass
class LoadedAudio:
    """Mono float32 audio read from a file.

    audio: (samples,) float32 at ``sample_rate``.
    notes: what was done to make it mono float32 at that rate (said once to the user).
    """

    audio: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int
    notes: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def resample(audio: np.ndarray, sr_in: int, sr_out: int, quality: str = "HQ") -> np.ndarray:
    """Resample a whole signal. audio: (samples,) float32 -> (round(samples*sr_out/sr_in),) float32."""
    if sr_in == sr_out:
        return np.ascontiguousarray(audio, dtype=np.float32)
    return soxr.resample(np.ascontiguousarray(audio, dtype=np.float32), sr_in, sr_out, quality=quality).astype(
        np.float32, copy=False
    )


def read_audio(path: str | os.PathLike, target_rate: int | None = None) -> LoadedAudio:
    """Read an audio file as mono float32, optionally resampled to ``target_rate`` Hz.

    Raises :class:`AudioFileError` with one clear message for a missing file, a directory, an
    empty or zero-length file, or anything libsndfile cannot decode (a text file named .wav, a
    corrupt header).
    """
    p = Path(path)
    if not p.exists():
        raise AudioFileError(f"{p}: no such file.", "check the path; give an existing audio file.")
    if p.is_dir():
        raise AudioFileError(f"{p}: is a folder, expected an audio file.", "give a file, or pass the folder where folders are accepted.")
    if p.stat().st_size == 0:
        raise AudioFileError(f"{p}: the file is empty (0 bytes), expected audio (wav, flac, ogg, mp3...).")
    try:
        # Through a file object: libsndfile cannot take file names that are not valid UTF-8.
        with open(p, "rb") as fh:
            data, sr = sf.read(fh, dtype="float32", always_2d=True)
    except PermissionError:
        raise AudioFileError(f"{p}: permission denied.", "make the file readable by this user.") from None
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        detail = str(exc).split(":")[-1].strip() or "unreadable"
        raise AudioFileError(
            f"{p}: not a readable audio file ({detail}).",
            "give a wav, flac, ogg or mp3 file; re-export it if the file is damaged.",
        ) from None
    if data.shape[0] == 0:
        raise AudioFileError(f"{p}: the file holds no audio samples (zero length).", "give a file with sound in it.")
    notes: list[str] = []
    channels = data.shape[1]
    if channels > 1:
        audio = data.mean(axis=1).astype(np.float32)
        notes.append(f"downmixed {channels} channels to mono")
    else:
        audio = data[:, 0]
    if not np.all(np.isfinite(audio)):
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        audio = np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0)
        notes.append(f"replaced {bad} NaN/Inf samples with silence")
    rate = sr
    if target_rate is not None and sr != target_rate:
        audio = resample(audio, sr, target_rate)
        notes.append(f"resampled {sr} Hz -> {target_rate} Hz")
        rate = target_rate
    return LoadedAudio(np.ascontiguousarray(audio, dtype=np.float32), int(rate), int(sr), int(channels), notes)


def write_audio_atomic(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono audio to ``path`` atomically: a temp file in the same folder, then rename.

    The format follows the extension (.wav -> 32-bit float WAV, .flac -> 24-bit FLAC). A reader
    never sees a half-written file and an existing file is only replaced by a complete one.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in OUTPUT_FORMATS:
        raise RtsvcError(
            f"{p}: cannot write '{ext or 'no extension'}' files, expected one of {', '.join(OUTPUT_FORMATS)}.",
            "name the output .wav or .flac.",
        )
    fmt, subtype = OUTPUT_FORMATS[ext]
    audio = np.asarray(audio, dtype=np.float32)
    if ext == ".flac":
        audio = np.clip(audio, -1.0, 1.0)
    with atomic_write(p) as fh:
        sf.write(fh, audio, int(sample_rate), format=fmt, subtype=subtype)
    return p

"""Recording the engine's output to a file: the worker writes, stop finalizes atomically.

Audio goes to a hidden temporary file beside the target; :meth:`Recorder.finish` closes it and
renames it into place, so a reader never sees a half-written recording and an existing file is
only replaced by a complete one. The lock is held by the worker while it writes a block and by
the controller while it finishes (never by the audio callback).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

from rtsvc.atomic import commit, temp_path
from rtsvc.audio_io import OUTPUT_FORMATS
from rtsvc.errors import RtsvcError


class Recorder:
    """path: .wav (32-bit float) or .flac (24-bit); sample_rate: rate of the written audio (Hz)."""

    def __init__(self, path: str | os.PathLike, sample_rate: int) -> None:
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in OUTPUT_FORMATS:
            raise RtsvcError(
                f"{self.path}: cannot record to '{ext or 'no extension'}' files, expected one of {', '.join(OUTPUT_FORMATS)}.",
                "name the recording .wav or .flac.",
            )
        fmt, subtype = OUTPUT_FORMATS[ext]
        try:
            self.tmp = temp_path(self.path)
        except OSError as exc:
            raise RtsvcError(f"{self.path}: cannot create the recording ({exc.strerror}).", "pick a writable folder.") from None
        self.sample_rate = int(sample_rate)
        self._file = sf.SoundFile(str(self.tmp), mode="w", samplerate=self.sample_rate, channels=1, format=fmt, subtype=subtype)
        self._clip = ext == ".flac"
        self._lock = threading.Lock()
        self.frames = 0

    def write(self, block: np.ndarray) -> None:
        """Append (n,) float32 (worker thread). Ignored after finish()."""
        with self._lock:
            if self._file is None:
                return
            self._file.write(np.clip(block, -1.0, 1.0) if self._clip else block)
            self.frames += len(block)

    def finish(self) -> Path:
        """Close and rename into place; returns the final path. Safe to call twice."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
                commit(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file (nothing is written at ``path``)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
                self.tmp.unlink(missing_ok=True)

"""Atomic file writes: a temp file in the target's folder, fsync, then ``os.replace``.

A reader never sees a half-written file, and an existing file is only ever replaced by a complete
one. The finished file gets the usual permissions (0666 minus the umask), not mkstemp's 0600.
Used by every writer in rtsvc (audio outputs, recordings, presets, checkpoints, datasets).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

# Read once, at import (os.umask can only be read by setting it, which is not thread-safe later).
_UMASK = os.umask(0o022)
os.umask(_UMASK)
#: Mode of finished files.
FILE_MODE = 0o666 & ~_UMASK


def temp_path(path: str | os.PathLike) -> Path:
    """Create an empty temp file beside ``path`` (making the folder) and return its path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=str(p.parent))
    os.close(fd)
    return Path(tmp)


def commit(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """fsync ``tmp``, give it the usual permissions and rename it onto ``path``."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)
    return Path(path)


def discard(tmp: str | os.PathLike | None) -> None:
    """Remove a temp file if it is still there."""
    if tmp is not None:
        try:
            os.unlink(tmp)
        except OSError:
            pass


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """``with atomic_write(p) as fh: ...`` writes ``p`` completely or not at all."""
    tmp = temp_path(path)
    try:
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise

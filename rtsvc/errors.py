"""User-facing errors.

Every problem a user can cause (a bad file, a wrong sample rate, a config that does not match its
checkpoint, a missing device, a malformed remote message) is raised as :class:`RtsvcError` with one
message that says what was wrong, what was expected and how to fix it. The CLI prints that message
alone (no traceback) and exits non-zero.
"""

from __future__ import annotations


class RtsvcError(Exception):
    """An error caused by user input, with a one-line message meant for a person.

    ``fix`` is an optional hint appended as "... Fix: <fix>".
    """

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if not fix else f"{message} Fix: {fix}")


class AudioFileError(RtsvcError):
    """An input audio file that cannot be read or is not usable audio."""


class ModelFileError(RtsvcError):
    """A model, config or weights file that is missing, unsafe, corrupt or does not match."""


class DeviceError(RtsvcError):
    """An audio device that does not exist or cannot be opened with the requested settings."""


class ParameterError(RtsvcError, ValueError):
    """A parameter value out of range or of the wrong type (names the field)."""

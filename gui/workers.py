"""Running long work (model load, device open, render) off the GUI thread.

A :class:`JobRunner` owns one worker thread and a queue: jobs run one after another in submission
order (so start, stop and voice loads never race), and their outcome comes back to the GUI thread
as Qt signals. Errors never escape as tracebacks: :func:`error_text` turns them into one readable
message (user errors as they are; unexpected ones with their type, the traceback going to the log).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from rtsvc.errors import RtsvcError

LOG = logging.getLogger("rtsvc.gui")


def error_text(exc: BaseException) -> str:
    """One line for a person: RtsvcError messages as they are; anything else with its type."""
    if isinstance(exc, RtsvcError):
        return str(exc)
    LOG.error("unexpected error in the panel", exc_info=(type(exc), exc, exc.__traceback__))
    return f"Unexpected error ({type(exc).__name__}): {exc}. Details are in the log (stderr)."


class _JobSignals(QObject):
    """Signals of one job; emitted on the worker thread, delivered queued on the GUI thread."""

    finished = Signal(str, object)  # job name, result
    failed = Signal(str, str)  # job name, error text


class _Job(QRunnable):
    def __init__(self, name: str, fn: Callable[[], Any], signals: _JobSignals) -> None:
        super().__init__()
        self.name = name
        self.fn = fn
        self.signals = signals
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - everything becomes a readable message
            self.signals.failed.emit(self.name, error_text(exc))
            return
        self.signals.finished.emit(self.name, result)


class JobRunner(QObject):
    """Runs callables one at a time on a private thread; reports on the GUI thread.

    finished(name, result) / failed(name, message) for every job; busy_changed(name) with the name
    of the job now running or "" when the queue is empty.
    """

    finished = Signal(str, object)
    failed = Signal(str, str)
    busy_changed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _JobSignals(self)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)
        self._pending: list[str] = []

    @property
    def busy(self) -> str:
        """Name of the oldest unfinished job, or "" when idle."""
        return self._pending[0] if self._pending else ""

    def submit(self, name: str, fn: Callable[[], Any]) -> None:
        """Queue ``fn`` (no arguments) to run off the GUI thread under ``name``."""
        self._pending.append(name)
        if len(self._pending) == 1:
            self.busy_changed.emit(name)
        self._pool.start(_Job(name, fn, self._signals))

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the queue is empty (for shutdown and tests). True if it emptied."""
        return self._pool.waitForDone(timeout_ms)

    def _done(self, name: str) -> None:
        if name in self._pending:
            self._pending.remove(name)
        self.busy_changed.emit(self.busy)

    def _on_finished(self, name: str, result: object) -> None:
        self.finished.emit(name, result)
        self._done(name)

    def _on_failed(self, name: str, message: str) -> None:
        self.failed.emit(name, message)
        self._done(name)

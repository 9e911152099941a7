"""The panel's only way into the engine: a QObject around the controller.

Widgets call the bridge; the bridge calls the controller and reports back with Qt signals:

* quick calls (hot parameter updates, presets, recording) run on the GUI thread;
* slow calls (start, stop, voice loads, device queries, stream-field updates while running,
  which restart the stream) run on the :class:`JobRunner` thread;
* a QTimer polls ``controller.status()`` and ``controller.params`` STATUS_HZ times a second, so
  changes made elsewhere (remote control, a preset) show up in the widgets too.

Every failure becomes one readable message on :attr:`ControllerBridge.error`.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal

from rtsvc.engine.params import STREAM_FIELDS, LiveParams
from rtsvc.engine.status import EngineStatus
from rtsvc.errors import RtsvcError
from rtsvc.gui.protocol import ControllerLike
from rtsvc.gui.workers import JobRunner, error_text

#: Status updates per second.
STATUS_HZ = 15
#: How long a voice load may take before the panel gives up waiting (seconds).
VOICE_LOAD_TIMEOUT_S = 600.0
#: Job names (shown while busy).
JOB_START, JOB_STOP, JOB_LOAD, JOB_DEVICES, JOB_UPDATE = (
    "starting", "stopping", "loading voice", "listing devices", "restarting stream")


class ControllerBridge(QObject):
    """Signals: params_changed(LiveParams), status_changed(EngineStatus), devices_changed(dict),
    voice_loaded(description dict), presets_changed(list of names), error(message),
    notice(message), busy_changed(job name or "")."""

    params_changed = Signal(object)
    status_changed = Signal(object)
    devices_changed = Signal(object)
    voice_loaded = Signal(object)
    presets_changed = Signal(object)
    error = Signal(str)
    notice = Signal(str)
    busy_changed = Signal(str)

    def __init__(self, controller: ControllerLike, status_hz: float = STATUS_HZ, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.jobs = JobRunner(self)
        self.jobs.finished.connect(self._job_finished)
        self.jobs.failed.connect(self._job_failed)
        self.jobs.busy_changed.connect(self.busy_changed)
        self.last_status = EngineStatus()
        self._shown_engine_error: str | None = None
        self._params: LiveParams = controller.params
        self._timer = QTimer(self)
        self._timer.setInterval(max(1, round(1000 / status_hz)))
        self._timer.timeout.connect(self.poll)
        self.error.connect(self._remember_error)

    # -- polling --------------------------------------------------------------------------
    @property
    def params(self) -> LiveParams:
        return self._params

    def start_polling(self) -> None:
        self._timer.start()

    def stop_polling(self) -> None:
        self._timer.stop()

    def poll(self) -> EngineStatus:
        """Read status and params once; emit what changed. Returns the new status."""
        try:
            self.last_status = self.controller.status()
        except Exception as exc:  # noqa: BLE001 - a broken status must not kill the timer
            self.error.emit(error_text(exc))
            return self.last_status
        engine_error = self.last_status.last_error
        if engine_error is None:
            self._shown_engine_error = None  # cleared by a good block: the same error may come back
        elif engine_error != self._shown_engine_error:
            self.error.emit(engine_error)  # e.g. the worker hit an error while running
        self.status_changed.emit(self.last_status)
        current = self.controller.params
        if current != self._params:
            self._params = current
            self.params_changed.emit(current)
        return self.last_status

    def _remember_error(self, message: str) -> None:
        self._shown_engine_error = message

    # -- parameters -----------------------------------------------------------------------
    def update(self, changes: dict[str, Any]) -> None:
        """One validated ``controller.update(**changes)``. Stream fields while running restart the
        stream, so that update runs off the GUI thread. On a refusal the message goes to ``error``
        and ``params_changed`` re-sends the unchanged params so the widgets snap back."""
        if self.last_status.running and STREAM_FIELDS.intersection(changes):
            try:
                self._params.with_changes(**changes)  # refuse bad values at once, before the restart
            except RtsvcError as exc:
                self._refused(exc)
                return
            self.jobs.submit(JOB_UPDATE, lambda: self.controller.update(**changes))
            return
        try:
            self._params = self.controller.update(**changes)
        except Exception as exc:  # noqa: BLE001 - shown in the window
            self._refused(exc)
            return
        self.params_changed.emit(self._params)

    def _refused(self, exc: BaseException) -> None:
        self.error.emit(error_text(exc))
        self._params = self.controller.params
        self.params_changed.emit(self._params)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a quick controller call; errors go to ``error`` (returns None then)."""
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - shown in the window
            self.error.emit(error_text(exc))
            return None

    # -- presets and recording --------------------------------------------------------------
    def list_presets(self) -> list[str]:
        names = self.call(self.controller.list_presets) or []
        self.presets_changed.emit(names)
        return names

    def save_preset(self, name: str) -> None:
        if self.call(self.controller.save_preset, name) is not None:
            self.notice.emit(f"Saved preset '{name}'.")
        self.list_presets()

    def load_preset(self, name: str) -> None:
        """Apply a preset (one controller update; a stream restart if running, off the GUI thread)."""
        if self.last_status.running:
            self.jobs.submit(JOB_UPDATE, lambda: self.controller.load_preset(name))
            return
        if self.call(self.controller.load_preset, name) is not None:
            self.notice.emit(f"Loaded preset '{name}'.")
        self.poll()

    def rename_preset(self, old: str, new: str) -> None:
        self.call(self.controller.rename_preset, old, new)
        self.list_presets()

    def delete_preset(self, name: str) -> None:
        self.call(self.controller.delete_preset, name)
        self.list_presets()

    def start_recording(self, path: Path) -> None:
        started = self.call(self.controller.start_recording, path)
        if started is not None:
            self.notice.emit(f"Recording to {started}")
        self.poll()

    def stop_recording(self) -> None:
        done = self.call(self.controller.stop_recording)
        if done is not None:
            self.notice.emit(f"Recording saved: {done}")
        self.poll()

    # -- slow calls -----------------------------------------------------------------------
    def start(self) -> None:
        self.jobs.submit(JOB_START, self.controller.start)

    def stop(self) -> None:
        self.jobs.submit(JOB_STOP, self.controller.stop)

    def toggle_running(self) -> None:
        """Start when stopped, stop when running (by the last status)."""
        (self.stop if self.last_status.running else self.start)()

    def load_voice(self, spec: Any) -> None:
        """Load "world" or (model_path, config_path) off the GUI thread; on failure the previous
        voice stays and the loader's message goes to ``error``."""

        def load() -> Any:
            fut: Future = self.controller.load_voice(spec)
            return fut.result(timeout=VOICE_LOAD_TIMEOUT_S)

        self.jobs.submit(JOB_LOAD, load)

    def refresh_devices(self) -> None:
        self.jobs.submit(JOB_DEVICES, self.controller.devices)

    def wait_idle(self, timeout_ms: int = -1) -> bool:
        """Block until no job is queued or running (shutdown, tests)."""
        return self.jobs.wait(timeout_ms)

    def _job_finished(self, name: str, result: object) -> None:
        if name == JOB_DEVICES:
            self.devices_changed.emit(result)
            return
        status = self.poll()
        if name == JOB_LOAD:
            self.voice_loaded.emit(status.voice or {})
        elif name == JOB_UPDATE:
            self.params_changed.emit(self._params)

    def _job_failed(self, name: str, message: str) -> None:
        self.error.emit(message)
        self.poll()
        if name == JOB_UPDATE:
            self.params_changed.emit(self._params)

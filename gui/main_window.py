"""The main window: the live controls on one tab, the render tab on another, an error banner.

Shortcuts: Ctrl+Return start/stop, Ctrl+B bypass, Ctrl+Up / Ctrl+Down pitch +1 / -1 semitone,
Ctrl+Shift+R record. Settings (voice, recent voices, live parameters, render folder, window
geometry) are read at start and written on close (see :mod:`rtsvc.gui.settings`).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (QFrame, QGridLayout, QHBoxLayout, QLabel, QMainWindow, QPushButton, QTabWidget,
                               QVBoxLayout, QWidget)

from rtsvc.engine.params import LiveParams
from rtsvc.errors import RtsvcError
from rtsvc.gui.audio_panel import AudioPanel
from rtsvc.gui.bridge import JOB_LOAD, STATUS_HZ, ControllerBridge
from rtsvc.gui.conversion_panel import ConversionPanel
from rtsvc.gui.live_panel import LivePanel
from rtsvc.gui.model_folder import find_model_files
from rtsvc.gui.presets_panel import PresetsPanel
from rtsvc.gui.protocol import ControllerLike
from rtsvc.gui.remote_panel import RemotePanel
from rtsvc.gui.render_tab import RenderTab, default_voice_factory, open_in_file_manager
from rtsvc.gui.settings import WORLD_VOICE, GuiSettings, load_settings, save_settings
from rtsvc.gui.timing_panel import TimingPanel
from rtsvc.gui.voice_panel import VoicePanel
from rtsvc.gui.workers import error_text
from rtsvc.voice import Voice

#: Longest wait for the engine to stop when the window closes (ms).
CLOSE_WAIT_MS = 10000
ERROR_STYLE = "background: #fde2e1; color: #7a1010; border: 1px solid #e0a0a0; padding: 6px;"


class ErrorBanner(QFrame):
    """A readable message across the top of the window, with a Dismiss button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet(ERROR_STYLE)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(self.text.textInteractionFlags() | self.text.textInteractionFlags().TextSelectableByMouse)
        row.addWidget(self.text, 1)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.hide)
        row.addWidget(dismiss)
        self.hide()

    def show_message(self, message: str) -> None:
        self.text.setText(message)
        self.show()


class MainWindow(QMainWindow):
    """controller: the engine controller. settings_file: where settings live (None: not saved).
    render_voice_factory / open_folder: see :class:`RenderTab` (tests pass light ones)."""

    def __init__(self, controller: ControllerLike, settings_file: Path | None,
                 render_voice_factory: Callable[[Any], Voice] = default_voice_factory,
                 open_folder: Callable[[Path], None] = open_in_file_manager, status_hz: float = STATUS_HZ,
                 voice_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        #: VoiceSpec fields for every SoVITS voice this window loads (``rtsvc gui --device cuda ...``)
        self.voice_options = dict(voice_options or {})
        self.setWindowTitle("rtsvc — voice changer")
        self.settings_file = settings_file
        self.settings = GuiSettings()
        self.bridge = ControllerBridge(controller, status_hz, self)
        self.voice_spec: Any = WORLD_VOICE
        self._pending_voice: tuple[str, Any] | None = None

        central = QWidget()
        outer = QVBoxLayout(central)
        self.banner = ErrorBanner()
        outer.addWidget(self.banner)
        self.tabs = QTabWidget()
        outer.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        live = QWidget()
        grid = QGridLayout(live)
        self.audio_panel = AudioPanel(self.bridge)
        self.voice_panel = VoicePanel(self.bridge)
        self.conversion_panel = ConversionPanel(self.bridge)
        self.timing_panel = TimingPanel(self.bridge)
        self.live_panel = LivePanel(self.bridge, self._output_folder)
        self.presets_panel = PresetsPanel(self.bridge)
        self.remote_panel = RemotePanel(self.bridge, self._voice_folders)
        for col, panels in enumerate(((self.audio_panel, self.voice_panel), (self.conversion_panel, self.timing_panel),
                                      (self.live_panel, self.presets_panel, self.remote_panel))):
            column = QVBoxLayout()
            for p in panels:
                column.addWidget(p)
            column.addStretch(1)
            grid.addLayout(column, 0, col)
        self.tabs.addTab(live, "Live")
        self.render_tab = RenderTab(self.bridge, lambda: self.voice_spec, render_voice_factory, open_folder)
        self.tabs.addTab(self.render_tab, "Render")

        self.busy = QLabel()
        self.statusBar().addPermanentWidget(self.busy)
        self.bridge.error.connect(self.banner.show_message)
        self.bridge.notice.connect(lambda m: self.statusBar().showMessage(m, 6000))
        self.bridge.busy_changed.connect(lambda job: self.busy.setText(job.capitalize() + "…" if job else ""))
        self.bridge.voice_loaded.connect(self._voice_loaded)
        self.bridge.voice_loaded.connect(self.conversion_panel.set_voice)
        self.bridge.jobs.failed.connect(self._job_failed)
        self.voice_panel.voice_requested.connect(self.request_voice)
        self._add_shortcuts()
        self._restore_settings()
        self.bridge.start_polling()
        self.bridge.refresh_devices()
        self.bridge.list_presets()
        self.bridge.poll()

    # -- shortcuts ----------------------------------------------------------------------------
    def _add_shortcuts(self) -> None:
        def add(keys: str, action: Callable[[], None]) -> None:
            QShortcut(QKeySequence(keys), self, action)

        add("Ctrl+Return", self.bridge.toggle_running)
        add("Ctrl+B", lambda: self.bridge.update({"bypass": not self.bridge.params.bypass}))
        add("Ctrl+Up", lambda: self.conversion_panel.step_pitch(+1))
        add("Ctrl+Down", lambda: self.conversion_panel.step_pitch(-1))
        add("Ctrl+Shift+R", lambda: self.live_panel.record.isEnabled() and self.live_panel.record.toggle())

    # -- voices -----------------------------------------------------------------------------
    def request_voice(self, path: str) -> None:
        """Load "world" or the SoVITS voice at ``path`` (a model folder or one of its files)."""
        if path == WORLD_VOICE:
            spec: Any = WORLD_VOICE
        else:
            try:
                spec = find_model_files(path).spec
                if self.voice_options:
                    spec = {"model_path": spec[0], "config_path": spec[1], **self.voice_options}
            except Exception as exc:  # noqa: BLE001 - shown in the window
                self.banner.show_message(error_text(exc))
                return
        self._pending_voice = (path, spec)
        self.bridge.load_voice(spec)

    def _voice_loaded(self, _description: dict) -> None:
        if self._pending_voice is not None:
            path, self.voice_spec = self._pending_voice
            self._pending_voice = None
            self.settings.remember_voice(path)
            self.voice_panel.set_recent(self.settings.recent_voices, path)
            self.banner.hide()

    def _job_failed(self, name: str, _message: str) -> None:
        if name == JOB_LOAD:
            self._pending_voice = None
            self.voice_panel.set_recent(self.settings.recent_voices, self.settings.voice)

    def _voice_folders(self) -> list[Path]:
        """Folders holding recent model folders (what remote clients may choose from)."""
        folders: list[Path] = []
        for v in self.settings.recent_voices:
            p = Path(v)
            parent = (p if p.is_dir() else p.parent).parent
            if parent not in folders:
                folders.append(parent)
        return folders

    def _output_folder(self) -> Path:
        return Path(self.render_tab.output_dir.text()).expanduser()

    # -- settings ---------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        if self.settings_file is None:
            return
        try:
            self.settings = load_settings(self.settings_file)
        except Exception as exc:  # noqa: BLE001 - shown in the window
            self.banner.show_message(error_text(exc))
            return
        s = self.settings
        if s.window_geometry:
            self.restoreGeometry(QByteArray.fromHex(s.window_geometry.encode("ascii")))
        if s.render_output_dir:
            self.render_tab.output_dir.setText(s.render_output_dir)
        self.render_tab.open_when_done.setChecked(s.open_output_when_done)
        self.voice_panel.set_recent(s.recent_voices, s.voice)
        if s.live_params:
            try:
                wanted = LiveParams.from_dict(s.live_params)
            except RtsvcError as exc:
                self.banner.show_message(f"{self.settings_file}: saved live parameters not used: {exc}")
            else:
                current = self.bridge.params
                changes = {f.name: getattr(wanted, f.name) for f in fields(LiveParams)
                           if getattr(wanted, f.name) != getattr(current, f.name)}
                if changes:
                    self.bridge.update(changes)
        if s.voice != WORLD_VOICE:
            self.request_voice(s.voice)

    def save_settings(self) -> None:
        if self.settings_file is None:
            return
        s = self.settings
        s.live_params = self.bridge.params.to_dict()
        s.render_output_dir = self.render_tab.output_dir.text()
        s.open_output_when_done = self.render_tab.open_when_done.isChecked()
        s.window_geometry = bytes(self.saveGeometry().toHex()).decode("ascii")
        try:
            save_settings(self.settings_file, s)
        except OSError as exc:
            self.banner.show_message(f"Could not save the panel settings to {self.settings_file}: {exc.strerror or exc}.")

    def shutdown(self) -> None:
        """Save settings, stop remote control and the engine, wait for background work."""
        self.save_settings()
        self.bridge.stop_polling()
        self.remote_panel.stop_server()
        if self.bridge.poll().running:
            self.bridge.stop()
        self.bridge.wait_idle(CLOSE_WAIT_MS)
        self.render_tab.jobs.wait(CLOSE_WAIT_MS)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt name
        self.shutdown()
        super().closeEvent(event)

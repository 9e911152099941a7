"""Remote control on/off: runs :class:`rtsvc.remote.server.RemoteServer` for the panel's controller
and shows its address and access token.

"This computer only" binds 127.0.0.1 (no token needed); "Local network" binds 0.0.0.0 and uses
the token stored in the config dir (created on first use, see :mod:`rtsvc.remote.auth`).
Voices a remote client may pick: the folders that hold the panel's recent model folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QLineEdit, QWidget

from rtsvc.gui.bridge import ControllerBridge
from rtsvc.gui.form import int_spin
from rtsvc.gui.workers import error_text
from rtsvc.remote.auth import load_or_create_token
from rtsvc.remote.server import RemoteServer, ServerConfig
from rtsvc.remote.voices import VoiceLibrary

#: Bind choices: label -> host.
BIND_CHOICES = (("This computer only", "127.0.0.1"), ("Local network", "0.0.0.0"))
DEFAULT_PORT = 8765


class RemotePanel(QGroupBox):
    """voice_folders: a callable giving the folders remote clients may pick voices from."""

    def __init__(self, bridge: ControllerBridge, voice_folders: Callable[[], list[Path]], parent: QWidget | None = None) -> None:
        super().__init__("Remote control", parent)
        self.bridge = bridge
        self.voice_folders = voice_folders
        self.server: RemoteServer | None = None
        form = QFormLayout(self)
        self.enabled = QCheckBox("On")
        self.enabled.setToolTip("control this panel's engine from a browser, phone or script (websocket)")
        self.enabled.toggled.connect(self._toggle)
        form.addRow("Remote", self.enabled)
        self.bind = QComboBox()
        for label, host in BIND_CHOICES:
            self.bind.addItem(label, host)
        form.addRow("Listen on", self.bind)
        self.port = int_spin(0, 65535, "", "TCP port (0 = any free port)")
        self.port.setValue(DEFAULT_PORT)
        form.addRow("Port", self.port)
        self.address = QLineEdit()
        self.address.setReadOnly(True)
        self.address.setPlaceholderText("off")
        form.addRow("Address", self.address)
        self.token = QLineEdit()
        self.token.setReadOnly(True)
        self.token.setPlaceholderText("none needed on this computer")
        form.addRow("Token", self.token)

    def _toggle(self, on: bool) -> None:
        if on:
            self.start_server()
        else:
            self.stop_server()

    def start_server(self) -> None:
        host = self.bind.currentData()
        try:
            token = load_or_create_token()[0] if host != "127.0.0.1" else None
            config = ServerConfig(host=host, port=self.port.value(), token=token)
            self.server = RemoteServer(self.bridge.controller, config, VoiceLibrary(self.voice_folders())).start()
        except Exception as exc:  # noqa: BLE001 - shown in the window
            self.server = None
            self.bridge.error.emit(error_text(exc))
            self.enabled.blockSignals(True)
            self.enabled.setChecked(False)
            self.enabled.blockSignals(False)
            return
        self.address.setText(f"{self.server.url}  (page: {self.server.page_url})")
        self.token.setText(token or "")
        self.bind.setEnabled(False)
        self.port.setEnabled(False)

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.address.clear()
        self.token.clear()
        self.bind.setEnabled(True)
        self.port.setEnabled(True)

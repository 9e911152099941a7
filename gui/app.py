"""Starting the panel: ``rtsvc gui`` calls :func:`run_panel`."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from rtsvc.gui.main_window import MainWindow
from rtsvc.gui.protocol import ControllerLike
from rtsvc.gui.settings import settings_path

#: Initial window size (pixels) when no geometry is remembered.
DEFAULT_SIZE = (1280, 820)


def run_panel(controller: ControllerLike, voice: str | None = None, settings_file: Path | None = None,
              voice_options: dict | None = None) -> int:
    """Show the main window for ``controller`` until it is closed; returns the exit code.

    voice: a model folder / G_*.pth path (or "world") to load at start, overriding the remembered one.
    settings_file: where settings are remembered (default: ``<config dir>/gui.json``).
    voice_options: VoiceSpec fields for SoVITS voices (device, backend, threads, fp16, cuda_graphs).
    """
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("rtsvc")
    window = MainWindow(controller, settings_file or settings_path(), voice_options=voice_options)
    if not window.settings.window_geometry:
        window.resize(*DEFAULT_SIZE)
    if voice:
        window.request_voice(voice)
    window.show()
    return int(app.exec())

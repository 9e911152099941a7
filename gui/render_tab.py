"""The render tab: drop files, pick an output folder, render them off the GUI thread.

Each file is one job on the tab's own :class:`JobRunner` (so a render never blocks the live
controls): it calls :func:`rtsvc.render.render_file` with the current voice (loaded once per
voice choice by ``voice_factory``) and the live panel's conversion parameters, reporting progress
per file. Output names follow :func:`rtsvc.render.plan_outputs` (so-vits-svc style).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QProgressBar,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from rtsvc.gui.bridge import ControllerBridge
from rtsvc.gui.drops import LocalFileDrops
from rtsvc.gui.workers import JobRunner, error_text
from rtsvc.render import collect_inputs, plan_outputs, render_file
from rtsvc.voice import Voice

#: Table columns.
COL_FILE, COL_PROGRESS, COL_RESULT = 0, 1, 2
#: Job name prefix; the row index follows.
JOB_PREFIX = "render:"


def default_voice_factory(spec: Any) -> Voice:
    """Load a voice for offline rendering, separate from the live engine's (same loader)."""
    from rtsvc.engine.voices import default_voice_loader, parse_voice_spec

    return default_voice_loader(parse_voice_spec(spec))


def open_in_file_manager(folder: Path) -> None:
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


class _Progress(QObject):
    """Carries (row, percent) from the render thread to the GUI thread."""

    changed = Signal(int, int)


class RenderTab(LocalFileDrops, QWidget):
    """voice_spec(): the current voice spec ("world" or (model, config)); voice_factory(spec) ->
    Voice; open_folder(path): shows a folder to the user (after a render, when asked)."""

    def __init__(self, bridge: ControllerBridge, voice_spec: Callable[[], Any],
                 voice_factory: Callable[[Any], Voice] = default_voice_factory,
                 open_folder: Callable[[Path], None] = open_in_file_manager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.voice_spec = voice_spec
        self.voice_factory = voice_factory
        self.open_folder = open_folder
        self.jobs = JobRunner(self)
        self.jobs.finished.connect(self._file_done)
        self.jobs.failed.connect(self._file_failed)
        self.jobs.busy_changed.connect(self._busy)
        self.progress = _Progress(self)
        self.progress.changed.connect(self._show_progress)
        self._voice: tuple[Any, Voice] | None = None  # (spec, voice), touched only by jobs
        self.files: list[Path] = []
        self.setAcceptDrops(True)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Drop audio files or folders here, or add them. They are converted with the "
                                "current voice and conversion settings."))
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["File", "Progress", "Result"])
        self.table.horizontalHeader().setSectionResizeMode(COL_FILE, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(COL_RESULT, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add files…")
        self.add_button.clicked.connect(self._pick_files)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        row.addWidget(self.add_button)
        row.addWidget(self.clear_button)
        row.addStretch(1)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Output folder"))
        self.output_dir = QLineEdit(str(Path.cwd() / "results"))
        row.addWidget(self.output_dir, 1)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._pick_output)
        row.addWidget(browse)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.open_when_done = QCheckBox("Open the output folder when done")
        row.addWidget(self.open_when_done)
        row.addStretch(1)
        self.open_button = QPushButton("Open output folder")
        self.open_button.clicked.connect(lambda: self.open_folder(Path(self.output_dir.text())))
        self.render_button = QPushButton("Render")
        self.render_button.clicked.connect(self.render)
        row.addWidget(self.open_button)
        row.addWidget(self.render_button)
        layout.addLayout(row)

    # -- the file list ----------------------------------------------------------------------
    def add_paths(self, specs: list[str]) -> None:
        """Add files, folders (their audio files) or patterns; bad ones are reported, not added."""
        try:
            found = collect_inputs(specs)
        except Exception as exc:  # noqa: BLE001 - shown in the window
            self.bridge.error.emit(error_text(exc))
            return
        for path in found:
            self.files.append(path)
            r = self.table.rowCount()
            self.table.insertRow(r)
            self.table.setItem(r, COL_FILE, QTableWidgetItem(str(path)))
            bar = QProgressBar()
            bar.setRange(0, 100)
            bar.setValue(0)
            self.table.setCellWidget(r, COL_PROGRESS, bar)
            self.table.setItem(r, COL_RESULT, QTableWidgetItem("waiting"))

    def clear(self) -> None:
        if self.jobs.busy:
            return
        self.files.clear()
        self.table.setRowCount(0)

    def _pick_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Add audio files")
        if names:
            self.add_paths(names)

    def _pick_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output_dir.text())
        if folder:
            self.output_dir.setText(folder)

    def paths_dropped(self, paths: list[str]) -> None:
        self.add_paths(paths)

    # -- rendering --------------------------------------------------------------------------
    def _get_voice(self, spec: Any) -> Voice:
        """Runs on the render thread: the cached voice for ``spec``, loading it on first use."""
        if self._voice is None or self._voice[0] != spec:
            if self._voice is not None:
                self._voice[1].close()
            self._voice = (spec, self.voice_factory(spec))
        return self._voice[1]

    def render(self) -> None:
        """Queue every listed file (each one job); progress and results show in the table."""
        if self.jobs.busy or not self.files:
            return
        spec = self.voice_spec()
        params = self.bridge.params.voice_params()
        folder = Path(self.output_dir.text()).expanduser()
        for row, source in enumerate(self.files):
            self.table.cellWidget(row, COL_PROGRESS).setValue(0)
            self.table.item(row, COL_RESULT).setText("waiting")

            def job(row: int = row, source: Path = source) -> Any:
                voice = self._get_voice(spec)
                out = plan_outputs(self.files, str(folder), params, voice)[row]
                return render_file(voice, source, out, params,
                                   progress=lambda done, total: self.progress.changed.emit(row, int(100 * done / max(total, 1))))

            self.jobs.submit(f"{JOB_PREFIX}{row}", job)

    def _row(self, name: str) -> int:
        return int(name.removeprefix(JOB_PREFIX))

    def _show_progress(self, row: int, percent: int) -> None:
        if row < self.table.rowCount():
            self.table.cellWidget(row, COL_PROGRESS).setValue(percent)

    def _busy(self, name: str) -> None:
        self.render_button.setEnabled(not name)
        self.clear_button.setEnabled(not name)
        if name.startswith(JOB_PREFIX):
            self.table.item(self._row(name), COL_RESULT).setText("rendering…")
        elif not name and self.open_when_done.isChecked():
            self.open_folder(Path(self.output_dir.text()).expanduser())

    def _file_done(self, name: str, result: Any) -> None:
        row = self._row(name)
        self.table.cellWidget(row, COL_PROGRESS).setValue(100)
        notes = f" ({'; '.join(result.notes)})" if result.notes else ""
        self.table.item(row, COL_RESULT).setText(f"{result.output.name}: {result.audio_seconds:.1f} s, RTF {result.rtf:.2f}{notes}")

    def _file_failed(self, name: str, message: str) -> None:
        self.table.item(self._row(name), COL_RESULT).setText(f"failed: {message}")

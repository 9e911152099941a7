"""Voice choice: built-in voice or a SoVITS model folder (browse, drag and drop, recent voices),
speaker picker and speaker mix editor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                               QHeaderView, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QWidget)

from rtsvc.engine.params import LiveParams
from rtsvc.gui.bridge import ControllerBridge
from rtsvc.gui.drops import LocalFileDrops
from rtsvc.gui.form import quiet_set
from rtsvc.gui.settings import WORLD_VOICE

BUILTIN_LABEL = "Built-in voice (WORLD)"


def describe_voice(desc: dict[str, Any] | None) -> str:
    """One line about the loaded voice (Voice.describe())."""
    if not desc:
        return "No voice loaded yet (the built-in voice loads at start)."
    speakers = desc.get("speakers") or []
    who = f"{len(speakers)} speakers" if len(speakers) > 1 else "1 speaker"
    return f"{desc.get('name', '?')} ({desc.get('kind', '?')}, {desc.get('sample_rate', '?')} Hz, {who})"


class VoicePanel(LocalFileDrops, QGroupBox):
    """Emits ``voice_requested(path)`` ("world" or a dropped/picked/recent model path); the main
    window resolves and loads it. Speaker and mix edits are bridge updates."""

    voice_requested = Signal(str)

    def __init__(self, bridge: ControllerBridge, parent: QWidget | None = None) -> None:
        super().__init__("Voice", parent)
        self.bridge = bridge
        self.setAcceptDrops(True)
        form = QFormLayout(self)
        self.choice = QComboBox()
        self.choice.setToolTip("the built-in voice or a recent SoVITS model; drop a model folder or file here")
        self.choice.setMinimumContentsLength(20)
        self.choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.choice.activated.connect(lambda _i: self.voice_requested.emit(self.choice.currentData()))
        self.browse = QPushButton("Open folder…")
        self.browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.choice, 1)
        row.addWidget(self.browse)
        form.addRow("Voice", row)
        self.current = QLabel(describe_voice(None))
        self.current.setWordWrap(True)
        form.addRow("Loaded", self.current)
        self.drop_hint = QLabel("Drop a model folder (config.json + G_*.pth) or a G_*.pth file here.")
        self.drop_hint.setStyleSheet("color: gray;")
        form.addRow(self.drop_hint)

        self.speaker = QComboBox()
        self.speaker.currentIndexChanged.connect(lambda _i: self.bridge.update({"speaker": self.speaker.currentData()}))
        form.addRow("Speaker", self.speaker)
        self.use_mix = QCheckBox("Mix speakers")
        self.mix_table = QTableWidget(0, 2)
        self.mix_table.setHorizontalHeaderLabels(["Speaker", "Weight"])
        self.mix_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.mix_table.verticalHeader().hide()
        self.mix_table.setMaximumHeight(110)
        self.apply_mix = QPushButton("Apply mix")
        self.apply_mix.clicked.connect(lambda: self.bridge.update({"speaker_mix": self.mix_weights()}))
        self.use_mix.toggled.connect(self._send_mix)
        form.addRow(self.use_mix, self.apply_mix)
        form.addRow(self.mix_table)
        self.mix_widgets = [self.use_mix, self.apply_mix, self.mix_table]
        bridge.params_changed.connect(self.show_params)
        bridge.voice_loaded.connect(self.set_voice)
        self.set_recent([])
        self.set_voice(None)

    # -- voice choice -----------------------------------------------------------------------
    def set_recent(self, paths: list[str], current: str = WORLD_VOICE) -> None:
        with QSignalBlocker(self.choice):
            self.choice.clear()
            self.choice.addItem(BUILTIN_LABEL, WORLD_VOICE)
            for p in paths:
                self.choice.addItem(Path(p).name or p, p)
                self.choice.setItemData(self.choice.count() - 1, p, Qt.ItemDataRole.ToolTipRole)
            i = self.choice.findData(current)
            self.choice.setCurrentIndex(max(i, 0))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a SoVITS model folder")
        if folder:
            self.voice_requested.emit(folder)

    def paths_dropped(self, paths: list[str]) -> None:
        self.voice_requested.emit(paths[0])

    # -- speakers ---------------------------------------------------------------------------
    def set_voice(self, desc: dict[str, Any] | None) -> None:
        """Show the loaded voice and rebuild the speaker picker and mix table from its speakers."""
        self.current.setText(describe_voice(desc))
        speakers = [str(s) for s in (desc or {}).get("speakers", [])]
        with QSignalBlocker(self.speaker):
            self.speaker.clear()
            for s in speakers:
                self.speaker.addItem(s, s)
        self.speaker.setEnabled(len(speakers) > 1)
        self.mix_table.setRowCount(len(speakers))
        for row, name in enumerate(speakers):
            self.mix_table.setItem(row, 0, QTableWidgetItem(name))
            weight = QDoubleSpinBox()
            weight.setRange(0.0, 1.0)
            weight.setSingleStep(0.1)
            weight.setKeyboardTracking(False)
            self.mix_table.setCellWidget(row, 1, weight)
        for w in self.mix_widgets:
            w.setVisible(len(speakers) > 1)
        self.show_params(self.bridge.params)

    def mix_weights(self) -> tuple[tuple[str, float], ...]:
        """(name, weight) for every speaker with a weight above 0."""
        out = []
        for row in range(self.mix_table.rowCount()):
            weight = self.mix_table.cellWidget(row, 1).value()
            if weight > 0:
                out.append((self.mix_table.item(row, 0).text(), float(weight)))
        return tuple(out)

    def _send_mix(self) -> None:
        self.bridge.update({"speaker_mix": self.mix_weights() if self.use_mix.isChecked() else ()})

    def show_params(self, p: LiveParams) -> None:
        if p.speaker is not None:
            quiet_set(self.speaker, str(p.speaker))
        quiet_set(self.use_mix, bool(p.speaker_mix))
        weights = dict(p.speaker_mix)
        for row in range(self.mix_table.rowCount()):
            name = self.mix_table.item(row, 0).text()
            quiet_set(self.mix_table.cellWidget(row, 1), weights.get(name, 0.0))

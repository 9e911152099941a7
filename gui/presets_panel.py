"""Presets: save, load, rename, delete (stored by the controller in the user config dir)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLineEdit, QListWidget, QPushButton, QWidget

from rtsvc.gui.bridge import ControllerBridge


class PresetsPanel(QGroupBox):
    """A list of saved presets and a name field. Save uses the name field; Load and Delete act on
    the selected preset; Rename renames the selected preset to the name field."""

    def __init__(self, bridge: ControllerBridge, parent: QWidget | None = None) -> None:
        super().__init__("Presets", parent)
        self.bridge = bridge
        grid = QGridLayout(self)
        self.names = QListWidget()
        self.names.setMaximumHeight(110)
        self.names.itemDoubleClicked.connect(lambda item: self.bridge.load_preset(item.text()))
        self.names.currentTextChanged.connect(lambda text: text and self.name.setText(text))
        grid.addWidget(self.names, 0, 0, 1, 4)
        self.name = QLineEdit()
        self.name.setPlaceholderText("preset name")
        grid.addWidget(self.name, 1, 0, 1, 4)
        self.save = QPushButton("Save")
        self.load = QPushButton("Load")
        self.rename = QPushButton("Rename")
        self.delete = QPushButton("Delete")
        for col, b in enumerate((self.save, self.load, self.rename, self.delete)):
            grid.addWidget(b, 2, col)
        self.save.clicked.connect(lambda: self.bridge.save_preset(self.name.text().strip()))
        self.load.clicked.connect(lambda: self._with_selected(self.bridge.load_preset))
        self.delete.clicked.connect(lambda: self._with_selected(self.bridge.delete_preset))
        self.rename.clicked.connect(
            lambda: self._with_selected(lambda old: self.bridge.rename_preset(old, self.name.text().strip())))
        bridge.presets_changed.connect(self.show_names)

    def selected(self) -> str | None:
        item = self.names.currentItem()
        return item.text() if item is not None else None

    def _with_selected(self, action) -> None:
        name = self.selected()
        if name is None:
            self.bridge.error.emit("Select a preset in the list first.")
            return
        action(name)

    def show_names(self, names: list[str]) -> None:
        current = self.selected()
        self.names.blockSignals(True)
        self.names.clear()
        self.names.addItems(names)
        matches = self.names.findItems(current or "", Qt.MatchFlag.MatchExactly)
        if matches:
            self.names.setCurrentItem(matches[0])
        self.names.blockSignals(False)

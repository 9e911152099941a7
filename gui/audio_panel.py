"""Audio device pickers: host API, input, output, monitor, sample rate, and hints."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QWidget

from rtsvc.engine.params import LiveParams
from rtsvc.gui.bridge import ControllerBridge
from rtsvc.gui.devices import DeviceEntry, device_hints, entry_from_dict, host_apis

#: Sample rates offered besides "device default".
SAMPLE_RATES = (44100, 48000, 88200, 96000)
ANY_HOST_API = "Any"
DEFAULT_DEVICE = "System default"
NO_MONITOR = "No monitor"


class AudioPanel(QGroupBox):
    """Each choice is one ``bridge.update`` of host_api / input_device / output_device /
    monitor_device / sample_rate. The lists come from ``controller.devices()`` (Refresh re-reads
    them, e.g. after plugging in a headset)."""

    def __init__(self, bridge: ControllerBridge, parent: QWidget | None = None) -> None:
        super().__init__("Audio", parent)
        self.bridge = bridge
        self.devices: list[DeviceEntry] = []
        form = QFormLayout(self)
        self.host_api = QComboBox()
        self.refresh = QPushButton("Refresh")
        self.refresh.setToolTip("list the devices again (after plugging one in)")
        self.refresh.clicked.connect(bridge.refresh_devices)
        row = QHBoxLayout()
        row.addWidget(self.host_api, 1)
        row.addWidget(self.refresh)
        form.addRow("Host API", row)
        self.input = QComboBox()
        self.output = QComboBox()
        self.monitor = QComboBox()
        for box in (self.input, self.output, self.monitor):
            box.setMinimumContentsLength(18)
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        form.addRow("Input", self.input)
        form.addRow("Output", self.output)
        form.addRow("Monitor", self.monitor)
        self.sample_rate = QComboBox()
        self.sample_rate.addItem("Device default", None)
        for r in SAMPLE_RATES:
            self.sample_rate.addItem(f"{r} Hz", r)
        form.addRow("Sample rate", self.sample_rate)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #2a5d9f;")
        form.addRow(self.hint)

        self.host_api.currentIndexChanged.connect(
            lambda _i: self.bridge.update({"host_api": self.host_api.currentData()}))
        for box, name in ((self.input, "input_device"), (self.output, "output_device"),
                          (self.monitor, "monitor_device"), (self.sample_rate, "sample_rate")):
            box.currentIndexChanged.connect(lambda _i, b=box, n=name: self.bridge.update({n: b.currentData()}))
        bridge.devices_changed.connect(self.set_devices)
        bridge.params_changed.connect(self.show_params)
        self.set_devices({"host_apis": [], "devices": []})

    def set_devices(self, listing: dict[str, Any]) -> None:
        """listing: controller.devices() -> {"host_apis": [...], "devices": [dict, ...]}."""
        self.devices = [entry_from_dict(d) for d in listing.get("devices", [])]
        self.show_params(self.bridge.params)

    def _fill(self, box: QComboBox, items: list[tuple[str, Any]], current: Any) -> None:
        with QSignalBlocker(box):
            box.clear()
            for label, data in items:
                box.addItem(label, data)
            index = box.findData(current)
            if index < 0 and isinstance(current, str):  # a name substring: the first device that matches
                index = next((i for i in range(box.count()) if current.lower() in box.itemText(i).lower()), -1)
            if index < 0 and current is not None:
                box.addItem(f"{current} (not found)", current)
                index = box.count() - 1
            box.setCurrentIndex(max(index, 0))

    def show_params(self, p: LiveParams) -> None:
        apis = host_apis(self.devices)
        self._fill(self.host_api, [(ANY_HOST_API, None)] + [(a, a) for a in apis], p.host_api)
        shown = [d for d in self.devices if p.host_api is None or p.host_api.lower() in d.host_api.lower()]
        inputs = [(d.label, d.index) for d in shown if d.inputs > 0]
        outputs = [(d.label, d.index) for d in shown if d.outputs > 0]
        self._fill(self.input, [(DEFAULT_DEVICE, None)] + inputs, p.input_device)
        self._fill(self.output, [(DEFAULT_DEVICE, None)] + outputs, p.output_device)
        self._fill(self.monitor, [(NO_MONITOR, None)] + outputs, p.monitor_device)
        with QSignalBlocker(self.sample_rate):
            i = self.sample_rate.findData(p.sample_rate)
            if i < 0:
                self.sample_rate.addItem(f"{p.sample_rate} Hz", p.sample_rate)
                i = self.sample_rate.count() - 1
            self.sample_rate.setCurrentIndex(i)
        by_index = {d.index: d for d in self.devices}
        hints = device_hints(by_index.get(self.input.currentData()), by_index.get(self.output.currentData()), p.sample_rate)
        self.hint.setText("\n".join(hints))
        self.hint.setVisible(bool(hints))

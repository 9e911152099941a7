"""Live controls and read-outs: start/stop, bypass, gains, record, meters, counters, pitch plot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from PySide6.QtWidgets import QCheckBox, QFormLayout, QGridLayout, QGroupBox, QLabel, QPushButton, QWidget

from rtsvc.engine.params import LiveParams
from rtsvc.engine.status import EngineStatus
from rtsvc.gui.bridge import JOB_START, JOB_STOP, ControllerBridge
from rtsvc.gui.form import double_spin, on_change, quiet_set
from rtsvc.gui.meters import LevelMeter
from rtsvc.gui.pitch_plot import PitchPlot

#: Keys of EngineStatus.extra the pitch plot reads (latest input / output f0, Hz, 0 = unvoiced).
INPUT_F0_KEY, OUTPUT_F0_KEY = "input_f0_hz", "output_f0_hz"


def default_recording_path(folder: Path) -> Path:
    """``<folder>/rtsvc-take-YYYYmmdd-HHMMSS.wav``."""
    return folder / time.strftime("rtsvc-take-%Y%m%d-%H%M%S.wav")


class LivePanel(QGroupBox):
    """recording_folder: a callable giving the folder new recordings go to."""

    def __init__(self, bridge: ControllerBridge, recording_folder: Callable[[], Path], parent: QWidget | None = None) -> None:
        super().__init__("Live", parent)
        self.bridge = bridge
        self.recording_folder = recording_folder
        grid = QGridLayout(self)

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("start/stop converting (Ctrl+Return)")
        self.start_button.setMinimumHeight(36)
        self.start_button.clicked.connect(bridge.toggle_running)
        grid.addWidget(self.start_button, 0, 0, 1, 2)
        self.bypass = QCheckBox("Bypass")
        self.bypass.setToolTip("hear your dry voice through the same path and latency (Ctrl+B)")
        grid.addWidget(self.bypass, 1, 0)
        self.record = QPushButton("Record")
        self.record.setCheckable(True)
        self.record.setToolTip("record the converted output to a wav file (Ctrl+Shift+R)")
        self.record.toggled.connect(self._record_toggled)
        grid.addWidget(self.record, 1, 1)

        form = QFormLayout()
        self.output_gain = double_spin(-60, 24, 1, 1, " dB", "gain of the converted output")
        self.monitor_gain = double_spin(-60, 24, 1, 1, " dB", "gain of the monitor (what you hear); -60 mutes it")
        form.addRow("Output gain", self.output_gain)
        form.addRow("Monitor gain", self.monitor_gain)
        grid.addLayout(form, 2, 0, 1, 2)
        self._fields = {"bypass": self.bypass, "output_gain_db": self.output_gain, "monitor_gain_db": self.monitor_gain}
        for name, widget in self._fields.items():
            on_change(widget, lambda v, n=name: self.bridge.update({n: v}))

        self.input_meter = LevelMeter("In")
        self.output_meter = LevelMeter("Out")
        grid.addWidget(self.input_meter, 3, 0, 1, 2)
        grid.addWidget(self.output_meter, 4, 0, 1, 2)
        self.performance = QLabel()
        self.counters = QLabel()
        grid.addWidget(self.performance, 5, 0, 1, 2)
        grid.addWidget(self.counters, 6, 0, 1, 2)
        self.pitch_plot = PitchPlot()
        grid.addWidget(self.pitch_plot, 7, 0, 1, 2)
        self.pitch_note = QLabel()
        grid.addWidget(self.pitch_note, 8, 0, 1, 2)

        bridge.params_changed.connect(self.show_params)
        bridge.status_changed.connect(self.show_status)
        bridge.busy_changed.connect(self._busy)
        self.show_params(bridge.params)
        self.show_status(bridge.last_status)

    def show_params(self, p: LiveParams) -> None:
        for name, widget in self._fields.items():
            quiet_set(widget, getattr(p, name))

    def show_status(self, st: EngineStatus) -> None:
        self.start_button.setText("Stop" if st.running else "Start")
        self.record.setEnabled(st.running)
        quiet_set(self.record, bool(st.recording))
        self.input_meter.set_level(st.input_level_db)
        self.output_meter.set_level(st.output_level_db)
        self.performance.setText(
            f"RTF {st.rtf:.2f} | worker p50 {st.worker_ms_p50:.1f} / p95 {st.worker_ms_p95:.1f} / max {st.worker_ms_max:.1f} ms")
        self.counters.setText(
            f"xruns {st.xruns} | underflows {st.output_underflows} | late {st.late_blocks} | "
            f"over allowance {st.over_allowance_blocks} | dropped {st.dropped_blocks} | queue {st.queue_age_ms:.0f} ms")
        if INPUT_F0_KEY in st.extra:
            self.pitch_note.hide()
            if st.running:
                self.pitch_plot.add(float(st.extra.get(INPUT_F0_KEY) or 0), float(st.extra.get(OUTPUT_F0_KEY) or 0))
        else:
            self.pitch_note.setText("pitch plot: the engine does not report pitch yet")

    def _busy(self, job: str) -> None:
        starting_or_stopping = job in (JOB_START, JOB_STOP)
        self.start_button.setEnabled(not starting_or_stopping)
        if starting_or_stopping:
            self.start_button.setText(job.capitalize() + "…")
        else:
            self.show_status(self.bridge.last_status)

    def _record_toggled(self, on: bool) -> None:
        if on:
            self.bridge.start_recording(default_recording_path(self.recording_folder()))
        else:
            self.bridge.stop_recording()

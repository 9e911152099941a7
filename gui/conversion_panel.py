"""Conversion controls: pitch, formant, mix ratio, f0 method, noise scale, auto f0, threshold."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QSlider, QWidget

from rtsvc.engine.params import LiveParams
from rtsvc.gui.bridge import ControllerBridge
from rtsvc.gui.form import double_spin, int_spin, on_change, quiet_set
from rtsvc.params import F0_METHODS

#: Pitch range offered by the slider (semitones); the engine accepts more from the CLI.
PITCH_RANGE = 24
#: Shown when auto f0 is on.
AUTO_F0_WARNING = "Auto f0 is for speech: singing goes off-key and the pitch control has no effect."
#: Voice kinds that support a formant shift.
FORMANT_VOICES = ("WorldVoice",)


class ConversionPanel(QGroupBox):
    """Edits the voice fields of LiveParams; each user change is one bridge.update()."""

    def __init__(self, bridge: ControllerBridge, parent: QWidget | None = None) -> None:
        super().__init__("Conversion", parent)
        self.bridge = bridge
        form = QFormLayout(self)

        self.pitch_slider = QSlider(Qt.Orientation.Horizontal)
        self.pitch_slider.setRange(-PITCH_RANGE, PITCH_RANGE)
        self.pitch_slider.setPageStep(12)
        self.pitch_slider.setTickInterval(12)
        self.pitch_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.pitch_slider.setTracking(False)  # a drag is one update, on release
        self.pitch_slider.setToolTip("pitch shift in semitones (12 = one octave); Ctrl+Up / Ctrl+Down")
        self.pitch_spin = int_spin(-PITCH_RANGE, PITCH_RANGE, " st", "pitch shift in semitones")
        row = QHBoxLayout()
        row.addWidget(self.pitch_slider, 1)
        row.addWidget(self.pitch_spin)
        form.addRow("Pitch", row)
        # While dragging, the box follows the handle; the update happens on release.
        self.pitch_slider.sliderMoved.connect(lambda v: quiet_set(self.pitch_spin, v))

        self.formant = double_spin(-24, 24, 0.5, 1, " st", "formant shift in semitones (built-in voice): >0 brighter, <0 darker")
        form.addRow("Formant", self.formant)
        self.mix_ratio = double_spin(0, 1, 0.05, 2, "", "cluster / feature-retrieval mix ratio: 0 = off, 1 = all retrieved features")
        form.addRow("Mix ratio", self.mix_ratio)
        self.f0_method = QComboBox()
        for m in F0_METHODS:
            self.f0_method.addItem(m, m)
        self.f0_method.setToolTip("pitch estimator (fcpe is fast and robust)")
        form.addRow("F0 method", self.f0_method)
        self.noise_scale = double_spin(0, 2, 0.05, 2, "", "SoVITS sampling noise (0.4 is so-vits-svc's default)")
        form.addRow("Noise scale", self.noise_scale)
        self.auto_f0 = QCheckBox("Auto f0 (speech)")
        self.auto_f0.setToolTip("let the model predict pitch: for speech only")
        form.addRow("", self.auto_f0)
        self.auto_f0_warning = QLabel(AUTO_F0_WARNING)
        self.auto_f0_warning.setWordWrap(True)
        self.auto_f0_warning.setStyleSheet("color: #b06000;")
        form.addRow("", self.auto_f0_warning)
        self.threshold = double_spin(-120, 0, 1, 0, " dB", "response threshold: blocks quieter than this (dBFS RMS) are silenced; -120 = off")
        form.addRow("Response threshold", self.threshold)

        self._fields: dict[str, QWidget] = {
            "formant": self.formant, "cluster_ratio": self.mix_ratio, "f0_method": self.f0_method,
            "noise_scale": self.noise_scale, "auto_f0": self.auto_f0, "threshold_db": self.threshold,
        }
        for name, widget in self._fields.items():
            on_change(widget, lambda v, n=name: self.bridge.update({n: v}))
        on_change(self.pitch_slider, self._send_pitch)
        on_change(self.pitch_spin, self._send_pitch)
        bridge.params_changed.connect(self.show_params)
        self.show_params(bridge.params)
        self.set_voice({})

    def _send_pitch(self, semitones: int) -> None:
        self.bridge.update({"transpose": float(semitones)})

    def step_pitch(self, semitones: int) -> None:
        """Shortcut action: pitch up/down by ``semitones`` (clamped to the slider range)."""
        target = max(-PITCH_RANGE, min(PITCH_RANGE, round(self.bridge.params.transpose) + semitones))
        if target != self.bridge.params.transpose:
            self._send_pitch(target)

    def show_params(self, p: LiveParams) -> None:
        pitch = max(-PITCH_RANGE, min(PITCH_RANGE, round(p.transpose)))
        quiet_set(self.pitch_slider, pitch)
        quiet_set(self.pitch_spin, pitch)
        for name, widget in self._fields.items():
            quiet_set(widget, getattr(p, name))
        self.auto_f0_warning.setVisible(p.auto_f0)

    def set_voice(self, description: dict[str, Any]) -> None:
        """Enable the controls the loaded voice uses (formant: built-in voice; mix ratio, noise: SoVITS)."""
        kind = description.get("kind", "WorldVoice")
        world = kind in FORMANT_VOICES
        self.formant.setEnabled(world)
        self.mix_ratio.setEnabled(not world)
        self.noise_scale.setEnabled(not world)
        self.auto_f0.setEnabled(not world)

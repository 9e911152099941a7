"""Timing controls (block, crossfade, extra context) and the latency they imply.

Before starting, the latency shown is the algorithmic part computed from the block layout
(:mod:`rtsvc.engine.layout`) for the loaded voice; once running, it is the controller's reported
breakdown including the devices' own latency.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QWidget

from rtsvc.engine.layout import LATENCY_DEFINITIONS, latency_breakdown, make_layout
from rtsvc.engine.params import LiveParams
from rtsvc.engine.status import EngineStatus
from rtsvc.gui.bridge import ControllerBridge
from rtsvc.gui.form import double_spin, on_change, quiet_set

#: Voice rate / hop assumed before a voice reports its own (the built-in voice's).
DEFAULT_VOICE_RATE, DEFAULT_HOP = 44100, 220


def preview_latency(params: LiveParams, voice: dict[str, Any] | None) -> dict[str, float]:
    """Latency terms (ms) of ``params`` for a voice description, devices at the voice rate
    (or ``params.sample_rate``) and device latency unknown (0)."""
    voice = voice or {}
    rate = int(voice.get("sample_rate") or DEFAULT_VOICE_RATE)
    hop = int(voice.get("hop_length") or DEFAULT_HOP)
    device_rate = params.sample_rate or rate
    layout = make_layout(params, rate, hop, device_rate, device_rate)
    d = latency_breakdown(layout).to_dict()
    d.pop("definitions")
    return d


def latency_text(terms: dict[str, float], measured: bool) -> str:
    algo = terms.get("algorithmic_ms", 0.0)
    if not measured:
        return f"{algo:.0f} ms algorithmic + device latency (shown once started)"
    dev = terms.get("device_input_ms", 0.0) + terms.get("device_output_ms", 0.0)
    return f"{terms.get('total_ms', algo + dev):.0f} ms total = {algo:.0f} ms algorithmic + {dev:.0f} ms device"


class TimingPanel(QGroupBox):
    """block_ms, crossfade_ms, extra_context_ms and the latency label."""

    def __init__(self, bridge: ControllerBridge, parent: QWidget | None = None) -> None:
        super().__init__("Timing", parent)
        self.bridge = bridge
        form = QFormLayout(self)
        self.block = double_spin(10, 1000, 5, 0, " ms", "audio per block: bigger is safer on a slow machine, smaller is quicker")
        self.crossfade = double_spin(0, 100, 1, 0, " ms", "crossfade between blocks (hides seams)")
        self.extra_context = double_spin(0, 2000, 10, 0, " ms", "past audio the voice sees with each block (better quality, more CPU)")
        self._fields = {"block_ms": self.block, "crossfade_ms": self.crossfade, "extra_context_ms": self.extra_context}
        form.addRow("Block", self.block)
        form.addRow("Crossfade", self.crossfade)
        form.addRow("Extra context", self.extra_context)
        self.latency = QLabel()
        self.latency.setWordWrap(True)
        form.addRow("Latency", self.latency)
        for name, widget in self._fields.items():
            on_change(widget, lambda v, n=name: self.bridge.update({n: v}))
        bridge.params_changed.connect(self.show_params)
        bridge.status_changed.connect(self.show_status)
        self.show_params(bridge.params)

    def show_params(self, p: LiveParams) -> None:
        for name, widget in self._fields.items():
            quiet_set(widget, getattr(p, name))
        self._refresh(self.bridge.last_status, p)

    def show_status(self, status: EngineStatus) -> None:
        self._refresh(status, self.bridge.params)

    def _refresh(self, status: EngineStatus, params: LiveParams) -> None:
        measured = status.running and bool(status.latency)
        terms = dict(status.latency) if measured else preview_latency(params, status.voice)
        terms.pop("definitions", None)
        self.latency.setText(latency_text(terms, measured))
        self.latency.setToolTip("\n".join(
            f"{name.removesuffix('_ms').replace('_', ' ')}: {terms[name]:.1f} ms ({LATENCY_DEFINITIONS[name]})"
            for name in LATENCY_DEFINITIONS if name in terms
        ))

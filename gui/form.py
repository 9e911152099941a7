"""Small helpers for building the panels' forms and reflecting params without echo.

Widgets never compute anything: a user edit becomes exactly one ``bridge.update({field: value})``;
a params change (from anywhere) is written back into the widgets with their signals blocked, so
it never issues another update.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import QAbstractButton, QAbstractSlider, QComboBox, QDoubleSpinBox, QSpinBox, QWidget


def quiet_set(widget: QWidget, value: Any) -> None:
    """Show ``value`` in ``widget`` without emitting its change signals."""
    with QSignalBlocker(widget):
        if isinstance(widget, (QDoubleSpinBox, QSpinBox, QAbstractSlider)):
            widget.setValue(value)
        elif isinstance(widget, QAbstractButton):
            widget.setChecked(bool(value))
        elif isinstance(widget, QComboBox):
            i = widget.findData(value)
            widget.setCurrentIndex(i if i >= 0 else widget.findText(str(value)))
        else:
            raise TypeError(f"quiet_set does not know {type(widget).__name__}")


def double_spin(lo: float, hi: float, step: float, decimals: int, suffix: str, tip: str) -> QDoubleSpinBox:
    """A spin box that reports only finished edits (typing "250" is one change, not three)."""
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setSuffix(suffix)
    box.setKeyboardTracking(False)
    box.setToolTip(tip)
    return box


def int_spin(lo: int, hi: int, suffix: str, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setSuffix(suffix)
    box.setKeyboardTracking(False)
    box.setToolTip(tip)
    return box


def on_change(widget: QWidget, send: Callable[[Any], None]) -> None:
    """Call ``send(new value)`` once per user change of a spin box, slider, check box or combo."""
    if isinstance(widget, (QDoubleSpinBox, QSpinBox, QAbstractSlider)):
        widget.valueChanged.connect(send)
    elif isinstance(widget, QAbstractButton):
        widget.toggled.connect(send)
    elif isinstance(widget, QComboBox):
        widget.currentIndexChanged.connect(lambda _i: send(widget.currentData()))
    else:
        raise TypeError(f"on_change does not know {type(widget).__name__}")

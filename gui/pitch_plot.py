"""A small scrolling plot of input pitch vs output pitch (semitones on a MIDI-note scale)."""

from __future__ import annotations

import math
from collections import deque

from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

#: Points kept (one per status update).
PLOT_HISTORY = 200
#: Vertical range of the plot as MIDI notes (C2 = 36 .. C6 = 84).
NOTE_LOW, NOTE_HIGH = 36.0, 84.0

INPUT_COLOUR = QColor("#4a7bd0")
OUTPUT_COLOUR = QColor("#e07b2a")


def hz_to_note(hz: float) -> float | None:
    """Frequency in Hz -> MIDI note number (A4 = 440 Hz = 69); None for unvoiced (<= 0 or NaN)."""
    if hz is None or not math.isfinite(hz) or hz <= 0:
        return None
    return 69.0 + 12.0 * math.log2(hz / 440.0)


class PitchPlot(QWidget):
    """Scrolls left; ``add(input_hz, output_hz)`` appends one point of each line (0 = unvoiced)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.input_notes: deque[float | None] = deque(maxlen=PLOT_HISTORY)
        self.output_notes: deque[float | None] = deque(maxlen=PLOT_HISTORY)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("pitch: input (blue) and output (orange), C2..C6")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt name
        return QSize(300, 90)

    def add(self, input_hz: float, output_hz: float) -> None:
        self.input_notes.append(hz_to_note(input_hz))
        self.output_notes.append(hz_to_note(output_hz))
        self.update()

    def clear(self) -> None:
        self.input_notes.clear()
        self.output_notes.clear()
        self.update()

    def _path(self, notes: deque) -> QPainterPath:
        path = QPainterPath()
        w, h = self.width(), self.height()
        pen_down = False
        for i, note in enumerate(notes):
            if note is None:
                pen_down = False
                continue
            x = w * (i + PLOT_HISTORY - len(notes)) / (PLOT_HISTORY - 1)
            y = h * (1.0 - (min(max(note, NOTE_LOW), NOTE_HIGH) - NOTE_LOW) / (NOTE_HIGH - NOTE_LOW))
            if pen_down:
                path.lineTo(QPointF(x, y))
            else:
                path.moveTo(QPointF(x, y))
                pen_down = True
        return path

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt name
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), self.palette().base())
        grid = QPen(self.palette().mid().color(), 1, Qt.PenStyle.DotLine)
        p.setPen(grid)
        for note in range(int(NOTE_LOW) + 12, int(NOTE_HIGH), 12):  # every C
            y = self.height() * (1.0 - (note - NOTE_LOW) / (NOTE_HIGH - NOTE_LOW))
            p.drawLine(0, int(y), self.width(), int(y))
            p.drawText(2, int(y) - 2, f"C{note // 12 - 1}")
        p.setPen(QPen(INPUT_COLOUR, 1.5))
        p.drawPath(self._path(self.input_notes))
        p.setPen(QPen(OUTPUT_COLOUR, 1.5))
        p.drawPath(self._path(self.output_notes))
        p.setPen(self.palette().text().color())
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        p.end()

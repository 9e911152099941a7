"""A level meter: a horizontal bar from METER_FLOOR_DB to 0 dBFS with a peak-hold tick."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

#: Bottom of the meter scale (dBFS); anything quieter shows an empty bar.
METER_FLOOR_DB = -60.0
#: Levels at or above this (dBFS) are drawn in the warning colour.
METER_WARN_DB = -6.0
#: Levels at or above this (dBFS) are drawn in the clip colour.
METER_CLIP_DB = -1.0
#: How fast the peak-hold tick falls (dB per update).
PEAK_FALL_DB = 1.5

_GREEN, _YELLOW, _RED = QColor("#3fa34d"), QColor("#e0b020"), QColor("#d23c3c")


class LevelMeter(QWidget):
    """Shows one level in dBFS (``set_level``); the text reads the value, e.g. "-18.0 dB"."""

    def __init__(self, label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = label
        self.level_db = METER_FLOOR_DB
        self.peak_db = METER_FLOOR_DB
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName(f"{label} level meter")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt name
        return QSize(220, 22)

    def set_level(self, level_db: float) -> None:
        """level_db: the latest level in dBFS (-inf/None-like values clamp to the floor)."""
        self.level_db = max(METER_FLOOR_DB, min(0.0, float(level_db)))
        self.peak_db = max(self.level_db, self.peak_db - PEAK_FALL_DB)
        self.setToolTip(f"{self.label}: {self.level_db:.1f} dBFS (peak {self.peak_db:.1f})")
        self.update()

    def fraction(self, db: float) -> float:
        """Bar fill fraction (0..1) for a level in dBFS."""
        return (max(METER_FLOOR_DB, min(0.0, db)) - METER_FLOOR_DB) / -METER_FLOOR_DB

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt name
        p = QPainter(self)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.fillRect(r, self.palette().base())
        colour = _RED if self.level_db >= METER_CLIP_DB else _YELLOW if self.level_db >= METER_WARN_DB else _GREEN
        p.fillRect(QRectF(r.left(), r.top(), r.width() * self.fraction(self.level_db), r.height()), colour)
        x = r.left() + r.width() * self.fraction(self.peak_db)
        p.setPen(self.palette().text().color())
        p.drawLine(int(x), int(r.top()), int(x), int(r.bottom()))
        p.drawRect(r)
        p.drawText(r.adjusted(6, 0, -6, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                   f"{self.label}  {self.level_db:.1f} dB")
        p.end()

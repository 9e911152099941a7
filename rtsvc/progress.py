"""A tiny progress bar on stderr and the end-of-batch summary table (no tqdm needed).

On a terminal the bar redraws in place with ``\\r``; elsewhere (logs, CI) it prints a line at
most every :data:`LOG_STEP_PERCENT` percent so logs stay short.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

BAR_WIDTH = 24
LOG_STEP_PERCENT = 25


class ProgressBar:
    """``label [#####-----]  42%  extra``. update(done, total) in any unit; finish() ends the line."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last_logged = -LOG_STEP_PERCENT
        self.started = time.perf_counter()
        self.drawn = False

    def update(self, done: float, total: float, extra: str = "") -> None:
        frac = 0.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
        pct = int(frac * 100)
        filled = int(frac * BAR_WIDTH)
        line = f"{self.label} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {pct:3d}% {extra}".rstrip()
        if self.tty:
            self.stream.write("\r" + line)
            self.drawn = True
        elif pct - self.last_logged >= LOG_STEP_PERCENT or (pct == 100 and self.last_logged < 100):
            self.stream.write(line + "\n")
            self.last_logged = pct
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
        self.drawn = False


def _fmt(v: float, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def summary_table(rows: list[tuple[str, float, float, str]]) -> str:
    """rows: (file, audio seconds, wall seconds, status) -> aligned text table with a total line."""
    head = ("file", "audio s", "wall s", "RTF", "status")
    body = [(f, _fmt(a), _fmt(w), _fmt(w / a if a else float("nan"), 3), s) for f, a, w, s in rows]
    ok = [(a, w) for _, a, w, s in rows if s == "ok"]
    audio = sum(a for a, _ in ok)
    wall = sum(r[2] for r in rows)
    body.append((f"total ({len(ok)}/{len(rows)} ok)", _fmt(audio), _fmt(wall),
                 _fmt(wall / audio if audio else float("nan"), 3), ""))
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head) - 1)]
    lines = []
    for r in [head, *body]:
        cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, len(widths))] + [r[-1]]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * max(len(x) for x in lines))
    return "\n".join(lines)

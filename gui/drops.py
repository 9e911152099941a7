"""Accepting dropped local files/folders, shared by the voice box and the render tab."""

from __future__ import annotations

from PySide6.QtGui import QDragEnterEvent, QDropEvent


class LocalFileDrops:
    """Mixin for a QWidget that takes dropped local paths; subclasses implement ``paths_dropped``.
    The widget must call ``setAcceptDrops(True)``."""

    def paths_dropped(self, paths: list[str]) -> None:
        raise NotImplementedError

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt name
        local = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if local:
            event.acceptProposedAction()
            self.paths_dropped(local)

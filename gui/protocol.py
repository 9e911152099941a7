"""The controller calls the panel makes, written down as a :class:`typing.Protocol`.

The panel talks to the live engine only through these calls (the same API the websocket server
uses). :class:`rtsvc.engine.controller.Controller` satisfies it.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

from rtsvc.engine.params import LiveParams
from rtsvc.engine.status import EngineStatus


class ControllerLike(Protocol):
    """The subset of :class:`rtsvc.engine.controller.Controller` the panel uses."""

    @property
    def params(self) -> LiveParams: ...

    def update(self, **changes: Any) -> LiveParams: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def load_voice(self, spec: Any, device: str = "cpu") -> Future: ...

    def devices(self) -> dict: ...

    def status(self) -> EngineStatus: ...

    def save_preset(self, name: str) -> Path: ...

    def load_preset(self, name: str) -> LiveParams: ...

    def list_presets(self) -> list[str]: ...

    def delete_preset(self, name: str) -> None: ...

    def rename_preset(self, old: str, new: str) -> Path: ...

    def start_recording(self, path: str | Path) -> Path: ...

    def stop_recording(self) -> Path | None: ...

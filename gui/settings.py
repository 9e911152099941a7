"""Panel settings remembered between runs: a typed dataclass saved as JSON.

Stored in ``<config dir>/gui.json``, the config dir presets use (:func:`rtsvc.presets.config_dir`:
``$RTSVC_CONFIG_DIR`` if set, else ``~/.config/rtsvc``). Unknown keys are refused when
loading (the panel then says so and starts from defaults).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rtsvc.errors import RtsvcError
from rtsvc.presets import config_dir

#: File name inside the config dir.
SETTINGS_FILE = "gui.json"
#: How many recent voices the voice picker remembers.
MAX_RECENT_VOICES = 8
#: The built-in voice's spec string.
WORLD_VOICE = "world"


@dataclass
class GuiSettings:
    """What the panel remembers.

    voice: the last voice ("world" or a model folder / G_*.pth path).
    recent_voices: model paths, newest first (at most MAX_RECENT_VOICES).
    live_params: the last live parameters (LiveParams.to_dict()), re-applied at start-up.
    render_output_dir: the render tab's output folder.
    open_output_when_done: open the output folder after a render.
    window_geometry: Qt's saved geometry, hex-encoded.
    """

    voice: str = WORLD_VOICE
    recent_voices: list[str] = field(default_factory=list)
    live_params: dict[str, Any] = field(default_factory=dict)
    render_output_dir: str = ""
    open_output_when_done: bool = False
    window_geometry: str = ""

    def remember_voice(self, path: str) -> None:
        """Make ``path`` the current voice and put it first in ``recent_voices``."""
        self.voice = path
        if path == WORLD_VOICE:
            return
        self.recent_voices = [path] + [v for v in self.recent_voices if v != path]
        del self.recent_voices[MAX_RECENT_VOICES:]

    @classmethod
    def from_dict(cls, data: Any) -> "GuiSettings":
        if not isinstance(data, dict):
            raise RtsvcError(f"panel settings must be a JSON object, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RtsvcError(f"unknown panel setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}.")
        s = cls(**data)
        if not isinstance(s.recent_voices, list) or not all(isinstance(v, str) for v in s.recent_voices):
            raise RtsvcError("recent_voices must be a list of paths.")
        if not isinstance(s.live_params, dict):
            raise RtsvcError("live_params must be a JSON object.")
        return s


def settings_path(folder: Path | None = None) -> Path:
    return (folder or config_dir()) / SETTINGS_FILE


def load_settings(path: Path) -> GuiSettings:
    """Read settings; a missing file gives defaults. Raises RtsvcError for a broken file."""
    if not path.exists():
        return GuiSettings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RtsvcError(f"{path}: unreadable panel settings ({exc}); starting from defaults.",
                         "delete the file if this repeats.") from None
    try:
        return GuiSettings.from_dict(data)
    except RtsvcError as exc:
        raise RtsvcError(f"{path}: {exc.message} Starting from defaults.") from None


def save_settings(path: Path, settings: GuiSettings) -> None:
    """Write settings atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(asdict(settings), indent=2), encoding="utf-8")
    os.replace(tmp, path)

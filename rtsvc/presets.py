"""Presets: named :class:`rtsvc.engine.params.LiveParams` sets saved as JSON.

They live in the user config dir: ``$RTSVC_CONFIG_DIR`` if set, else ``$XDG_CONFIG_HOME/rtsvc``,
else ``~/.config/rtsvc``; one file per preset under ``presets/<name>.json``, written atomically.
A preset file holds ``{"format": "rtsvc-preset", "version": 1, "params": {...}}``; unknown
parameter names are refused on load (ParameterError naming them).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from rtsvc.atomic import atomic_write
from rtsvc.engine.params import LiveParams
from rtsvc.errors import ParameterError, RtsvcError

PRESET_FORMAT = "rtsvc-preset"
PRESET_VERSION = 1
#: Allowed preset names: letters, digits, space, dot, dash, underscore; 1..64 characters.
NAME_PATTERN = re.compile(r"^[\w][\w .\-]{0,63}$")


def config_dir() -> Path:
    """The user config dir (see module docstring)."""
    env = os.environ.get("RTSVC_CONFIG_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "rtsvc"


class PresetStore:
    """Save/load/list/delete/rename presets in ``root`` (default: ``config_dir() / "presets"``)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else config_dir() / "presets"

    def _path(self, name: str) -> Path:
        if not isinstance(name, str) or not NAME_PATTERN.match(name) or name.strip() != name:
            raise ParameterError(
                f"preset name {name!r} is not allowed; use 1-64 letters, digits, spaces, '.', '-' or '_' "
                "(not starting with a space or dot)."
            )
        return self.root / f"{name}.json"

    def save(self, name: str, params: LiveParams) -> Path:
        """Write (or replace) preset ``name`` atomically."""
        path = self._path(name)
        doc = {"format": PRESET_FORMAT, "version": PRESET_VERSION, "params": params.to_dict()}
        try:
            with atomic_write(path, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=2, sort_keys=True)
        except OSError as exc:
            raise RtsvcError(f"{path}: cannot save the preset ({exc.strerror}).", "check that the config folder is writable.") from None
        return path

    def load(self, name: str) -> LiveParams:
        path = self._path(name)
        if not path.is_file():
            known = ", ".join(self.list()) or "none"
            raise ParameterError(f"no preset named {name!r} (saved presets: {known}).")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ParameterError(f"{path}: not a readable preset ({exc}).", "delete it and save it again.") from None
        if not isinstance(doc, dict) or doc.get("format") != PRESET_FORMAT or not isinstance(doc.get("params"), dict):
            raise ParameterError(f"{path}: not an rtsvc preset (expected format {PRESET_FORMAT!r} with a params object).")
        if doc.get("version") != PRESET_VERSION:
            raise ParameterError(f"{path}: preset version {doc.get('version')!r} is not supported (expected {PRESET_VERSION}).")
        try:
            return LiveParams.from_dict(doc["params"])
        except ParameterError as exc:
            raise ParameterError(f"preset {name!r}: {exc}") from None

    def list(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json") if not p.name.startswith("."))

    def delete(self, name: str) -> None:
        path = self._path(name)
        if not path.is_file():
            raise ParameterError(f"no preset named {name!r} to delete.")
        path.unlink()

    def rename(self, old: str, new: str) -> Path:
        src, dst = self._path(old), self._path(new)
        if not src.is_file():
            raise ParameterError(f"no preset named {old!r} to rename.")
        if dst.exists():
            raise ParameterError(f"a preset named {new!r} already exists; delete it first or pick another name.")
        os.replace(src, dst)
        return dst

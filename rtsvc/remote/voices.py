"""Voices by name, from the configured voice folders only.

A voice folder holds one subfolder per voice, each with ``config.json`` and one or more
``G_<step>.pth`` generator checkpoints (the highest step is used)::

    voices/
      alice/  config.json  G_30000.pth  G_32000.pth
      bob/    config.json  G_800.pth

Names come from a scan of those folders; a requested name is looked up in that scan and never
joined onto a path, so a remote client cannot make the server read any other file. ``world`` is
the built-in WORLD voice. When two folders hold the same name, the earlier folder wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rtsvc.remote.protocol import NAME_PATTERN, NOT_FOUND, RemoteError, validate_name

#: Name of the built-in voice.
BUILTIN_VOICE = "world"
_STEP = re.compile(r"G_(\d+)\.pth")


@dataclass(frozen=True)
class VoiceEntry:
    """One SoVITS voice found in a voice folder."""

    name: str
    model_path: Path
    config_path: Path


def _checkpoint(folder: Path) -> Path | None:
    """The generator checkpoint with the highest step (non-numeric G_*.pth sort first)."""
    candidates = [p for p in folder.glob("G_*.pth") if p.is_file()]
    if not candidates:
        return None

    def order(p: Path) -> tuple[int, int, str]:
        m = _STEP.fullmatch(p.name)
        return (1, int(m.group(1)), p.name) if m else (0, 0, p.name)

    return max(candidates, key=order)


class VoiceLibrary:
    """Lists and resolves voices in ``folders`` (missing folders are simply empty)."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = tuple(Path(f) for f in folders)

    def scan(self) -> dict[str, VoiceEntry]:
        """name -> entry for every usable voice subfolder (hidden or oddly named ones skipped)."""
        found: dict[str, VoiceEntry] = {}
        for folder in self.folders:
            try:
                children = sorted(folder.iterdir())
            except OSError:
                continue
            for child in children:
                name = child.name
                if name in found or name == BUILTIN_VOICE or not NAME_PATTERN.fullmatch(name) or ".." in name:
                    continue
                config = child / "config.json"
                if not child.is_dir() or not config.is_file():
                    continue
                model = _checkpoint(child)
                if model is not None:
                    found[name] = VoiceEntry(name=name, model_path=model, config_path=config)
        return found

    def names(self) -> list[str]:
        """``world`` first, then the folder voices in name order."""
        return [BUILTIN_VOICE, *sorted(self.scan())]

    def resolve(self, name: str) -> str | VoiceEntry:
        """``"world"`` or the :class:`VoiceEntry` called ``name``; refuses paths and unknown names."""
        validate_name("name", name)
        if name == BUILTIN_VOICE:
            return BUILTIN_VOICE
        entry = self.scan().get(name)
        if entry is None:
            where = ", ".join(str(f) for f in self.folders) or "(no voice folders configured)"
            raise RemoteError(NOT_FOUND, f"no voice named {name!r} in the voice folders ({where}); "
                              "list them with the 'voices' op.", "name")
        return entry

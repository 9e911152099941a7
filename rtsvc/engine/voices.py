"""What ``Controller.load_voice`` accepts, and the default loader.

A voice spec is "world" (the built-in WORLD voice) or a SoVITS model: ``(model_path,
config_path)``, ``{"model_path": ..., "config_path": ...}`` or a :class:`VoiceSpec`. Loading runs
off the audio and worker threads; the SoVITS loader module is imported only when needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rtsvc.errors import ModelFileError, ParameterError
from rtsvc.voice import Voice


@dataclass(frozen=True)
class VoiceSpec:
    """kind: "world" or "sovits"; model_path/config_path: SoVITS files; device: "cpu", "cuda"..."""

    kind: str = "world"
    model_path: str | None = None
    config_path: str | None = None
    device: str = "cpu"

    def describe(self) -> str:
        return "world" if self.kind == "world" else f"sovits {Path(str(self.model_path)).name}"


#: Loads a voice for a spec (blocking; the controller calls it in a loader thread).
VoiceLoader = Callable[[VoiceSpec], Voice]


def parse_voice_spec(spec: Any, device: str = "cpu") -> VoiceSpec:
    """Normalise the accepted spec forms; ParameterError for anything else."""
    if isinstance(spec, VoiceSpec):
        return spec
    if isinstance(spec, str) and spec.strip().lower() == "world":
        return VoiceSpec("world", device=device)
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and all(isinstance(p, (str, Path)) for p in spec):
        return VoiceSpec("sovits", str(spec[0]), str(spec[1]), device)
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"kind", "model_path", "config_path", "device"})
        if unknown:
            raise ParameterError(f"unknown voice spec key(s): {', '.join(unknown)}; known: kind, model_path, config_path, device.")
        if spec.get("kind", "sovits" if spec.get("model_path") else "world") == "world":
            return VoiceSpec("world", device=str(spec.get("device", device)))
        if not spec.get("model_path") or not spec.get("config_path"):
            raise ParameterError("a SoVITS voice needs both model_path and config_path.")
        return VoiceSpec("sovits", str(spec["model_path"]), str(spec["config_path"]), str(spec.get("device", device)))
    raise ParameterError(
        f"voice must be \"world\" or a SoVITS (model_path, config_path) pair, got {spec!r}."
    )


def default_voice_loader(spec: VoiceSpec) -> Voice:
    """The built-in WORLD voice, or ``rtsvc.sovits_voice.load_sovits_voice`` (imported lazily)."""
    if spec.kind == "world":
        from rtsvc.world_voice import WorldVoice

        return WorldVoice()
    for label, path in (("model", spec.model_path), ("config", spec.config_path)):
        if not path or not Path(path).is_file():
            raise ModelFileError(f"{path}: SoVITS {label} file not found.", "give the .pth model with -m and its config.json with -c.")
    try:
        from rtsvc.sovits_voice import load_sovits_voice
    except ModuleNotFoundError as exc:
        if exc.name != "rtsvc.sovits_voice":
            raise
        raise ModelFileError("SoVITS voices are not available in this build of rtsvc (rtsvc.sovits_voice is missing).",
                             "use the built-in voice (world) or update rtsvc.") from None
    return load_sovits_voice(spec.model_path, spec.config_path, device=spec.device)

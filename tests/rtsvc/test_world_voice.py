"""The built-in WORLD voice: pitch shift, formant shift, length, level (FCPE measures the output)."""

from __future__ import annotations

import numpy as np
import pytest
from signals import cents, sung_vowel

from rtsvc.params import VoiceParams
from rtsvc.pitch import estimate_f0
from rtsvc.world_voice import WorldVoice

SR = 44100


@pytest.fixture(scope="module")
def voice() -> WorldVoice:
    return WorldVoice()


@pytest.fixture(scope="module")
def vowel() -> np.ndarray:
    return sung_vowel(f0=220.0, seconds=1.5, sr=SR)


def _f0(x: np.ndarray) -> np.ndarray:
    return estimate_f0(x, SR, 512, "fcpe")


@pytest.mark.parametrize("semitones", [12, -7])
def test_pitch_shift_within_25_cents(voice, vowel, semitones):
    y = voice.convert(vowel, VoiceParams(transpose=semitones))
    f_in, f_out = _f0(vowel), _f0(y)
    voiced = (f_in > 0) & (f_out > 0)
    assert voiced.mean() > 0.8
    err = cents(f_out[voiced], f_in[voiced] * 2.0 ** (semitones / 12.0))
    assert abs(np.median(err)) < 25.0, np.median(err)


def _centroid(x: np.ndarray, voiced_frames: np.ndarray) -> float:
    """Mean spectral centroid (Hz) of 2048-sample frames (hop 512) flagged voiced."""
    frames = np.lib.stride_tricks.sliding_window_view(x, 2048)[::512]
    mag = np.abs(np.fft.rfft(frames * np.hanning(2048), axis=1))
    freqs = np.fft.rfftfreq(2048, 1 / SR)
    c = (mag * freqs).sum(1) / np.maximum(mag.sum(1), 1e-9)
    m = min(len(c), len(voiced_frames))
    return float(c[:m][voiced_frames[:m]].mean())


def _band_distance(x: np.ndarray, y: np.ndarray, voiced_frames: np.ndarray) -> float:
    """Spectral-envelope distance (dB): RMS difference of 24 log-spaced band energies (80 Hz-8 kHz)
    of 2048-sample frames (hop 512), averaged over voiced frames. Insensitive to WORLD's phase."""
    def bands(s):
        frames = np.lib.stride_tricks.sliding_window_view(s, 2048)[::512]
        power = np.abs(np.fft.rfft(frames * np.hanning(2048), axis=1)) ** 2
        freqs = np.fft.rfftfreq(2048, 1 / SR)
        edges = np.geomspace(80, 8000, 25)
        return 10 * np.log10(np.stack([power[:, (freqs >= a) & (freqs < b)].sum(1) for a, b in zip(edges[:-1], edges[1:])], 1) + 1e-10)
    a, b = bands(x), bands(y)
    m = min(len(a), len(b), len(voiced_frames))
    d = np.sqrt(((a[:m] - b[:m]) ** 2).mean(1))
    return float(d[voiced_frames[:m]].mean())


def test_formant_shift_raises_centroid_and_zero_shift_is_close(voice, vowel):
    voiced = _f0(vowel) > 0
    base = voice.convert(vowel, VoiceParams())
    up = voice.convert(vowel, VoiceParams(formant=4))
    down = voice.convert(vowel, VoiceParams(formant=-4))
    c_in, c_base, c_up, c_down = (_centroid(s, voiced) for s in (vowel, base, up, down))
    assert c_up > c_base * 1.1 and c_down < c_base * 0.95, (c_down, c_base, c_up)
    # Zero pitch and formant shift: the resynthesis keeps the input's spectrum (WORLD changes the
    # phase, so compare band energies): measured about 2.5 dB for no shift, 7.5 dB for +4 formant.
    d_base = _band_distance(vowel, base, voiced)
    d_up = _band_distance(vowel, up, voiced)
    assert d_base < 4.0, d_base
    assert d_up > d_base + 3.0, (d_base, d_up)
    assert abs(c_base - c_in) / c_in < 0.1


def test_length_level_and_finiteness(voice, vowel):
    for n in (len(vowel), len(vowel) - 333, 5000):
        x = vowel[:n]
        y = voice.convert(x, VoiceParams(transpose=3))
        assert abs(len(y) - n) <= voice.hop_length and np.all(np.isfinite(y))
    y = voice.convert(vowel, VoiceParams())
    rms_in, rms_out = np.sqrt(np.mean(vowel**2)), np.sqrt(np.mean(y**2))
    assert 0.5 < rms_out / rms_in < 2.0, rms_out / rms_in
    assert np.max(np.abs(y)) < 1.0


def test_silence_stays_quiet(voice):
    y = voice.convert(np.zeros(SR // 2, dtype=np.float32), VoiceParams(transpose=5))
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) < 1e-3

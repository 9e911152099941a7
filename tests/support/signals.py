"""Synthetic test signals (importable from any test: ``from signals import ...``)."""

from __future__ import annotations

import numpy as np


def sung_vowel(f0: float = 220.0, seconds: float = 1.5, sr: int = 44100, vibrato_cents: float = 30.0,
               formants: tuple[float, ...] = (700.0, 1200.0, 2600.0), seed: int = 0) -> np.ndarray:
    """A sung-like vowel: harmonics of a vibrato f0 shaped by formant resonances, plus breath noise.

    Returns (samples,) float32 peaking near 0.5, with 20 ms fades.
    """
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f = f0 * 2.0 ** (vibrato_cents / 1200.0 * np.sin(2 * np.pi * 5.0 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = np.zeros(n)
    for k in range(1, int(sr / 2 / (f0 * 1.1))):
        fk = k * f0
        gain = sum(1.0 / (1.0 + ((fk - fm) / (0.12 * fm)) ** 2) for fm in formants) / k ** 0.5
        y += gain * np.sin(k * phase)
    y += 0.003 * np.random.default_rng(seed).standard_normal(n)
    fade = int(0.02 * sr)
    env = np.ones(n)
    env[:fade] = np.linspace(0, 1, fade)
    env[-fade:] = np.linspace(1, 0, fade)
    y *= env
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def sine(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def cents(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1200*log2(a/b) elementwise."""
    return 1200.0 * np.log2(np.asarray(a, dtype=np.float64) / np.asarray(b, dtype=np.float64))

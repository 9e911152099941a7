"""Test data for the training tests: synthesized vowels of two speakers and a tiny content encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

RATE = 44100
#: Formant sets (Hz) of the vowels each speaker "sings".
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (570, 840, 2410))


def vowel(f0: float, formants: tuple[int, ...], seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """A glottal-pulse-like harmonic tone shaped by three formant resonances, with a little vibrato."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    out = np.zeros_like(t)
    for k in range(1, int(8000 / f0)):
        amp = sum(1.0 / (1 + ((k * f0 - f) / 90.0) ** 2) for f in formants) / k**0.5
        out += amp * np.sin(k * phase)
    out += 0.002 * rng.standard_normal(len(t))
    env = np.minimum(1, np.minimum(t, t[-1] - t) / 0.03)
    return (0.3 * out / np.max(np.abs(out)) * env).astype(np.float32)


def write_dataset_raw(raw: Path, clips_per_speaker: int = 4, seconds: float = 1.2) -> None:
    """raw/<speaker>/*.wav for two speakers (low and high voice); names include Unicode."""
    for spk, base in (("alto", 180.0), ("ténor_日本", 110.0)):
        folder = raw / spk
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(clips_per_speaker):
            x = vowel(base * 2 ** (i / 12), VOWELS[i % len(VOWELS)], seconds, seed=i)
            name = f"take {i} é.wav" if i == 0 else f"take_{i}.wav"
            sf.write(folder / name, x, RATE, subtype="PCM_16")


class ProjectedEncoder:
    """The tiny ContentVec fixture (vec256l9 path: 32 dims) lifted to 256 dims by a fixed random
    projection, so a valid vec256l9 config (ssl_dim 256) can be trained without real weights."""

    dim = 256

    def __init__(self, fixture: Path) -> None:
        from rtsvc.encoders import load_content_encoder

        self.inner = load_content_encoder("vec256l9", path=fixture)
        gen = torch.Generator().manual_seed(0)
        self.proj = torch.randn(self.dim, self.inner.dim, generator=gen) / self.inner.dim**0.5

    def encode(self, audio_16k: np.ndarray) -> torch.Tensor:
        return torch.einsum("dc,bct->bdt", self.proj, self.inner.encode(audio_16k))


def projected_encoder(fixture: str) -> ProjectedEncoder:
    return ProjectedEncoder(Path(fixture))

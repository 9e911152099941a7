"""Small voices and signals for the live-engine tests (no model weights, deterministic)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rtsvc.voice import StreamWindow, Voice

VOICE_RATE = 44100
VOICE_HOP = 220


class IdentityVoice(Voice):
    """Returns its input: a voice whose streamed output must equal the offline one exactly."""

    def __init__(self, sample_rate: int = VOICE_RATE, hop_length: int = VOICE_HOP, needs_16k: bool = False):
        self.name = "identity"
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.needs_16k = needs_16k
        self.windows: list[StreamWindow] = []
        self.keep_windows = False

    def convert(self, audio, params, f0=None):
        return np.asarray(audio, dtype=np.float32).copy()

    def convert_window(self, window, params):
        if self.keep_windows:  # the engine reuses its buffers: keep copies
            self.windows.append(StreamWindow(window.audio.copy(), window.audio_16k.copy(), window.f0.copy(),
                                             window.out_samples, window.skip_tail))
        end = len(window.audio) - window.skip_tail
        return window.audio[end - window.out_samples : end].copy()


class FilterVoice(IdentityVoice):
    """A fixed causal FIR filter plus gain (time-invariant: streaming == offline)."""

    TAPS = np.array([0.5, 0.3, -0.2, 0.1, 0.05], dtype=np.float32)

    def convert(self, audio, params, f0=None):
        return np.convolve(audio, self.TAPS)[: len(audio)].astype(np.float32)

    def convert_window(self, window, params):
        y = self.convert(window.audio, params)
        end = len(y) - window.skip_tail
        return y[end - window.out_samples : end]


class JitterVoice(IdentityVoice):
    """Identity, but each window's output is shifted by a pseudo-random 0..max_shift samples
    (like a voice whose waveform phase differs between windows); SOLA must realign it."""

    def __init__(self, max_shift: int):
        super().__init__()
        self.max_shift = max_shift
        self.rng = np.random.default_rng(1)

    def convert_window(self, window, params):
        d = int(self.rng.integers(0, self.max_shift + 1))
        end = len(window.audio) - window.skip_tail - d
        return window.audio[end - window.out_samples : end].copy()


class SleepyVoice(IdentityVoice):
    """Identity that sleeps ``sleep_s`` per window while ``slow`` is True (overload tests)."""

    def __init__(self, sleep_s: float):
        super().__init__()
        self.sleep_s = sleep_s
        self.slow = True
        self.calls = 0

    def convert_window(self, window, params):
        self.calls += 1
        if self.slow:
            time.sleep(self.sleep_s)
        return super().convert_window(window, params)


class FailingVoice(IdentityVoice):
    def convert_window(self, window, params):
        raise RuntimeError("boom")


def zero_f0(audio, sample_rate, hop, method, threshold):
    """A stand-in pitch estimator: all unvoiced."""
    return np.zeros(len(audio) // hop, dtype=np.float32)


def sweep(rate: int, seconds: float, f_start: float = 100.0, f_end: float = 2000.0, level: float = 0.5) -> np.ndarray:
    """Linear sine sweep, (round(seconds * rate),) float32."""
    t = np.arange(round(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * (f_start * t + 0.5 * (f_end - f_start) / seconds * t * t))).astype(np.float32)


@pytest.fixture
def voices():
    """The test voice classes, by name."""
    return {"identity": IdentityVoice, "filter": FilterVoice, "jitter": JitterVoice, "sleepy": SleepyVoice,
            "failing": FailingVoice}


@pytest.fixture
def estimator():
    return zero_f0


@pytest.fixture
def make_sweep():
    return sweep


@pytest.fixture(autouse=True)
def _private_config_dir(tmp_path, monkeypatch):
    """Presets never touch the real user config dir."""
    monkeypatch.setenv("RTSVC_CONFIG_DIR", str(tmp_path / "config"))

"""Cheap fake voices for render tests (importable from any test: ``from render_fakes import ...``)."""

from __future__ import annotations

import numpy as np

from rtsvc.params import VoiceParams
from rtsvc.voice import StreamWindow, Voice


class RecordingVoice(Voice):
    """y = tanh(3 x) * 2^(transpose/12) + a ramp 0..0.01 over the clip + 0.1 x (call number), so
    clip boundaries, padding and crossfades are visible in the output. Records (len(audio), params)."""

    def __init__(self, sample_rate: int = 16000, hop_length: int = 320, speakers: tuple[str, ...] = ("a",)) -> None:
        self.name = "recording"
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.speakers = speakers
        self.calls: list[tuple[int, VoiceParams]] = []

    def convert(self, audio: np.ndarray, params: VoiceParams, f0: np.ndarray | None = None) -> np.ndarray:
        self.calls.append((len(audio), params))
        ramp = np.linspace(0.0, 0.01, len(audio), dtype=np.float32) + np.float32(0.1 * (len(self.calls) % 5))
        return (np.tanh(3.0 * audio) * 2.0 ** (params.transpose / 12.0) + ramp).astype(np.float32)

    def convert_window(self, window: StreamWindow, params: VoiceParams) -> np.ndarray:
        y = self.convert(window.audio, params)
        end = len(y) - window.skip_tail
        return y[end - window.out_samples : end]


class GainVoice(RecordingVoice):
    """y = 0.5 x (position independent: streaming and offline agree)."""

    def convert(self, audio: np.ndarray, params: VoiceParams, f0: np.ndarray | None = None) -> np.ndarray:
        self.calls.append((len(audio), params))
        return (0.5 * np.asarray(audio, dtype=np.float32)).astype(np.float32)


class FlatVoice(RecordingVoice):
    """Returns a 330 Hz sine of constant amplitude 0.3, whatever the input's loudness."""

    def convert(self, audio: np.ndarray, params: VoiceParams, f0: np.ndarray | None = None) -> np.ndarray:
        self.calls.append((len(audio), params))
        t = np.arange(len(audio)) / self.sample_rate
        return (0.3 * np.sin(2 * np.pi * 330.0 * t)).astype(np.float32)


class MixVoice(RecordingVoice):
    """Accepts per-frame speaker weights; output = weight of speaker 0 per sample (for checks)."""

    def __init__(self, sample_rate: int = 16000, hop_length: int = 320) -> None:
        super().__init__(sample_rate, hop_length, speakers=("alto", "tenor"))
        self.weights: list[np.ndarray] = []

    def convert_with_speaker_weights(self, audio: np.ndarray, params: VoiceParams, weights: np.ndarray,
                                     f0: np.ndarray | None = None) -> np.ndarray:
        assert weights.shape == (len(audio) // self.hop_length, len(self.speakers))
        self.weights.append(weights)
        per_sample = np.repeat(weights[:, 0], self.hop_length)
        out = np.zeros(len(audio), np.float32)
        out[: len(per_sample)] = per_sample
        if len(per_sample) < len(audio) and len(per_sample):
            out[len(per_sample):] = per_sample[-1]
        return out


class NaNVoice(RecordingVoice):
    """A broken voice: returns NaN."""

    def convert(self, audio: np.ndarray, params: VoiceParams, f0: np.ndarray | None = None) -> np.ndarray:
        return np.full(len(audio), np.nan, np.float32)

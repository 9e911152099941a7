"""Test support for the panel tests: a tiny echo voice, a constant f0 estimator, a loader.

The engine runs with :class:`EchoVoice` (its input at half gain, 16 kHz, hop 160) and a constant
f0 estimator, so the tests exercise the real controller, worker and virtual-clock driver in
milliseconds. SoVITS model folders: a generator file holding ``GOOD_MODEL`` loads a two-speaker
echo voice; anything else goes through rtsvc's real loader (so a corrupt G file fails the way it
fails for users).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtsvc.engine.voices import VoiceSpec, default_voice_loader
from rtsvc.params import VoiceParams
from rtsvc.voice import StreamWindow, Voice

TEST_RATE = 16000
TEST_HOP = 160
#: Contents of a generator file that the test loader accepts.
GOOD_MODEL = b"GOOD test model"
#: Test audio: a 220 Hz tone, 1 s.
TEST_SECONDS = 1.0


class EchoVoice(Voice):
    """Returns its input at half gain (enough to see levels move through the real engine)."""

    def __init__(self, name: str, speakers: tuple[str, ...]) -> None:
        self.name = name
        self.sample_rate = TEST_RATE
        self.hop_length = TEST_HOP
        self.speakers = speakers
        self.closed = False

    def convert(self, audio: np.ndarray, params: VoiceParams, f0: np.ndarray | None = None) -> np.ndarray:
        return (0.5 * audio).astype(np.float32)

    def convert_window(self, window: StreamWindow, params: VoiceParams) -> np.ndarray:
        end = len(window.audio) - window.skip_tail
        return (0.5 * window.audio[end - window.out_samples : end]).astype(np.float32)

    def close(self) -> None:
        self.closed = True


def constant_f0(audio: np.ndarray, sample_rate: int, hop: int, method: str, threshold: float) -> np.ndarray:
    return np.full(len(audio) // hop, 220.0, dtype=np.float32)


def loader_for_tests(spec: VoiceSpec) -> Voice:
    """"world" -> a one-speaker EchoVoice; a GOOD_MODEL generator -> a two-speaker one; else rtsvc's loader."""
    if spec.kind == "world":
        return EchoVoice("world", ("world",))
    if Path(spec.model_path).is_file() and Path(spec.model_path).read_bytes() == GOOD_MODEL:
        return EchoVoice(Path(spec.model_path).parent.name, ("alto", "tenor"))
    return default_voice_loader(spec)


def tone(seconds: float = TEST_SECONDS, rate: int = TEST_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)


def make_model_folder(root: Path, name: str, generator: bytes) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model": {}, "data": {}, "spk": {"alto": 0, "tenor": 1}}')
    (folder / "G_100.pth").write_bytes(generator)
    return folder

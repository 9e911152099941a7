"""The voice interface: what ``render``, the live engine, the panel and remote control talk to.

A voice turns mono audio at its own sample rate into converted audio at the same rate. Two
implementations exist: the built-in WORLD voice (:mod:`rtsvc.world_voice`, no downloaded weights)
and the SoVITS voice (:mod:`rtsvc.sovits_voice`). Callers never care which one is loaded.

Frame grid (shared by both voices and the live engine)::

    audio   |----hop----|----hop----|----hop----| ... (len(audio) samples at sample_rate)
    f0      f0[0]       f0[1]       f0[2]         len(f0) == len(audio) // hop_length
            ^ frame i starts at sample i * hop_length

Offline: :meth:`Voice.convert` takes a whole clip. Live: the engine keeps a rolling window of
input (at ``sample_rate`` and, for content encoders, at 16 kHz) plus a rolling f0 cache on the
voice's frame grid, and calls :meth:`Voice.convert_window`, which returns only the newest
``out_samples`` samples that end ``skip_tail`` samples before the end of the window.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtsvc.params import VoiceParams

#: Content encoders run at this rate (ContentVec/HuBERT, 50 frames/s with hop 320).
ENCODER_RATE = 16000


@dataclass
class StreamWindow:
    """One live block's view of the input, oldest sample first.

    audio: (n,) float32 at the voice's sample_rate; n is a multiple of hop_length.
    audio_16k: (m,) float32, the same span at 16 kHz (empty if the voice has no content encoder).
    f0: (n // hop_length,) float32 raw input f0 in Hz on the voice's frame grid, 0 = unvoiced
        (not transposed; the voice applies ``params.transpose``).
    out_samples: samples to return.
    skip_tail: samples at the end of the window that are right context only (not returned).
    start_frame: absolute index (on the voice's frame grid, counted from the stream's start) of
        the frame at ``audio[0]``, or None when unknown. The live engine sets it so a voice may
        keep per-stream analysis caches (consecutive blocks of one stream have increasing
        values; a restarted stream starts over). Voices must work without it.
    early: what :meth:`Voice.begin_window` returned for this window's audio, or None (nothing
        was started early; the voice does all its work in ``convert_window``).
    """

    audio: np.ndarray
    audio_16k: np.ndarray
    f0: np.ndarray
    out_samples: int
    skip_tail: int = 0
    start_frame: int | None = None
    early: Any = None


class Voice(ABC):
    """A loaded voice. Subclasses set the attributes in ``__init__``.

    name: what to show the user ("world", or the model folder's name).
    sample_rate: rate of the audio it takes and returns, Hz.
    hop_length: samples per f0/feature frame at ``sample_rate``.
    needs_16k: True if :class:`StreamWindow.audio_16k` must be filled.
    speakers: speaker names, in id order (one entry for single-speaker voices).
    """

    name: str
    sample_rate: int
    hop_length: int
    needs_16k: bool = False
    speakers: tuple[str, ...] = ("default",)

    @abstractmethod
    def convert(self, audio: np.ndarray, params: VoiceParams, f0: np.ndarray | None = None) -> np.ndarray:
        """Convert a whole clip.

        audio: (n,) float32 at ``sample_rate``. f0: optional precomputed raw f0 on the frame grid
        ((n // hop_length,) Hz); estimated with ``params.f0_method`` when None.
        Returns (n,) float32 at ``sample_rate`` (same length as the input).
        """

    @abstractmethod
    def convert_window(self, window: StreamWindow, params: VoiceParams) -> np.ndarray:
        """Convert one live window; returns (window.out_samples,) float32 at ``sample_rate``:
        the samples ending ``window.skip_tail`` samples before the window's end."""

    def begin_window(self, audio: np.ndarray, audio_16k: np.ndarray) -> Any:
        """Start the part of a live window's work that needs only its audio; the engine calls it
        before it estimates the window's pitch and passes the result back as
        :attr:`StreamWindow.early`. A voice whose networks run asynchronously (on a GPU) queues
        them here, so they run while the engine waits for pitch. audio, audio_16k: as in
        :class:`StreamWindow` (the caller's buffers: read them now, do not keep them).
        Default: None (everything happens in :meth:`convert_window`)."""
        return None

    def warm_up(self, window_samples: int, out_samples: int, skip_tail: int = 0) -> None:
        """Pay one-off costs (GPU kernels and plans, allocator pools, first-run graph set-up)
        before the first live block of this window size, so it is not a late block. The engine
        calls it off the worker thread before a stream opens or a loaded voice is switched in.
        Default: nothing (voices that start cheaply)."""

    def describe(self) -> dict[str, Any]:
        """Facts for status displays (kind, rate, hop, speakers, backend)."""
        return {
            "name": self.name,
            "kind": type(self).__name__,
            "sample_rate": self.sample_rate,
            "hop_length": self.hop_length,
            "speakers": list(self.speakers),
        }

    def close(self) -> None:
        """Release resources (GPU memory, sessions). The voice is unusable afterwards."""

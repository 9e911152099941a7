"""The slice-wise conversion of one file (what so-vits-svc's ``slice_inference`` means, our code).

Per file (source rate ``sr_in``, voice rate ``sr_v``)::

    source --slicer (envelope only)--> chunks: voiced | silent
    silent chunk  -> ceil(n * sr_v / sr_in) zeros                        ("keep silence")
    voiced chunk  -> forced clips of clip_seconds (0 = whole chunk), each but the first starting
                     linear_gradient seconds early (overlap for the crossfade)
    each clip     -> pad_seconds of zeros both sides -> resample to sr_v -> voice.convert
                  -> loudness envelope mix (lea < 1) -> drop the padding -> fit to
                     ceil(len * sr_v / sr_in) samples (centre zero-pad / cut the end)
    clip k > 0    -> crossfade with the previous clip's tail over lg_r = lg * lgr samples,
                     after discarding (lg - lg_r) / 2 samples on each side of the seam

Everything is pushed through a sink in order, holding back only the crossfade tail, so memory is
bounded by the longest clip. ``max_clip_seconds`` forces clips in long files.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rtsvc.audio_io import resample
from rtsvc.errors import ParameterError, RtsvcError
from rtsvc.loudness import mix_loudness_envelope
from rtsvc.mixing import MixTrack, SupportsFrameSpeakerMix
from rtsvc.params import VoiceParams
from rtsvc.slicer import Chunk, FrameGrid, SlicerConfig, chunks_from_envelope, rms_envelope
from rtsvc.voice import Voice

#: so-vits-svc inference defaults.
DEFAULT_PAD_SECONDS = 0.5
DEFAULT_LINEAR_GRADIENT_RETAIN = 0.75

#: read(start, stop) -> (stop - start,) float32 mono source samples, zeros outside the file.
ReadFn = Callable[[int, int], np.ndarray]
#: Receives output blocks at the voice rate, in order.
SinkFn = Callable[[np.ndarray], None]
#: progress(done_source_samples, total_source_samples)
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class RenderOptions:
    """Slicing and assembly settings (seconds unless stated; so-vits-svc defaults).

    pad_seconds: silence added around each clip before conversion (``-p``).
    slice_db: silence threshold of the slicer in dB (``-sd``).
    clip_seconds: forced clip length, 0 = one clip per voiced chunk (``-cl``).
    linear_gradient: crossfade between forced clips (``-lg``).
    linear_gradient_retain: share of the crossfade actually blended, (0, 1] (``-lgr``).
    loudness_envelope_adjustment: 1 = model's envelope .. 0 = input's (``-lea``).
    max_clip_seconds: cap on clip length when clip_seconds is 0 (None = no cap; long files).
    """

    pad_seconds: float = DEFAULT_PAD_SECONDS
    slice_db: float = -40.0
    clip_seconds: float = 0.0
    linear_gradient: float = 0.0
    linear_gradient_retain: float = DEFAULT_LINEAR_GRADIENT_RETAIN
    loudness_envelope_adjustment: float = 1.0
    max_clip_seconds: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "pad_seconds": (self.pad_seconds, 0.0, 10.0),
            "clip_seconds": (self.clip_seconds, 0.0, 3600.0),
            "linear_gradient": (self.linear_gradient, 0.0, 60.0),
            "loudness_envelope_adjustment": (self.loudness_envelope_adjustment, 0.0, 1.0),
        }
        for name, (v, lo, hi) in checks.items():
            if not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                raise ParameterError(f"{name} must be in [{lo:g}, {hi:g}], got {v!r}.")
        if not 0.0 < self.linear_gradient_retain <= 1.0:
            raise ParameterError(f"linear_gradient_retain must be in (0, 1], got {self.linear_gradient_retain!r}.")
        clip = self.effective_clip_seconds
        if self.linear_gradient > 0 and clip and self.linear_gradient >= clip:
            raise ParameterError(f"linear_gradient ({self.linear_gradient:g} s) must be shorter than the clip length "
                                 f"({clip:g} s).", "lower -lg or raise -cl.")
        if self.max_clip_seconds is not None and self.max_clip_seconds <= 0:
            raise ParameterError(f"max_clip_seconds must be > 0, got {self.max_clip_seconds!r}.")
        SlicerConfig(threshold_db=self.slice_db)  # validates slice_db

    @property
    def effective_clip_seconds(self) -> float:
        if self.clip_seconds > 0:
            return self.clip_seconds if self.max_clip_seconds is None else min(self.clip_seconds, self.max_clip_seconds)
        return self.max_clip_seconds or 0.0


def out_length(n_in: int, sr_in: int, sr_out: int) -> int:
    """ceil(n_in / sr_in * sr_out), exactly."""
    return -(-n_in * sr_out // sr_in)


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Centre zero-pad (as so-vits-svc's pad_array) or cut the end so that len == n."""
    if len(y) >= n:
        return y[:n]
    left = (n - len(y)) // 2
    return np.concatenate([np.zeros(left, np.float32), y, np.zeros(n - len(y) - left, np.float32)])


def plan_chunks(read: ReadFn, n_samples: int, sample_rate: int, options: RenderOptions) -> list[Chunk]:
    """Slice the source (envelope only, block-wise)."""
    grid = FrameGrid.for_rate(sample_rate, SlicerConfig(threshold_db=options.slice_db))
    return chunks_from_envelope(rms_envelope(read, n_samples, grid), n_samples, grid)


def clip_spans(chunk: Chunk, sr_in: int, options: RenderOptions) -> list[tuple[int, int]]:
    """Source sample spans of the forced clips of a voiced chunk (overlapping by the crossfade)."""
    clip = options.effective_clip_seconds
    per = int(clip * sr_in)
    if per <= 0 or chunk.length <= per:
        return [(chunk.start, chunk.end)]
    lg = int(options.linear_gradient * sr_in)
    spans = []
    for i in range(0, chunk.length, per):
        begin = i - lg if i - lg >= 0 else i
        spans.append((chunk.start + begin, chunk.start + min(i + per, chunk.length)))
    return spans


class _Assembler:
    """Concatenates converted clips with so-vits-svc's linear crossfade; holds back only the tail."""

    def __init__(self, sink: SinkFn, lg: int, retain: float) -> None:
        self.sink = sink
        self.lg = lg
        self.r = int(lg * retain)
        self.c_l = (lg - self.r) // 2
        self.c_r = lg - self.r - self.c_l
        self.tail = np.zeros(0, np.float32)
        self.ramp = np.linspace(0.0, 1.0, self.r).astype(np.float32) if self.r else np.zeros(0, np.float32)

    def add(self, y: np.ndarray, join: bool) -> None:
        y = np.asarray(y, dtype=np.float32)
        if join and self.lg and len(self.tail) >= self.r + self.c_r and len(y) >= self.c_l + self.r:
            keep = len(self.tail) - (self.r + self.c_r)
            mixed = self.tail[keep : keep + self.r] * (1.0 - self.ramp) + y[self.c_l : self.c_l + self.r] * self.ramp
            self.tail = np.concatenate([self.tail[:keep], mixed])
            y = y[self.c_l + self.r :]
        self.tail = np.concatenate([self.tail, y])
        hold = self.lg  # the next clip may blend into this much of the tail
        if len(self.tail) > hold:
            self.sink(self.tail[: len(self.tail) - hold])
            self.tail = self.tail[len(self.tail) - hold :]

    def finish(self) -> None:
        if len(self.tail):
            self.sink(self.tail)
        self.tail = np.zeros(0, np.float32)


def _convert(voice: Voice, x: np.ndarray, params: VoiceParams, weights: np.ndarray | None) -> np.ndarray:
    if weights is None:
        return voice.convert(x, params)
    return voice.convert_with_speaker_weights(x, params, weights)  # type: ignore[attr-defined]


def render_stream(voice: Voice, read: ReadFn, n_samples: int, sr_in: int, params: VoiceParams,
                  options: RenderOptions, sink: SinkFn, progress: ProgressFn | None = None,
                  mix_track: MixTrack | None = None) -> int:
    """Convert one source; returns the number of voice-rate samples sent to ``sink``.

    read: source reader at ``sr_in`` (mono float32). Raises RtsvcError if the voice returns
    non-finite samples or the wrong length.
    """
    sr_v = voice.sample_rate
    if mix_track is not None and not isinstance(voice, SupportsFrameSpeakerMix):
        raise RtsvcError(f"voice '{voice.name}' cannot follow a dynamic mix track (no per-frame speaker weights).")
    track_w = mix_track.frame_weights(max(1, out_length(n_samples, sr_in, sr_v) // voice.hop_length)) if mix_track else None
    written = 0

    def counted(block: np.ndarray) -> None:
        nonlocal written
        written += len(block)
        sink(block)

    lg_out = int(options.linear_gradient * sr_v) if options.effective_clip_seconds else 0
    asm = _Assembler(counted, lg_out, options.linear_gradient_retain)
    pad_in, pad_out = int(sr_in * options.pad_seconds), int(sr_v * options.pad_seconds)
    for chunk in plan_chunks(read, n_samples, sr_in, options):
        if chunk.silent:
            asm.add(np.zeros(out_length(chunk.length, sr_in, sr_v), np.float32), join=False)
        else:
            for k, (a, b) in enumerate(clip_spans(chunk, sr_in, options)):
                silence = np.zeros(pad_in, np.float32)
                x = resample(np.concatenate([silence, read(a, b), silence]), sr_in, sr_v)
                weights = None
                if track_w is not None:
                    first = out_length(a, sr_in, sr_v) // voice.hop_length - pad_out // voice.hop_length
                    idx = np.clip(np.arange(len(x) // voice.hop_length) + first, 0, len(track_w) - 1)
                    weights = track_w[idx]
                y = np.asarray(_convert(voice, x, params, weights), dtype=np.float32)
                if len(y) != len(x) or not np.all(np.isfinite(y)):
                    raise RtsvcError(f"voice '{voice.name}' returned {len(y)} samples for {len(x)} or non-finite values.")
                if options.loudness_envelope_adjustment < 1.0:
                    y = mix_loudness_envelope(x, y, sr_v, options.loudness_envelope_adjustment)
                if pad_out:
                    y = y[pad_out : len(y) - pad_out]
                asm.add(fit_length(y, out_length(b - a, sr_in, sr_v)), join=k > 0)
        if progress is not None:
            progress(chunk.end, n_samples)
    asm.finish()
    return written

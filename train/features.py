"""Stage 3, ``features``: per-clip training inputs, cached beside each clip.

For ``dataset/<speaker>/<clip>.wav`` (mono, the config's sampling rate) it writes, atomically::

    <clip>.wav.soft.npy  (ssl_dim, frames_50hz) float32  content features at 50 frames/s
    <clip>.wav.f0.npy    (frames,) float32 Hz, 0 = unvoiced   frames = samples // hop_length
    <clip>.wav.vol.npy   (frames,) float32 RMS (only when model.vol_embedding)
    <clip>.wav.spec.npy  (filter_length // 2 + 1, frames) float32 linear magnitude

A clip whose files all exist is skipped (resumable). Work is spread over ``workers`` processes,
each loading its own content encoder. All files are plain .npy (read with allow_pickle=False).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rtsvc.audio_io import read_audio, resample
from rtsvc.errors import RtsvcError
from rtsvc.progress import ProgressBar

from .mel import linear_spectrogram

#: Content encoders take 16 kHz audio.
ENCODER_RATE = 16000
SUFFIXES = ("soft", "f0", "vol", "spec")


@dataclass(frozen=True)
class FeatureSettings:
    """What the features of one dataset depend on (from config.json)."""

    sampling_rate: int
    hop_length: int
    filter_length: int
    win_length: int
    vol_embedding: bool
    ssl_dim: int
    f0_method: str = "fcpe"
    f0_threshold: float = 0.05
    device: str = "cpu"


def cache_path(clip: Path, kind: str) -> Path:
    """``<clip>.<kind>.npy`` for kind in :data:`SUFFIXES`."""
    return clip.with_name(f"{clip.name}.{kind}.npy")


def needed_kinds(settings: FeatureSettings) -> tuple[str, ...]:
    return ("soft", "f0", "vol", "spec") if settings.vol_embedding else ("soft", "f0", "spec")


def is_complete(clip: Path, settings: FeatureSettings) -> bool:
    return all(cache_path(clip, k).is_file() for k in needed_kinds(settings))


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    os.replace(tmp, path)


def frame_volume(audio: np.ndarray, hop_length: int) -> np.ndarray:
    """so-vits-svc 4.1-Stable loudness per frame: (len // hop,) float32."""
    from rtsvc.models.loudness import frame_loudness

    return frame_loudness(torch.from_numpy(audio), hop_length).numpy()


def clip_features(clip: Path, settings: FeatureSettings, encoder) -> dict[str, np.ndarray]:
    """Compute every feature of one clip (does not write). ``encoder`` has encode(audio_16k) -> (1, dim, n)."""
    from rtsvc.pitch import estimate_f0

    audio = read_audio(clip, target_rate=settings.sampling_rate).audio
    frames = len(audio) // settings.hop_length
    if frames < 2:
        raise RtsvcError(f"{clip}: only {len(audio)} samples, too short for training (needs at least 2 frames).")
    out: dict[str, np.ndarray] = {}
    soft = encoder.encode(resample(audio, settings.sampling_rate, ENCODER_RATE))
    soft = soft.detach().to("cpu", torch.float32).numpy()[0]
    if soft.shape[0] != settings.ssl_dim:
        raise RtsvcError(
            f"the content encoder gives {soft.shape[0]}-dim features but config.json has ssl_dim {settings.ssl_dim}.",
            "use the speech encoder named in config.json (model.speech_encoder), or regenerate the config.",
        )
    out["soft"] = soft
    out["f0"] = estimate_f0(
        audio, settings.sampling_rate, settings.hop_length, settings.f0_method, threshold=settings.f0_threshold,
        n_frames=frames, device=settings.device,
    ).astype(np.float32)
    if settings.vol_embedding:
        out["vol"] = frame_volume(audio, settings.hop_length)[:frames]
    spec = linear_spectrogram(torch.from_numpy(audio)[None], settings.filter_length, settings.hop_length, settings.win_length)
    out["spec"] = spec[0].numpy()
    return out


def write_clip(clip: Path, settings: FeatureSettings, encoder) -> None:
    for kind, array in clip_features(clip, settings, encoder).items():
        save_npy_atomic(cache_path(clip, kind), array)


_worker_encoder = None


def _worker_init(encoder_factory: Callable[[], object]) -> None:
    global _worker_encoder
    torch.set_num_threads(1)
    _worker_encoder = encoder_factory()


def _worker_run(clip: Path, settings: FeatureSettings) -> tuple[Path, str | None]:
    try:
        write_clip(clip, settings, _worker_encoder)
        return clip, None
    except RtsvcError as exc:
        return clip, str(exc)


def default_encoder_factory(speech_encoder: str, pretrain_dir: Path | None, device: str) -> Callable[[], object]:
    """A picklable factory loading the config's content encoder from the pretrain folder."""
    from rtsvc.encoders import load_content_encoder

    return functools.partial(load_content_encoder, speech_encoder, pretrain_dir=pretrain_dir, device=device)


def extract_all(
    clips: list[Path], settings: FeatureSettings, encoder_factory: Callable[[], object], workers: int = 1,
    log: Callable[[str], None] = print,
) -> dict[Path, str]:
    """Write features of every clip that lacks them. Returns {clip: error} for clips that failed
    (the others proceed). ``workers`` > 1 uses that many processes (spawned)."""
    todo = [c for c in clips if not is_complete(c, settings)]
    if len(todo) < len(clips):
        log(f"features: {len(clips) - len(todo)} of {len(clips)} clip(s) already done, skipped")
    failures: dict[Path, str] = {}
    if not todo:
        return failures
    bar = ProgressBar("features")
    if workers <= 1:
        encoder = encoder_factory()
        for i, clip in enumerate(todo, 1):
            try:
                write_clip(clip, settings, encoder)
            except RtsvcError as exc:
                failures[clip] = str(exc)
            bar.update(i, len(todo), f"{i}/{len(todo)}")
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(encoder_factory,)) as pool:
            futures = [pool.submit(_worker_run, clip, settings) for clip in todo]
            for i, fut in enumerate(as_completed(futures), 1):
                clip, err = fut.result()
                if err:
                    failures[clip] = err
                bar.update(i, len(todo), f"{i}/{len(todo)}")
    bar.finish()
    for clip, err in failures.items():
        log(f"features: skipped {clip}: {err}")
    return failures

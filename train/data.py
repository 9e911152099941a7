"""Training batches from the feature cache (so-vits-svc's ``TextAudioSpeakerLoader`` behaviour).

An item is one clip: content features expanded to the frame grid, interpolated f0 + voicing,
linear spectrogram, waveform, speaker id and (with vol embedding) loudness, all cut to the same
number of frames. Clips longer than MAX_FRAMES get a random window of WINDOW_FRAMES frames;
with volume augmentation, half of the items get a random gain (and the spectrogram and loudness
are recomputed / rescaled to match).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from rtsvc.errors import RtsvcError
from rtsvc.models.frames import expand_frames
from rtsvc.pitch import interpolate_unvoiced

from .features import cache_path
from .mel import linear_spectrogram

#: Clips longer than this many frames are cut to a random window of WINDOW_FRAMES (upstream values).
MAX_FRAMES = 800
WINDOW_FRAMES = 790
#: Largest frame-count disagreement between features tolerated before a clip is refused.
MAX_FRAME_MISMATCH = 3
#: Volume augmentation draws log10 gain in [-1, min(1, log10(1 / peak))].
VOL_AUG_MIN_LOG10 = -1.0


@dataclass
class ClipItem:
    """c (ssl_dim, T); f0, uv (T,); spec (F, T); audio (1, T * hop); speaker int; vol (T,) or None."""

    c: torch.Tensor
    f0: torch.Tensor
    uv: torch.Tensor
    spec: torch.Tensor
    audio: torch.Tensor
    speaker: int
    vol: torch.Tensor | None


@dataclass
class Batch:
    """c (B, ssl_dim, T); f0, uv (B, T); spec (B, F, T); audio (B, 1, T * hop); speaker (B,);
    lengths (B,) frames; vol (B, T) or None. Padded with zeros, longest clip first."""

    c: torch.Tensor
    f0: torch.Tensor
    uv: torch.Tensor
    spec: torch.Tensor
    audio: torch.Tensor
    speaker: torch.Tensor
    lengths: torch.Tensor
    vol: torch.Tensor | None

    def to(self, device: torch.device | str) -> "Batch":
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return Batch(**moved)


def read_filelist(path: Path) -> list[Path]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RtsvcError(f"{path}: cannot read the file list ({exc.strerror}).", "run 'rtsvc train config' first.") from None
    clips = [Path(line.strip()) for line in lines if line.strip()]
    if not clips:
        raise RtsvcError(f"{path}: the file list is empty.", "add clips to the dataset and rerun 'rtsvc train config'.")
    return clips


class ClipDataset(torch.utils.data.Dataset):
    """Items of :class:`ClipItem` for the clips in a file list (speaker = parent folder name)."""

    def __init__(
        self, clips: list[Path], speakers: dict[str, int], *, sampling_rate: int, hop_length: int, filter_length: int,
        win_length: int, unit_interpolate_mode: str, vol_embedding: bool, vol_aug: bool, all_in_mem: bool, seed: int,
    ) -> None:
        self.clips = list(clips)
        self.speakers = speakers
        self.sampling_rate, self.hop, self.n_fft, self.win = sampling_rate, hop_length, filter_length, win_length
        self.mode = unit_interpolate_mode
        self.vol_embedding, self.vol_aug = vol_embedding, vol_aug
        self.rng = random.Random(seed)
        for clip in self.clips:
            if clip.parent.name not in speakers:
                raise RtsvcError(f"{clip}: speaker folder {clip.parent.name!r} is not in config.json spk.", "rerun 'rtsvc train config'.")
            missing = [k for k in (("soft", "f0", "spec", "vol") if vol_embedding else ("soft", "f0", "spec")) if not cache_path(clip, k).is_file()]
            if missing:
                raise RtsvcError(f"{clip}: features {', '.join(missing)} not extracted.", "run 'rtsvc train features' first.")
        self.cache = [self.load(c) for c in self.clips] if all_in_mem else None

    def __len__(self) -> int:
        return len(self.clips)

    def load(self, clip: Path) -> ClipItem:
        audio, sr = sf.read(str(clip), dtype="float32", always_2d=True)
        if sr != self.sampling_rate:
            raise RtsvcError(f"{clip}: {sr} Hz, config.json expects {self.sampling_rate} Hz.", "rerun 'rtsvc train prepare' with the config's rate.")
        spec = torch.from_numpy(np.load(cache_path(clip, "spec"), allow_pickle=False))
        f0_raw = np.load(cache_path(clip, "f0"), allow_pickle=False)
        f0, uv = interpolate_unvoiced(f0_raw)
        frames = len(f0)
        soft = torch.from_numpy(np.load(cache_path(clip, "soft"), allow_pickle=False))
        c = expand_frames(soft, frames, self.mode)
        vol = torch.from_numpy(np.load(cache_path(clip, "vol"), allow_pickle=False)) if self.vol_embedding else None
        n = min(frames, spec.shape[1], len(audio) // self.hop, *([len(vol)] if vol is not None else []))
        if frames - n >= MAX_FRAME_MISMATCH or spec.shape[1] - n >= MAX_FRAME_MISMATCH:
            raise RtsvcError(f"{clip}: cached features disagree in length ({frames} vs {spec.shape[1]} frames).",
                             "delete its .npy files and rerun 'rtsvc train features'.")
        return ClipItem(
            c=c[:, :n], f0=torch.from_numpy(f0[:n]), uv=torch.from_numpy(uv[:n]), spec=spec[:, :n],
            audio=torch.from_numpy(audio[: n * self.hop, 0])[None], speaker=self.speakers[clip.parent.name],
            vol=vol[:n] if vol is not None else None,
        )

    def augment(self, item: ClipItem) -> ClipItem:
        if self.vol_aug and item.vol is not None and self.rng.random() < 0.5:
            peak = float(item.audio.abs().max()) + 1e-5
            gain = 10 ** self.rng.uniform(VOL_AUG_MIN_LOG10, min(1.0, float(np.log10(1.0 / peak))))
            audio = item.audio * gain
            spec = linear_spectrogram(audio, self.n_fft, self.hop, self.win)[0][:, : item.spec.shape[1]]
            item = ClipItem(item.c, item.f0, item.uv, spec, audio, item.speaker, item.vol * gain)
        n = item.spec.shape[1]
        if n > MAX_FRAMES:
            start = self.rng.randint(0, n - MAX_FRAMES)
            end = start + WINDOW_FRAMES
            item = ClipItem(
                item.c[:, start:end], item.f0[start:end], item.uv[start:end], item.spec[:, start:end],
                item.audio[:, start * self.hop : end * self.hop], item.speaker,
                item.vol[start:end] if item.vol is not None else None,
            )
        return item

    def __getitem__(self, index: int) -> ClipItem:
        item = self.cache[index] if self.cache is not None else self.load(self.clips[index])
        return self.augment(item)


def collate(items: list[ClipItem]) -> Batch:
    """Pad a list of items into a :class:`Batch` (longest first)."""
    items = sorted(items, key=lambda it: it.spec.shape[1], reverse=True)
    b, t = len(items), items[0].spec.shape[1]
    hop = items[0].audio.shape[1] // items[0].spec.shape[1]
    c = torch.zeros(b, items[0].c.shape[0], t)
    f0, uv = torch.zeros(b, t), torch.zeros(b, t)
    spec = torch.zeros(b, items[0].spec.shape[0], t)
    audio = torch.zeros(b, 1, t * hop)
    vol = torch.zeros(b, t) if items[0].vol is not None else None
    lengths = torch.zeros(b, dtype=torch.long)
    for i, it in enumerate(items):
        n = it.spec.shape[1]
        lengths[i] = n
        c[i, :, :n], f0[i, :n], uv[i, :n], spec[i, :, :n] = it.c, it.f0, it.uv, it.spec
        audio[i, :, : it.audio.shape[1]] = it.audio
        if vol is not None:
            vol[i, :n] = it.vol
    speaker = torch.tensor([it.speaker for it in items], dtype=torch.long)
    return Batch(c, f0, uv, spec, audio, speaker, lengths, vol)

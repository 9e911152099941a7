"""so-vits-svc's slice_inference assembly, written out step by step with Python lists, as an
independent reference for render tests (``from render_reference import reference_assembly``).

slice -> silent chunk: ceil(n * sr / sr_in) zeros | voiced: forced clips (each but the first
starting lg early) -> pad with zeros -> resample -> convert -> drop the padding -> centre-pad to
ceil length -> linear crossfade of (lg * lgr) samples with (lg - lg * lgr) / 2 dropped per side.
"""

from __future__ import annotations

import math

import numpy as np

from rtsvc.audio_io import resample
from rtsvc.params import VoiceParams
from rtsvc.render_core import RenderOptions
from rtsvc.slicer import SlicerConfig, slice_audio


def reference_assembly(x: np.ndarray, sr_in: int, voice, params: VoiceParams, opt: RenderOptions) -> np.ndarray:
    sr = voice.sample_rate
    per_size, lg_size = int(opt.clip_seconds * sr_in), int(opt.linear_gradient * sr)
    lg_in = int(opt.linear_gradient * sr_in)
    r = int(lg_size * opt.linear_gradient_retain)
    c_l = (lg_size - r) // 2
    c_r = lg_size - r - c_l
    ramp = np.linspace(0, 1, r)
    audio: list[float] = []
    for chunk in slice_audio(x, sr_in, SlicerConfig(threshold_db=opt.slice_db)):
        data = x[chunk.start : chunk.end]
        length = math.ceil(len(data) / sr_in * sr - 1e-9)
        if chunk.silent:
            audio.extend([0.0] * length)
            continue
        if per_size:
            pieces = [data[(i - lg_in if i - lg_in >= 0 else i) : i + per_size] for i in range(0, len(data), per_size)]
        else:
            pieces = [data]
        for k, dat in enumerate(pieces):
            per_length = math.ceil(len(dat) / sr_in * sr - 1e-9) if per_size else length
            pad = np.zeros(int(sr_in * opt.pad_seconds), np.float32)
            wav = resample(np.concatenate([pad, dat, pad]), sr_in, sr)
            out = voice.convert(wav, params)
            p = int(sr * opt.pad_seconds)
            out = out[p : len(out) - p]
            if len(out) < per_length:
                left = (per_length - len(out)) // 2
                out = np.pad(out, (left, per_length - len(out) - left))
            out = list(out[:per_length])
            if lg_size and k:
                if opt.linear_gradient_retain != 1:
                    prev, new = np.array(audio[-(r + c_r) : len(audio) - c_r]), np.array(out[c_l : c_l + r])
                    audio = audio[: -(r + c_r)] + list(prev * (1 - ramp) + new * ramp)
                    out = out[c_l + r :]
                else:
                    prev, new = np.array(audio[-lg_size:]), np.array(out[:lg_size])
                    audio = audio[:-lg_size] + list(prev * (1 - ramp) + new * ramp)
                    out = out[lg_size:]
            audio.extend(out)
    return np.array(audio, dtype=np.float32)

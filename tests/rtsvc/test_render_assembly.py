"""Whole-file rendering vs. a slice-by-slice reference assembly written here, plus each option's effect.

The reference below follows so-vits-svc's slice_inference step by step with plain Python lists
(slice -> silent zeros | pad, convert, unpad, centre-pad to ceil length -> linear crossfade of
forced clips). render_file must give the same samples (float32 WAV, compared exactly up to
float32 rounding) for automatic slicing, forced clips with and without retain, and resampling.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from render_fakes import FlatVoice, MixVoice, NaNVoice, RecordingVoice
from render_reference import reference_assembly
from signals import sine

from rtsvc.errors import ParameterError, RtsvcError
from rtsvc.loudness import half_second_rms, mix_loudness_envelope, stretch_linear
from rtsvc.mixing import validate_track
from rtsvc.params import VoiceParams
from rtsvc.render import render_file
from rtsvc.render_core import RenderOptions
from rtsvc.slicer import slice_audio


def _song(sr: int) -> np.ndarray:
    """6 s tone, 12 s near-silence (a silent chunk), 7 s of a louder tone with a short 1 s pause."""
    q = (1e-4 * np.random.default_rng(0).standard_normal(12 * sr)).astype(np.float32)
    return np.concatenate([sine(220, 6.0, sr, 0.4), q, sine(330, 3.0, sr, 0.6), np.zeros(sr, np.float32),
                           sine(440, 3.0, sr, 0.6)]).astype(np.float32)


def _render(tmp_path, voice, x, sr_in, params=VoiceParams(), options=RenderOptions(), **kw) -> np.ndarray:
    src = tmp_path / "in.wav"
    sf.write(src, x, sr_in, subtype="FLOAT")
    out = tmp_path / "out.wav"
    render_file(voice, src, out, params, options=options, **kw)
    y, sr = sf.read(out, dtype="float32")
    assert sr == (kw.get("out_rate") or voice.sample_rate)
    return y


@pytest.mark.parametrize("sr_in, options", [
    (16000, RenderOptions()),
    (16000, RenderOptions(clip_seconds=2.0, linear_gradient=0.5, linear_gradient_retain=0.7777)),
    (16000, RenderOptions(clip_seconds=2.5, linear_gradient=0.4, linear_gradient_retain=1.0, pad_seconds=0.3)),
    (22050, RenderOptions(clip_seconds=3.0, linear_gradient=0.2)),
])
def test_render_matches_slice_by_slice_reference_assembly(tmp_path, sr_in, options):
    x = _song(sr_in)
    voice = RecordingVoice(sample_rate=16000)
    params = VoiceParams(transpose=3)
    got = _render(tmp_path, voice, x, sr_in, params, options)
    want = reference_assembly(x, sr_in, RecordingVoice(sample_rate=16000), params, options)
    assert len(got) == len(want)
    assert abs(len(got) - len(x) * 16000 / sr_in) <= 2 * len(slice_audio(x, sr_in))  # ceil per chunk only
    np.testing.assert_allclose(got, want, atol=5e-7)
    assert all(p.transpose == 3 for _, p in voice.calls)


def test_silent_chunks_are_exact_silence_and_padding_reaches_the_voice(tmp_path):
    x = _song(16000)
    voice = RecordingVoice()
    y = _render(tmp_path, voice, x, 16000, options=RenderOptions(pad_seconds=0.25))
    silent = [c for c in slice_audio(x, 16000) if c.silent]
    assert silent and all(np.all(y[c.start : c.end] == 0) for c in silent)
    voiced = [c for c in slice_audio(x, 16000) if not c.silent]
    assert sorted(n for n, _ in voice.calls) == sorted(c.length + 2 * 4000 for c in voiced)


def test_forced_clips_cut_long_chunks(tmp_path):
    voice = RecordingVoice()
    _render(tmp_path, voice, sine(220, 5.0, 16000), 16000, options=RenderOptions(clip_seconds=1.0, pad_seconds=0))
    assert [n for n, _ in voice.calls] == [16000] * 5


def test_loudness_envelope_adjustment_moves_toward_the_input_envelope(tmp_path):
    t = np.arange(8 * 16000) / 16000
    x = (np.linspace(0.02, 0.6, len(t)) * np.sin(2 * np.pi * 200 * t)).astype(np.float32)  # rising envelope
    env = lambda y: np.array([np.sqrt(np.mean(y[i : i + 8000] ** 2)) for i in range(0, len(y) - 8000, 8000)])
    model_env = env(_render(tmp_path, FlatVoice(), x, 16000, options=RenderOptions(loudness_envelope_adjustment=1.0)))
    input_env = env(_render(tmp_path, FlatVoice(), x, 16000, options=RenderOptions(loudness_envelope_adjustment=0.0)))
    half_env = env(_render(tmp_path, FlatVoice(), x, 16000, options=RenderOptions(loudness_envelope_adjustment=0.5)))
    target = env(x)
    assert np.ptp(model_env) < 0.01  # lea 1: the flat model envelope stays flat
    inner = slice(2, -2)  # away from the 1 s windows' edge effects
    np.testing.assert_allclose(input_env[inner], target[inner], rtol=0.15)
    assert np.all(np.abs(np.log(half_env[inner]) - 0.5 * np.log(target[inner] * model_env[inner])) < 0.15)


def test_loudness_helpers_match_torch_linear_interpolation():
    torch = pytest.importorskip("torch", reason="torch is a core dependency; always installed")
    v = np.random.default_rng(2).random(7)
    want = torch.nn.functional.interpolate(torch.from_numpy(v)[None, None], size=53, mode="linear")[0, 0].numpy()
    np.testing.assert_allclose(stretch_linear(v, 53), want, atol=1e-12)
    x = np.ones(16000, np.float32)
    assert half_second_rms(x, 16000).shape == (3,) and half_second_rms(x, 16000)[1] == pytest.approx(1.0)
    y = mix_loudness_envelope(x, 0.5 * x, 16000, 0.0)
    assert y[8000] == pytest.approx(1.0, rel=1e-5)


def test_mix_track_gives_the_voice_per_frame_weights_along_the_file(tmp_path):
    voice = MixVoice()
    track = validate_track({"alto": [[0, 1, 1, 0]], "tenor": [[0, 1, 0, 1]]}, voice.speakers, "t")
    y = _render(tmp_path, voice, sine(220, 4.0, 16000), 16000, options=RenderOptions(pad_seconds=0.0),
                mix_track=track)
    # y carries the alto weight per sample: it falls from 1 to 0 across the file
    assert y[100] > 0.95 and y[-400] < 0.05 and abs(y[len(y) // 2] - 0.5) < 0.05
    with pytest.raises(RtsvcError, match="cannot follow a dynamic mix track"):
        _render(tmp_path, RecordingVoice(speakers=("alto", "tenor")), sine(220, 1.0, 16000), 16000, mix_track=track)


def test_bad_voice_output_and_bad_options_are_errors_with_no_output(tmp_path):
    with pytest.raises(RtsvcError, match="non-finite"):
        _render(tmp_path, NaNVoice(), sine(220, 1.0, 16000), 16000)
    assert not (tmp_path / "out.wav").exists() and not list(tmp_path.glob("*.part"))
    with pytest.raises(ParameterError, match="shorter than the clip length"):
        RenderOptions(clip_seconds=1.0, linear_gradient=1.0)
    with pytest.raises(ParameterError, match="linear_gradient_retain"):
        RenderOptions(linear_gradient_retain=0.0)
    with pytest.raises(ParameterError, match="loudness_envelope_adjustment"):
        RenderOptions(loudness_envelope_adjustment=1.5)


def test_output_rate_conversion(tmp_path):
    y = _render(tmp_path, RecordingVoice(), sine(220, 2.0, 16000), 16000, out_rate=44100)
    assert abs(len(y) - 2 * 44100) <= 4

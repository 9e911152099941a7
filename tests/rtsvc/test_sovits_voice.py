"""The SoVITS voice end to end with a tiny random model and a tiny real-layout encoder."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from signals import sung_vowel
from tiny_voice import make_tiny_voice

from rtsvc.cli import main
from rtsvc.errors import ModelFileError, ParameterError
from rtsvc.params import VoiceParams
from rtsvc.sovits_voice import load_sovits_voice
from rtsvc.voice import StreamWindow

SR = 44100


@pytest.fixture(scope="module")
def voice_files(tmp_path_factory, fixtures_dir):
    return make_tiny_voice(tmp_path_factory.mktemp("tiny"), fixtures_dir, n_speakers=2, vol_embedding=True)


@pytest.fixture(scope="module")
def voice(voice_files):
    model, config, pretrain = voice_files
    return load_sovits_voice(model, config, pretrain_dir=pretrain)


def test_convert_shapes_determinism_and_speakers(voice):
    x = sung_vowel(seconds=0.6, sr=SR)
    p = VoiceParams(deterministic=True)
    y1, y2 = voice.convert(x, p), voice.convert(x, p)
    assert y1.shape == x.shape and np.all(np.isfinite(y1)) and np.abs(y1).max() > 0
    np.testing.assert_array_equal(y1, y2)
    assert voice.speakers == ("speaker0", "speaker1")
    y_other = voice.convert(x, p.with_changes(speaker="speaker1"))
    assert np.abs(y_other - y1).max() > 1e-4
    y_mix = voice.convert(x, p.with_changes(speaker_mix=(("speaker0", 1.0), ("speaker1", 0.0))))
    np.testing.assert_allclose(y_mix, y1, atol=1e-5)
    noisy_a = voice.convert(x, VoiceParams(seed=1))
    noisy_b = voice.convert(x, VoiceParams(seed=2))
    assert np.abs(noisy_a - noisy_b).max() > 1e-4


def test_transpose_changes_output_and_unknown_speaker_lists_speakers(voice):
    x = sung_vowel(seconds=0.5, sr=SR)
    base = voice.convert(x, VoiceParams(deterministic=True))
    up = voice.convert(x, VoiceParams(deterministic=True, transpose=5))
    assert np.abs(up - base).max() > 1e-3
    with pytest.raises(ParameterError, match="speaker0, 1=speaker1"):
        voice.convert(x, VoiceParams(speaker="nobody"))


def test_window_conversion_matches_the_tail_of_a_whole_conversion(voice):
    x = sung_vowel(seconds=0.5, sr=SR)
    n = (len(x) // voice.hop_length) * voice.hop_length
    x = x[:n]
    p = VoiceParams(deterministic=True)
    from rtsvc.audio_io import resample
    from rtsvc.pitch import estimate_f0

    f0 = estimate_f0(x, SR, voice.hop_length)
    whole = voice.convert(x, p, f0=f0)
    win = StreamWindow(audio=x, audio_16k=resample(x, SR, 16000), f0=f0, out_samples=4096, skip_tail=1024)
    tail = voice.convert_window(win, p)
    np.testing.assert_allclose(tail, whole[n - 1024 - 4096: n - 1024], atol=1e-5)
    # the engine's order: the encoder started before pitch (begin_window), its units passed back
    win.early = voice.begin_window(win.audio, win.audio_16k)
    assert tuple(win.early.shape[:2]) == (1, voice.encoder.dim)
    np.testing.assert_array_equal(voice.convert_window(win, p), tail)
    # convert_window uses the early units it is given (not its own encoding of the audio)
    noise = 0.3 * np.random.default_rng(0).standard_normal(len(win.audio_16k)).astype(np.float32)
    win.early = voice.begin_window(win.audio, noise)
    assert np.abs(voice.convert_window(win, p) - tail).max() > 1e-4


def test_encoder_dim_mismatch_is_one_clear_error(tmp_path, fixtures_dir):
    from tiny_voice import make_tiny_encoder, make_tiny_model

    model, config = make_tiny_model(tmp_path / "v", ssl_dim=256, speech_encoder="vec256l9")
    make_tiny_encoder(tmp_path / "pre", fixtures_dir, proj_dim=128)
    with pytest.raises(ModelFileError, match="ssl_dim 256"):
        load_sovits_voice(model, config, pretrain_dir=tmp_path / "pre")


def test_render_cli_with_a_sovits_model(tmp_path, voice_files, capsys, monkeypatch):
    model, config, pretrain = voice_files
    monkeypatch.setenv("RTSVC_PRETRAIN", str(pretrain))
    src = tmp_path / "in.wav"
    sf.write(src, sung_vowel(seconds=0.5, sr=22050), 22050)
    out = tmp_path / "out.wav"
    rc = main(["render", str(src), "-o", str(out), "-m", str(model), "-c", str(config), "-s", "speaker1", "-t", "2"])
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    y, sr = sf.read(out)
    assert sr == SR and abs(len(y) - 0.5 * SR) <= 512 and np.all(np.isfinite(y))

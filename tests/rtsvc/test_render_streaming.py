"""`render --streaming`: the file goes through the live engine and comes out aligned with the input."""

from __future__ import annotations

import numpy as np
import soundfile as sf
from render_fakes import GainVoice
from signals import sung_vowel

import rtsvc.engine.controller as controller
from rtsvc.cli import main
from rtsvc.engine.params import LiveParams
from rtsvc.params import VoiceParams
from rtsvc.render_streaming import live_params_for, render_file_streaming


def no_pitch(audio, sample_rate, hop, method, threshold):
    """A cheap f0 estimator (all unvoiced): the fake voices here ignore f0."""
    return np.zeros(len(audio) // hop, dtype=np.float32)


def test_streamed_render_is_aligned_with_the_input(tmp_path):
    x = sung_vowel(seconds=2.0, sr=16000)
    src = tmp_path / "in.wav"
    sf.write(src, x, 16000, subtype="FLOAT")
    r = render_file_streaming(GainVoice(), src, tmp_path / "out.wav", VoiceParams(),
                              live=LiveParams(threshold_db=-120.0), estimator=no_pitch)
    y, sr = sf.read(tmp_path / "out.wav", dtype="float32")
    assert sr == 16000 and len(y) == len(x) and "streamed through the live engine" in r.notes
    body = slice(4000, len(x) - 4000)  # away from the stream's start-up and the tail
    err = y[body] - 0.5 * x[body]
    assert 10 * np.log10(np.sum((0.5 * x[body]) ** 2) / np.sum(err**2)) > 20  # same timeline, same gain


def test_live_params_take_the_render_voice_settings():
    live = live_params_for(VoiceParams(transpose=4, noise_scale=0.2), LiveParams(block_ms=200))
    assert live.transpose == 4 and live.noise_scale == 0.2 and live.block_ms == 200


def test_streaming_cli_and_its_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(controller, "estimator_for_device", lambda device: no_pitch)
    src = tmp_path / "v.wav"
    sf.write(src, sung_vowel(seconds=0.3, sr=44100), 44100)
    track = tmp_path / "mix.json"
    track.write_text("{}")
    rc = main(["render", str(src), "-o", str(tmp_path / "o.wav"), "--preset", "x"])
    assert rc == 2 and "--preset only applies with --streaming" in capsys.readouterr().err
    rc = main(["render", str(src), "-o", str(tmp_path / "o.wav"), "--streaming", "-q"])
    out = capsys.readouterr().out
    assert rc == 0 and "streamed through the live engine" in out
    y, sr = sf.read(tmp_path / "o.wav")
    assert sr == 44100 and len(y) == len(sf.read(src)[0])

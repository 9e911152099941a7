"""`rtsvc render -m/-c` with SoVITS voices: tiny random models and the shared fixture checkpoints.

The content encoder is replaced by a deterministic stand-in (a fixed projection of 16 kHz
frames) because the fixture encoders are not 768-dim. What is checked:

- deterministic whole-file rendering (automatic slicing, and forced clips with crossfade) equals
  the slice-by-slice reference assembly (tests/render_reference.py) sample for sample, for the
  fixture model v41_vec768_vol and a tiny model;
- speakers by name/id, unknown speakers listed, output names; model/config mismatch errors;
- static speaker mix (convex == single speaker for one-hot weights; linear differs),
  a mix track holding one speaker == that speaker; cluster ratio 0 vs 1 changes the output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from render_reference import reference_assembly
from signals import sung_vowel
from tiny_voice import make_tiny_model, make_tiny_voice

import rtsvc.encoders as encoders
from cli_run import run_cli
from rtsvc.cluster import save_kmeans
from rtsvc.params import VoiceParams
from rtsvc.render import render_file
from rtsvc.render_core import RenderOptions
from rtsvc.sovits_voice import load_sovits_voice


class ProjectionEncoder:
    """Stand-in content encoder: 320-sample frames of 16 kHz audio times a fixed random matrix."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.path = Path("projection-encoder")
        self.proj = torch.from_numpy(np.random.default_rng(5).standard_normal((dim, 320)).astype(np.float32))

    def encode(self, audio_16k: np.ndarray) -> torch.Tensor:
        n = max(1, len(audio_16k) // 320)
        x = np.zeros(n * 320, np.float32)
        x[: min(len(audio_16k), n * 320)] = audio_16k[: n * 320]
        frames = torch.from_numpy(x.reshape(n, 320))
        return (self.proj @ frames.T)[None]  # (1, dim, n)

    def close(self) -> None:
        pass


@pytest.fixture
def projection_encoder(monkeypatch):
    def load(name, *, path=None, pretrain_dir=None, device="cpu"):
        return ProjectionEncoder(encoders.speech_encoder_spec(name).dim)

    monkeypatch.setattr(encoders, "load_content_encoder", load)


@pytest.fixture(scope="module")
def tiny2(tmp_path_factory) -> tuple[Path, Path]:
    return make_tiny_model(tmp_path_factory.mktemp("tiny2"), n_speakers=2)


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    sr = 44100
    x = np.concatenate([sung_vowel(seconds=0.8, sr=sr), np.zeros(int(0.3 * sr), np.float32),
                        sung_vowel(f0=330.0, seconds=0.5, sr=sr)])
    p = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(p, x, sr, subtype="FLOAT")
    return p


_run = run_cli


def _read(p: Path) -> np.ndarray:
    return sf.read(p, dtype="float32")[0]


def test_fixture_model_whole_file_equals_slice_by_slice_assembly(tmp_path, fixtures_dir, projection_encoder):
    options = RenderOptions(pad_seconds=0.1, clip_seconds=0.35, linear_gradient=0.1, linear_gradient_retain=0.7)
    song = tmp_path / "short.wav"
    sf.write(song, np.concatenate([sung_vowel(seconds=0.6, sr=44100), np.zeros(8820, np.float32)]), 44100,
             subtype="FLOAT")
    d = fixtures_dir / "sovits" / "v41_vec768_vol"
    voice = load_sovits_voice(d / "G_800.pth", d / "config.json")
    params = VoiceParams(speaker="tenor", deterministic=True, transpose=2, f0_method="dio")
    render_file(voice, song, tmp_path / "out.wav", params, options=options)
    x, sr = sf.read(song, dtype="float32")
    want = reference_assembly(x, sr, voice, params, options)
    got = _read(tmp_path / "out.wav")
    assert len(got) == len(want) and np.abs(got).max() > 0.01
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_cli_speakers_names_and_determinism(tmp_path, tiny2, song, capsys, projection_encoder):
    model, config = tiny2
    base = ["render", str(song), "-m", str(model), "-c", str(config), "--deterministic", "-q", "-p", "0.2", "-f0p", "dio"]
    rc, _, err = _run(capsys, *base, "-o", str(tmp_path), "-s", "1")
    assert rc == 0, err
    out = tmp_path / "song_0key_speaker1_dio.wav"
    assert out.exists()
    rc, _, _ = _run(capsys, *base, "-o", str(tmp_path / "again.wav"), "-s", "speaker1")
    assert rc == 0 and np.array_equal(_read(out), _read(tmp_path / "again.wav"))  # deterministic, id == name
    x, sr = sf.read(song)
    assert sf.info(out).samplerate == 44100 and abs(sf.info(out).frames - len(x)) <= 4
    rc, _, err = _run(capsys, *base, "-o", str(tmp_path / "x.wav"), "-s", "nobody")
    assert rc == 2 and "0=speaker0, 1=speaker1" in err and not (tmp_path / "x.wav").exists()


def test_model_config_mismatch_is_one_clear_error(tmp_path, song, capsys, projection_encoder):
    model, _ = make_tiny_model(tmp_path / "a")
    _, other_config = make_tiny_model(tmp_path / "b", ssl_dim=256, speech_encoder="vec256l9", vol_embedding=False)
    out = tmp_path / "o.wav"
    rc, _, err = _run(capsys, "render", str(song), "-m", str(model), "-c", str(other_config), "-o", str(out))
    assert rc == 2 and "Traceback" not in err and str(other_config) in err or str(model) in err
    assert not out.exists()


def test_speaker_mix_and_mix_track(tmp_path, tiny2, song, capsys, projection_encoder):
    model, config = tiny2
    base = ["render", str(song), "-m", str(model), "-c", str(config), "--deterministic", "-q", "-p", "0.2", "-f0p", "dio"]
    outs = {}
    for tag, extra in [("single", ["-s", "speaker0"]), ("convex", ["--speaker-mix", "speaker0=3,speaker1=0"]),
                       ("even", ["--speaker-mix", "speaker0=1,speaker1=1"])]:
        outs[tag] = tmp_path / f"{tag}.wav"
        rc, _, err = _run(capsys, *base, "-o", str(outs[tag]), *extra)
        assert rc == 0, err
    single = _read(outs["single"])
    np.testing.assert_allclose(_read(outs["convex"]), single, atol=1e-5)  # weights scaled to sum 1
    assert np.abs(_read(outs["even"]) - single).max() > 1e-3
    track = tmp_path / "mix.json"
    track.write_text(json.dumps({"speaker0": [[0, 1, 1, 1]], "speaker1": [[0, 1, 0, 0]]}))
    rc, _, err = _run(capsys, *base, "-o", str(tmp_path / "track.wav"), "--mix-track", str(track))
    assert rc == 0, err
    np.testing.assert_allclose(_read(tmp_path / "track.wav"), single, atol=1e-5)


def test_linear_speaker_mix_reaches_the_model(tmp_path, tiny2, song, capsys, projection_encoder):
    model, config = tiny2
    base = ["render", str(song), "-m", str(model), "-c", str(config), "--deterministic", "-q", "-f0p", "dio"]
    _run(capsys, *base, "-o", str(tmp_path / "a.wav"), "--speaker-mix", "speaker0=3,speaker1=0")
    _run(capsys, *base, "-o", str(tmp_path / "b.wav"), "--speaker-mix", "speaker0=3,speaker1=0",
         "--speaker-mix-mode", "linear")
    assert np.abs(_read(tmp_path / "a.wav") - _read(tmp_path / "b.wav")).max() > 1e-3  # 3 x the embedding


def test_cluster_ratio_changes_the_features(tmp_path, tiny2, song, capsys, projection_encoder):
    model, config = tiny2
    rs = np.random.default_rng(1)
    km = save_kmeans(tmp_path / "kmeans.npz", {"speaker0": rs.standard_normal((4, 768)), "speaker1": rs.standard_normal((4, 768))})
    base = ["render", str(song), "-m", str(model), "-c", str(config), "--deterministic", "-q", "-cm", str(km),
            "-f0p", "dio"]
    rc0, _, _ = _run(capsys, *base, "-o", str(tmp_path / "r0.wav"), "-cr", "0")
    rc1, _, err = _run(capsys, *base, "-o", str(tmp_path / "r1.wav"), "-cr", "1")
    assert rc0 == 0 and rc1 == 0, err
    assert np.abs(_read(tmp_path / "r0.wav") - _read(tmp_path / "r1.wav")).max() > 1e-3
    rc, _, err = _run(capsys, *base, "-o", str(tmp_path / "bad.wav"), "-cr", "1", "-fr")
    assert rc == 2 and "was expected" in err


def test_mix_track_rule_errors_at_the_cli(tmp_path, tiny2, song, capsys, projection_encoder):
    model, config = tiny2
    track = tmp_path / "mix.json"
    track.write_text(json.dumps({"speaker0": [[0, 0.5, 1, 1], [0.6, 1, 1, 1]], "speaker1": [[0, 1, 0, 0]]}))
    rc, _, err = _run(capsys, "render", str(song), "-m", str(model), "-c", str(config), "-o", str(tmp_path / "o.wav"),
                      "--mix-track", str(track))
    assert rc == 2 and "must be chained" in err and not (tmp_path / "o.wav").exists()


def test_end_to_end_with_a_real_tiny_encoder_file(tmp_path, fixtures_dir, song, capsys):
    model, config, pretrain = make_tiny_voice(tmp_path, fixtures_dir)
    out = tmp_path / "o.flac"
    rc, stdout, err = _run(capsys, "render", str(song), "-m", str(model), "-c", str(config), "-e",
                           str(pretrain / "checkpoint_best_legacy_500.pt"), "-o", str(out), "-t", "3", "-q")
    assert rc == 0, err
    y, sr = sf.read(out)
    assert sr == 44100 and np.all(np.isfinite(y)) and np.abs(y).max() > 0.001 and "RTF" in stdout

"""`rtsvc render` options at the CLI: names, batch UX, and clear errors for bad settings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from signals import sung_vowel

from cli_run import run_cli
from rtsvc.errors import AudioFileError
from rtsvc.render import collect_inputs


_run = run_cli


@pytest.fixture(scope="module")
def vowel(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("in") / "vowel.wav"
    sf.write(p, sung_vowel(seconds=0.4, sr=44100), 44100)
    return p


def test_folder_output_names_follow_the_reference_pattern(tmp_path, vowel, capsys):
    rc, out, _ = _run(capsys, "render", str(vowel), "-o", str(tmp_path), "-t", "-3", "--format", "flac", "-q",
                      "-f0p", "dio")
    assert rc == 0 and (tmp_path / "vowel_-3key_world_dio.flac").exists()
    assert "status" in out and "total (1/1 ok)" in out  # the summary table


def test_auto_f0_warns_once_and_names_the_key_auto(tmp_path, vowel, capsys):
    rc, _, err = _run(capsys, "render", str(vowel), "-o", str(tmp_path), "-a", "-q", "-f0p", "dio")
    assert rc == 0 and (tmp_path / "vowel_auto_world_dio.wav").exists()
    assert err.count("off-key") == 1 and "no effect" in err


def test_folders_recursive_and_globs_with_a_batch_summary(tmp_path, vowel, capsys):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/one.wav", "a/b/two.flac"):
        sf.write(tmp_path / name, sung_vowel(seconds=0.3, sr=22050), 22050)
    (tmp_path / "a" / "notes.txt").write_text("not audio")
    assert [p.name for p in collect_inputs([str(tmp_path / "a")])] == ["one.wav", "two.flac"]
    assert [p.name for p in collect_inputs([str(tmp_path / "a" / "**" / "*.flac")])] == ["two.flac"]
    outdir = tmp_path / "out"
    rc, out, err = _run(capsys, "render", str(tmp_path / "a"), "-o", str(outdir), "-f0p", "dio")
    assert rc == 0 and len(list(outdir.glob("*.wav"))) == 2
    assert "total (2/2 ok)" in out and "batch [" in err


def test_unreadable_folder_is_a_clear_error(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(AudioFileError, match="cannot read the folder"):
        collect_inputs([str(locked)])


@pytest.mark.parametrize("argv, message", [
    (["-s", "nobody"], "'nobody' does not exist in this voice; it has: 0=world"),
    (["-cr", "0.5"], "-cr needs a SoVITS model"),
    (["--speaker-mix", "world"], "not name=weight"),
    (["-cl", "1", "-lg", "2"], "shorter than the clip length"),
    (["-lgr", "0"], "linear_gradient_retain"),
    (["-lea", "2"], "loudness_envelope_adjustment"),
    (["-sd", "10"], "slice threshold"),
    (["-n", "5"], "noise_scale"),
    (["-c", "config.json"], "-c was given without -m"),
    (["--sr", "5"], "--sr must be between"),
])
def test_bad_settings_give_one_clear_error_and_no_output(tmp_path, vowel, capsys, argv, message):
    out = tmp_path / "o.wav"
    rc, _, err = _run(capsys, "render", str(vowel), "-o", str(out), *argv)
    assert rc == 2 and message in err and "Traceback" not in err
    assert not out.exists()


def test_mix_track_needs_a_multi_speaker_voice(tmp_path, vowel, capsys):
    track = tmp_path / "mix.json"
    track.write_text('{"world": [[0, 1, 1, 1]]}')
    rc, _, err = _run(capsys, "render", str(vowel), "-o", str(tmp_path / "o.wav"), "--mix-track", str(track))
    assert rc == 2 and "2 or more speakers" in err


def test_missing_model_is_a_clear_error(tmp_path, vowel, capsys):
    rc, _, err = _run(capsys, "render", str(vowel), "-o", str(tmp_path / "o.wav"), "-m", str(tmp_path / "G_1.pth"))
    assert rc == 2 and "Traceback" not in err and ("G_1.pth" in err or "config" in err)


def test_help_says_what_is_not_provided(capsys):
    rc, out, _ = _run(capsys, "render", "--help")
    for flag in ("-cr", "-lea", "-lg", "-lgr", "-cl", "-sd", "-fr", "--speaker-mix", "--mix-track", "-f0p", "-a"):
        assert flag in out
    assert "enhancer" in out and "Not provided" in out


def test_output_lengths_follow_the_input(tmp_path, vowel, capsys):
    rc, _, _ = _run(capsys, "render", str(vowel), "-o", str(tmp_path / "o.wav"), "--sr", "16000", "-q", "-f0p", "dio")
    y, sr = sf.read(tmp_path / "o.wav")
    assert rc == 0 and sr == 16000 and abs(len(y) - 0.4 * 16000) <= 8 and np.all(np.isfinite(y))

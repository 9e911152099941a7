"""`rtsvc render` with the built-in voice: outputs, input formats, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from signals import sung_vowel

from cli_run import run_cli


_run = run_cli


@pytest.fixture(scope="module")
def vowel_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("in") / "vowel.wav"
    sf.write(p, sung_vowel(seconds=0.8, sr=44100), 44100)
    return p


def test_render_one_file_prints_summary(tmp_path, vowel_file, capsys):
    out = tmp_path / "o.wav"
    rc, stdout, _ = _run(capsys, "render", str(vowel_file), "-o", str(out), "-t", "5", "--formant", "1")
    assert rc == 0 and out.exists()
    assert str(out) in stdout and "RTF" in stdout
    y, sr = sf.read(out)
    assert sr == 44100 and abs(len(y) - 0.8 * 44100) <= 220
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize(
    "kind, rate, subtype, channels",
    [("stereo", 44100, "PCM_16", 2), ("8k", 8000, "PCM_16", 1), ("48k", 48000, "PCM_16", 1),
     ("24bit", 44100, "PCM_24", 1), ("float", 22050, "FLOAT", 1)],
)
def test_input_formats_are_converted_and_said_once(tmp_path, capsys, kind, rate, subtype, channels):
    x = sung_vowel(seconds=0.4, sr=rate)
    data = np.stack([x, 0.5 * x], axis=1) if channels == 2 else x
    src = tmp_path / f"{kind}.wav"
    sf.write(src, data, rate, subtype=subtype)
    out = tmp_path / "out.flac"
    rc, stdout, _ = _run(capsys, "render", str(src), "-o", str(out))
    assert rc == 0, stdout
    y, sr = sf.read(out)
    assert sr == 44100 and abs(len(y) - 0.4 * 44100) <= 2 * 220 and np.all(np.isfinite(y))
    if channels == 2:
        assert stdout.count("downmixed 2 channels to mono") == 1
    if rate != 44100:
        assert stdout.count(f"resampled {rate} Hz -> 44100 Hz") == 1


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    (tmp / "empty.wav").write_bytes(b"")
    (tmp / "text.wav").write_text("this is not audio\n" * 20)
    good = tmp / "good.wav"
    sf.write(good, sung_vowel(seconds=0.2, sr=16000), 16000)
    raw = good.read_bytes()
    (tmp / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt \xff\xff\xff\xff" + raw[40:200])
    zero = tmp / "zero.wav"
    sf.write(zero, np.zeros(0, dtype=np.float32), 16000)
    (tmp / "adir").mkdir()
    return {
        "missing": (tmp / "nope.wav", "no such file"),
        "directory": (tmp / "adir", "holds no audio files"),
        "empty": (tmp / "empty.wav", "empty (0 bytes)"),
        "text": (tmp / "text.wav", "not a readable audio file"),
        "corrupt": (tmp / "corrupt.wav", "not a readable audio file"),
        "zero_length": (zero, "no audio samples"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "text", "corrupt", "zero_length"])
def test_bad_input_one_clear_message_no_output(tmp_path, capsys, case):
    src, expected = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out" / "result.wav"
    rc, stdout, stderr = _run(capsys, "render", str(src), "-o", str(out))
    assert rc != 0
    assert expected in stderr and "Traceback" not in stderr
    assert len([line for line in stderr.splitlines() if "error" in line]) == 1, stderr
    assert not out.exists()
    assert not list(tmp_path.rglob("*.part"))


def test_batch_continues_past_a_bad_file_and_exit_code_says_so(tmp_path, vowel_file, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    outdir = tmp_path / "outs"
    rc, stdout, stderr = _run(capsys, "render", str(vowel_file), str(bad), "-o", str(outdir))
    assert rc == 1
    assert len(list(outdir.glob("*.wav"))) == 1
    assert "bad.wav" in stderr and "1 of 2 file(s) failed" in stderr


def test_existing_output_is_kept_when_render_fails(tmp_path, capsys):
    out = tmp_path / "keep.wav"
    sf.write(out, np.ones(100, dtype=np.float32) * 0.1, 44100)
    before = out.read_bytes()
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    rc, _, _ = _run(capsys, "render", str(bad), "-o", str(out))
    assert rc != 0 and out.read_bytes() == before


def test_help_texts(capsys):
    rc, stdout, _ = _run(capsys, "render", "--help")
    assert rc == 0 and "--transpose" in stdout and "--formant" in stdout


def test_outputs_get_normal_permissions(tmp_path, vowel_file, capsys):
    import os
    import stat

    from rtsvc.atomic import FILE_MODE

    out = tmp_path / "perm.wav"
    rc, _, _ = _run(capsys, "render", str(vowel_file), "-o", str(out))
    assert rc == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == FILE_MODE  # not mkstemp's 0600

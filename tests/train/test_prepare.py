"""``prepare`` and ``config`` on bad data: every problem is reported, the rest proceeds."""

from __future__ import annotations

import json
import os

import numpy as np
import soundfile as sf

from rtsvc.cli import main
from rtsvc.train.prepare import SLICER, normalize_loudness, prepare_dataset, safe_name
from tiny_data import RATE, vowel


def _raw(tmp_path):
    raw = tmp_path / "dataset_raw"
    good = raw / "singer"
    good.mkdir(parents=True)
    # a long take with pauses: must be sliced at the silences
    take = np.concatenate([vowel(200, (730, 1090, 2440), 6.0), np.zeros(RATE // 2, np.float32),
                           vowel(220, (270, 2290, 3010), 6.0)])
    sf.write(good / "take.flac", take, RATE)
    sf.write(good / "Mélodie 日本.wav", vowel(250, (570, 840, 2410), 1.0), 22050)
    sf.write(good / "loud.wav", np.clip(vowel(200, (730, 1090, 2440), 1.0) * 20, -1, 1), RATE)
    sf.write(good / "quiet.wav", np.zeros(RATE, np.float32), RATE)
    (good / "broken.wav").write_text("not audio")
    (good / "notes.txt").write_text("hello")
    if os.name == "posix":
        (good / os.fsdecode(b"bad\xffname.wav")).write_bytes((good / "Mélodie 日本.wav").read_bytes())
    (raw / "empty").mkdir()
    short = raw / "short"
    short.mkdir()
    sf.write(short / "blip.wav", vowel(200, (730, 1090, 2440), 0.2), RATE)
    return raw


def test_prepare_reports_bad_data_and_keeps_the_rest(tmp_path):
    out = tmp_path / "dataset" / "44k"
    report = prepare_dataset(_raw(tmp_path), out, RATE, loudnorm=True, log=lambda s: None)
    assert list(report.written) == ["singer"]
    clips = sorted((out / "singer").glob("*.wav"))
    assert len([c for c in clips if c.name.startswith("take_")]) == 2  # sliced at the pause
    assert all(c.name.isascii() for c in clips)
    for c in clips:
        info = sf.info(c)
        assert info.samplerate == RATE and info.channels == 1 and 0.3 <= info.duration <= 15.0
    reasons = " | ".join(f"{p}: {r}" for p, r in report.rejected)
    assert "quiet.wav: silent" in reasons
    assert "broken.wav: unreadable" in reasons
    assert "notes.txt: not an audio file" in reasons
    assert "clipped" in reasons and "loud.wav" in reasons
    assert "blip.wav: too short (0.20 s" in reasons
    assert "empty: speaker has no usable clips" in reasons and "short: speaker has no usable clips" in reasons
    assert any("Mélodie" in src for src, _ in report.renamed)
    saved = json.loads((out / "prepare_report.json").read_text())
    assert len(saved["rejected"]) == len(report.rejected)


def test_safe_names_and_loudness():
    assert safe_name("take_1") == "take_1"
    assert safe_name("Mélodie 日本").startswith("Melodie_") and safe_name("日本").startswith("clip_")
    assert safe_name("a b") != safe_name("a_b")
    x = vowel(200, (730, 1090, 2440), 1.0) * 0.1
    y = normalize_loudness(x, RATE)
    assert float(np.max(np.abs(y))) <= 0.95 + 1e-6 and float(np.sqrt(np.mean(y**2))) > 2 * float(np.sqrt(np.mean(x**2)))
    assert SLICER.min_length_ms == 5000


def test_cli_reports_missing_and_empty_folders(tmp_path, capsys):
    assert main(["train", "prepare", "--work", str(tmp_path)]) == 2
    assert "dataset_raw: no such folder" in capsys.readouterr().err
    (tmp_path / "dataset_raw" / "nobody").mkdir(parents=True)
    assert main(["train", "prepare", "--work", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no usable clips" in err and "Traceback" not in err
    assert main(["train", "config", "--work", str(tmp_path / "nowhere")]) == 2
    assert "run 'rtsvc train prepare' first" in capsys.readouterr().err
    assert main(["train", "fit", "--work", str(tmp_path / "nowhere")]) == 2
    assert "config.json" in capsys.readouterr().err

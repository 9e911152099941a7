"""`rtsvc info`: describes so-vits-svc checkpoints safely and checks configs against them."""

from __future__ import annotations

import json

import pytest
import torch

from rtsvc.cli import main


@pytest.fixture(scope="module")
def sovits(fixtures_dir):
    return fixtures_dir / "sovits"


def _run(capsys, *argv):
    code = main(["info", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_describes_full_checkpoint(sovits, capsys):
    code, out, err = _run(capsys, "-m", str(sovits / "v41_vec768_vol" / "G_800.pth"))
    assert code == 0 and err == ""
    for expected in ("full training checkpoint", "float32", "layout: 4.1", "ssl_dim 768", "vec768l12",
                     "speakers: 2", "vol embedding: yes", "vocoder: nsf-hifigan", "f0 predictor head: yes",
                     "parameters: 714,517", "not stored in the checkpoint"):
        assert expected in out, expected


def test_describes_compressed_half_and_snake_and_40(sovits, capsys):
    code, out, _ = _run(capsys, "-m", str(sovits / "v41_vec768_vol" / "G_800_release_half.pth"))
    assert code == 0 and "compressed release file" in out and "float16" in out
    code, out, _ = _run(capsys, "-m", str(sovits / "v41_snake" / "G_800.pth"))
    assert code == 0 and "vocoder: nsf-snake-hifigan" in out
    code, out, _ = _run(capsys, "-m", str(sovits / "v40_vec256" / "G_800.pth"), "-c", str(sovits / "v40_vec256" / "config.json"))
    assert code == 0 and "4.0-compatible" in out and "config is in 4.0 format" in out
    assert "44100 Hz / 512 samples" in out and "solo40" in out and "agrees" in out


def test_disagreeing_config_lists_each_field(sovits, capsys, tmp_path):
    raw = json.loads((sovits / "v41_vec768_vol" / "config.json").read_text())
    raw["model"].update(vol_embedding=False, n_speakers=3)
    raw["spk"]["bass"] = 2
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(raw))
    code, out, _ = _run(capsys, "-m", str(sovits / "v41_vec768_vol" / "G_800.pth"), "-c", str(cfg))
    mismatch_lines = [line for line in out.splitlines() if line.startswith("MISMATCH:")]
    assert code == 1 and len(mismatch_lines) == 2
    assert any("model.n_speakers is 3" in line and "has 2" in line and "Fix:" in line for line in mismatch_lines)
    assert any("model.vol_embedding is false" in line and "has true" in line for line in mismatch_lines)


def test_unsafe_file_is_one_line_error_without_traceback(capsys, tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("payload ran",))

    evil = tmp_path / "G_evil.pth"
    torch.save({"model": Payload()}, evil)
    code, out, err = _run(capsys, "-m", str(evil))
    assert code == 2 and out == "" and "payload ran" not in out + err
    assert err.count("\n") == 1 and "refused" in err and "Traceback" not in err


def test_missing_file_and_bad_config(sovits, capsys, tmp_path):
    code, _, err = _run(capsys, "-m", str(tmp_path / "none.pth"))
    assert code == 2 and "does not exist" in err
    bad = tmp_path / "config.json"
    bad.write_text("{")
    code, _, err = _run(capsys, "-m", str(sovits / "v40_vec256" / "G_800.pth"), "-c", str(bad))
    assert code == 2 and "not valid JSON" in err


def test_help_text(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["info", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "-m G.pth" in out and "-c config.json" in out and "Exit status" in out

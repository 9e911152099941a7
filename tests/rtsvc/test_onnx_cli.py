"""``rtsvc export-onnx``: a tiny voice and its content encoder export, self-check and read back
through rtsvc's loaders; bad input gives one error line and exit 2, never a traceback."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra (onnxruntime) is not installed")

from rtsvc.cli import build_parser, main  # noqa: E402


@pytest.fixture(scope="module")
def voice(tmp_path_factory, fixtures_dir):
    from tiny_voice import make_tiny_voice

    return make_tiny_voice(tmp_path_factory.mktemp("cli_voice"), fixtures_dir, n_speakers=1, vol_embedding=True)


def test_help_lists_the_subcommand(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert "export-onnx" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["export-onnx", "--help"])
    text = capsys.readouterr().out
    for word in ("--moevs", "--encoder", "--speaker-mix", "mel2ph", "harmonic_phase"):
        assert word in text


def test_export_with_encoder_checks_and_reads_back(tmp_path, voice, capsys):
    from rtsvc.backends import choose_backend
    from rtsvc.ort_models import OrtSynthesizer
    from rtsvc.checkpoint import load_sovits
    from rtsvc.encoders import load_content_encoder

    model_path, config_path, pretrain = voice
    out = tmp_path / "voice.onnx"
    code = main(["export-onnx", "-m", str(model_path), "-c", str(config_path), "-o", str(out), "--encoder",
                 "--pretrain-dir", str(pretrain)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert text.count("(ok, tolerance") == 2
    encoder_file = tmp_path / "vec-256-layer-9.onnx"  # so-vits-svc's ONNX encoder name, beside -o
    assert out.is_file() and encoder_file.is_file()
    synth = OrtSynthesizer.from_file(out, choose_backend("onnxruntime"))
    assert synth.facts.source_draws and not synth.facts.speaker_mix and synth.facts.speech_encoder == "vec256l9"
    model, _, _ = load_sovits(model_path, config_path)
    c, f0, uv, vol = torch.randn(1, 256, 17), torch.full((1, 17), 240.0), torch.ones(1, 17), torch.full((1, 17), 0.05)
    expected, _ = model.infer(c, f0, uv, vol=vol, deterministic=True)
    assert (synth.infer(c, f0, uv, vol=vol, deterministic=True)[0] - expected).abs().max().item() <= 1e-3
    onnx_encoder = load_content_encoder("vec256l9-onnx", path=encoder_file)
    assert onnx_encoder.dim == 256


def test_moevs_flavour_has_no_draw_inputs(tmp_path, voice, capsys):
    from rtsvc.backends import choose_backend, make_session

    model_path, config_path, _ = voice
    out = tmp_path / "moevs.onnx"
    assert main(["export-onnx", "-m", str(model_path), "-c", str(config_path), "-o", str(out), "--moevs",
                 "--no-check"]) == 0
    assert "check" not in capsys.readouterr().out
    names = [i.name for i in make_session(out, choose_backend("onnxruntime")).get_inputs()]
    assert names == ["c", "f0", "mel2ph", "uv", "noise", "sid", "vol"]


@pytest.mark.parametrize("case", ["missing model", "missing output folder", "output is the model", "encoder missing"])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, voice, capsys, case):
    model_path, config_path, _ = voice
    args = {
        "missing model": ["-m", str(tmp_path / "nope.pth"), "-c", str(config_path), "-o", str(tmp_path / "x.onnx")],
        "missing output folder": ["-m", str(model_path), "-c", str(config_path), "-o", str(tmp_path / "no" / "x.onnx")],
        "output is the model": ["-m", str(model_path), "-c", str(config_path), "-o", str(model_path)],
        "encoder missing": ["-m", str(model_path), "-c", str(config_path), "-o", str(tmp_path / "x.onnx"), "--no-check",
                            "--encoder", str(tmp_path / "no_encoder.pt")],
    }[case]
    assert main(["export-onnx", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtsvc export-onnx: error: ") and err.count("\n") == 1 and "Traceback" not in err

"""`rtsvc live` with a SoVITS voice: the voice options reach the loader and the backend facts are
shown; misuse is one clear message (exit 2, no traceback). The sound card is replaced by a
wall-clock virtual driver."""

from __future__ import annotations

import pytest
import torch
from signals import sung_vowel
from tiny_voice import ENCODER_FILE, make_tiny_voice

import rtsvc.engine.controller as controller_module
from rtsvc import cli
from rtsvc.engine.drivers import VirtualClockDriver
from rtsvc.engine.voices import VoiceSpec

RATE = 44100


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, fixtures_dir):
    return make_tiny_voice(tmp_path_factory.mktemp("tiny_live_cli"), fixtures_dir)


@pytest.fixture
def virtual_devices(monkeypatch):
    """`Controller()` gets a real-time virtual driver playing a sung vowel; records the specs loaded."""
    threads = torch.get_num_threads()
    monkeypatch.setattr("rtsvc.engine.sd_driver.SoundDeviceDriver",
                        lambda: VirtualClockDriver(sung_vowel(seconds=2.0, sr=RATE), RATE, realtime=True))
    loaded: list[VoiceSpec] = []
    real_loader = controller_module.default_voice_loader

    def loader(spec):
        loaded.append(spec)
        return real_loader(spec)

    monkeypatch.setattr(controller_module, "default_voice_loader", loader)
    yield loaded
    torch.set_num_threads(threads)


def test_live_runs_a_sovits_voice_with_the_given_backend(tiny, virtual_devices, capsys):
    model, config, pretrain = tiny
    rc = cli.main(["live", "-m", str(model), "-c", str(config), "-e", str(pretrain / ENCODER_FILE), "--backend", "torch",
                   "--threads", "1", "--deterministic", "--block-ms", "100", "--f0-method", "dio", "--duration", "0.5"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert virtual_devices[0] == VoiceSpec("sovits", str(model), str(config), encoder_path=str(pretrain / ENCODER_FILE),
                                           backend="torch", threads=1)
    assert "backend torch on cpu (fp32, threads 1" in err and "virtual input" in err and "stopped" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["-e", "enc.pt", "--onnx", "m.onnx"], "-e, --onnx given without -m: these options are for a SoVITS voice"),
    (["--threads", "-1", "-m", "{model}", "-c", "{config}"], "threads must be an integer >= 0"),
    (["--cluster-ratio", "0.5", "-m", "{model}", "-c", "{config}"], "no kmeans_10000.pt or kmeans.npz beside"),
    (["-m", "{model}", "-c", "{config}", "-cm", "{missing}"], "cluster model / feature index not found"),
])
def test_live_voice_option_errors_are_one_message(tiny, virtual_devices, capsys, tmp_path, argv, message):
    model, config, _ = tiny
    names = {"model": str(model), "config": str(config), "missing": str(tmp_path / "nope.pt")}
    assert cli.main(["live", *(a.format(**names) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err

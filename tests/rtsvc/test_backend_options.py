"""Backend options on a machine without a GPU: fp16 and CUDA graphs are refused with one clear
message where they cannot run; the voice spec validates them; the pitch estimator follows the
voice's device. (Their GPU behaviour is tested in test_cuda.py on GPU machines.)"""

from __future__ import annotations

import functools

import pytest
import torch

from rtsvc.backends import choose_backend
from rtsvc.engine.pitch_cache import default_estimator, estimator_for_device
from rtsvc.engine.voices import VoiceSpec, parse_voice_spec
from rtsvc.errors import ParameterError
from cli_run import run_cli


def test_cuda_graphs_are_off_on_the_cpu_and_refused_when_demanded():
    for backend in ("auto", "torch"):
        choice = choose_backend(backend)
        assert choice.cuda_graphs is False and choice.describe()["cuda_graphs"] == "off"
    with pytest.raises(ParameterError, match="CUDA graphs need the torch backend on a CUDA device"):
        choose_backend("torch", cuda_graphs=True)
    with pytest.raises(ParameterError, match="cuda_graphs must be"):
        choose_backend("torch", cuda_graphs="yes")
    assert choose_backend("torch", cuda_graphs=False).cuda_graphs is False


def test_voice_spec_validates_and_keeps_fp16_and_cuda_graphs():
    spec = parse_voice_spec({"model_path": "m.pth", "config_path": "c.json", "device": "cuda", "fp16": True,
                             "cuda_graphs": False})
    assert spec.fp16 is True and spec.cuda_graphs is False
    assert parse_voice_spec(spec.to_dict()) == spec
    assert VoiceSpec("sovits", "m.pth", "c.json").cuda_graphs is None  # auto
    with pytest.raises(ParameterError, match="fp16 must be true or false"):
        VoiceSpec("sovits", "m.pth", "c.json", fp16="yes")
    with pytest.raises(ParameterError, match="cuda_graphs must be"):
        VoiceSpec("sovits", "m.pth", "c.json", cuda_graphs=1)


def test_pitch_estimator_follows_the_voice_device():
    assert estimator_for_device("cpu") is default_estimator
    on_gpu = estimator_for_device("cuda:1")
    assert isinstance(on_gpu, functools.partial) and on_gpu.func is default_estimator
    assert on_gpu.keywords == {"device": "cuda:1"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusals")
def test_render_refuses_fp16_and_cuda_graphs_it_cannot_use(capsys, tmp_path, fixtures_dir):
    from tiny_voice import make_tiny_voice

    src = tmp_path / "in.wav"
    out = tmp_path / "out.wav"
    import numpy as np
    import soundfile as sf

    sf.write(src, (0.2 * np.sin(np.arange(22050) / 10)).astype(np.float32), 22050)
    rc, _, err = run_cli(capsys, "render", str(src), "-o", str(out), "--fp16")
    assert rc != 0 and "--fp16 was given without -m" in err
    model, config, pretrain = make_tiny_voice(tmp_path / "voice", fixtures_dir)
    rc, _, err = run_cli(capsys, "render", str(src), "-o", str(out), "-m", str(model), "-c", str(config), "--fp16")
    assert rc != 0 and "fp16 inference needs a CUDA device" in err
    rc, _, err = run_cli(capsys, "render", str(src), "-o", str(out), "-m", str(model), "-c", str(config),
                         "--backend", "torch", "--cuda-graphs", "on")
    assert rc != 0 and "CUDA graphs need the torch backend on a CUDA device" in err
    assert not out.exists()

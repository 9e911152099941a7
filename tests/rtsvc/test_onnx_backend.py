"""The inference backend switch (rtsvc.backends): how "auto" and explicit requests resolve (and
refuse) with and without onnxruntime / CUDA, that a SovitsVoice given ORT-backed synthesizer
and encoder converts like the torch one, the IO-binding path, CUDA fallback, and input errors.
No GPU here: CUDA paths are only checked for clean fallback or clear refusal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra (onnxruntime) is not installed")

from rtsvc import backends  # noqa: E402
from rtsvc.backends import BackendChoice, apply_backend, choose_backend, describe_backend  # noqa: E402
from rtsvc.errors import ParameterError  # noqa: E402
from rtsvc.params import VoiceParams  # noqa: E402

TOLERANCE = 1e-3


def test_auto_and_explicit_choices_on_this_cpu():
    auto = choose_backend("auto")
    assert auto.name == "onnxruntime" and auto.provider == "CPUExecutionProvider" and auto.reason.startswith("auto")
    torch_choice = choose_backend("torch", threads=2)
    assert torch_choice.name == "torch" and torch_choice.provider is None and torch_choice.threads == 2
    assert choose_backend("onnxruntime").describe()["backend"] == "onnxruntime"


@pytest.mark.parametrize("request_, kwargs, message", [
    ("tensorrt", {}, "backend must be one of"),
    ("auto", {"fp16": True}, "fp16 inference needs a CUDA device"),
    ("torch", {"threads": -1}, "threads must be"),
    ("auto", {"device": "mps"}, "not supported"),
    ("auto", {"device": "banana"}, "not a device name"),
])
def test_bad_requests_are_refused_with_one_message(request_, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        choose_backend(request_, **kwargs)


def test_without_onnxruntime_auto_falls_back_and_explicit_request_is_refused(monkeypatch):
    monkeypatch.setattr(backends, "available_providers", lambda: ())
    choice = choose_backend("auto")
    assert choice.name == "torch" and "onnxruntime not installed" in choice.reason
    with pytest.raises(ParameterError, match="not installed"):
        choose_backend("onnxruntime")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusals; this machine has CUDA")
def test_cuda_requests_without_a_gpu_are_refused(monkeypatch):
    with pytest.raises(ParameterError, match="CUDA"):
        choose_backend("auto", device="cuda")
    monkeypatch.setattr(backends, "available_providers", lambda: ("CPUExecutionProvider",))
    with pytest.raises(ParameterError, match="CUDA GPU"):
        choose_backend("onnxruntime", device="cuda")
    # onnxruntime-gpu present but torch without CUDA: ORT may still run on the GPU, fp16 may not
    monkeypatch.setattr(backends, "available_providers", lambda: ("CUDAExecutionProvider", "CPUExecutionProvider"))
    assert choose_backend("auto", device="cuda").name == "onnxruntime"
    with pytest.raises(ParameterError, match="fp16"):
        choose_backend("onnxruntime", device="cuda", fp16=True)


@pytest.fixture(scope="module")
def tiny_voice_pair(tmp_path_factory, fixtures_dir):
    """(torch voice, ORT-backed voice) of one tiny 2-speaker vec256l9 voice with loudness embedding."""
    from rtsvc.sovits_voice import load_sovits_voice
    from tiny_voice import make_tiny_voice

    model_path, config_path, pretrain = make_tiny_voice(tmp_path_factory.mktemp("voice"), fixtures_dir,
                                                        n_speakers=2, vol_embedding=True)
    torch_voice = load_sovits_voice(model_path, config_path, pretrain_dir=pretrain, backend="torch")
    ort_voice = load_sovits_voice(model_path, config_path, pretrain_dir=pretrain, backend="onnxruntime")
    assert ort_voice.describe()["backend"] == "onnxruntime"
    return torch_voice, ort_voice, ort_voice.backend


def test_voice_with_ort_backend_converts_like_torch(tiny_voice_pair):
    from rtsvc.voice import StreamWindow

    torch_voice, ort_voice, choice = tiny_voice_pair
    assert type(ort_voice.model).__name__ == "OrtSynthesizer"
    assert type(ort_voice.encoder).__name__ == "OrtContentEncoder"
    sr, hop = torch_voice.sample_rate, torch_voice.hop_length
    t = np.arange(int(0.6 * sr)) / sr
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    f0 = np.full(len(audio) // hop, 220.0, dtype=np.float32)
    f0[:5] = 0
    mix = (("speaker0", 0.5), ("speaker1", 0.25))
    for params in (VoiceParams(deterministic=True, speaker=1), VoiceParams(seed=7, speaker_mix=mix),
                   VoiceParams(deterministic=True, speaker_mix=mix, speaker_mix_mode="linear")):
        expected = torch_voice.convert(audio, params, f0=f0)
        got = ort_voice.convert(audio, params, f0=f0)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= TOLERANCE
    window = StreamWindow(audio=audio[: 40 * hop], audio_16k=np.zeros(0, np.float32), f0=f0[:40],
                          out_samples=8 * hop, skip_tail=4 * hop)
    for params in (VoiceParams(deterministic=True), VoiceParams(seed=3), VoiceParams(seed=3)):  # 2nd seed 3: replayed draws
        assert np.abs(ort_voice.convert_window(window, params) - torch_voice.convert_window(window, params)).max() <= TOLERANCE
    facts = describe_backend(ort_voice.model, ort_voice.encoder, choice)
    assert facts["backend"] == "onnxruntime" and facts["synthesizer_provider"] == "CPUExecutionProvider"
    assert facts["encoder_provider"] == "CPUExecutionProvider"


def test_auto_f0_falls_back_to_the_torch_model(tiny_voice_pair):
    torch_voice, ort_voice, _ = tiny_voice_pair
    c = torch.randn(1, 256, 20, generator=torch.Generator().manual_seed(0))
    f0, uv, vol = torch.full((1, 20), 200.0), torch.ones(1, 20), torch.full((1, 20), 0.1)
    expected, f0_expected = torch_voice.model.infer(c, f0, uv, vol=vol, predict_f0=True, deterministic=True)
    got, f0_got = ort_voice.model.infer(c, f0, uv, vol=vol, predict_f0=True, deterministic=True)
    assert torch.equal(f0_got, f0_expected) and (got - expected).abs().max().item() <= TOLERANCE


def test_io_binding_path_and_cuda_fallback(tiny_voice_pair):
    """The IO-binding runner (used on the CUDA provider) gives the same audio when forced on
    CPU; a CUDA choice whose session has no CUDA provider runs plainly on CPU."""
    from rtsvc.backends import make_session
    from rtsvc.ort_models import OrtSynthesizer

    _, ort_voice, _ = tiny_voice_pair
    synth = ort_voice.model
    c = torch.randn(1, 256, 15, generator=torch.Generator().manual_seed(1))
    f0, uv, vol = torch.full((1, 15), 180.0), torch.ones(1, 15), torch.full((1, 15), 0.1)
    plain, _ = synth.infer(c, f0, uv, vol=vol, deterministic=True)
    synth.runner.binding_device = ("cpu", 0)
    try:
        bound, _ = synth.infer(c, f0, uv, vol=vol, deterministic=True)
        bound_again, _ = synth.infer(c, f0, uv, vol=vol, deterministic=True)  # cached device zeros reused
    finally:
        synth.runner.binding_device = None
    assert torch.equal(bound, plain) and torch.equal(bound_again, plain)
    cuda_choice = BackendChoice("onnxruntime", "cuda", False, 1, "test")
    session = make_session(_synth_bytes(ort_voice), cuda_choice)
    fallback = OrtSynthesizer(session, synth.facts, cuda_choice)
    assert fallback.provider == "CPUExecutionProvider" and fallback.runner.binding_device is None
    assert torch.equal(fallback.infer(c, f0, uv, vol=vol, deterministic=True)[0], plain)


def _synth_bytes(voice) -> bytes:
    from rtsvc.onnx_export import synthesizer_onnx_bytes

    return synthesizer_onnx_bytes(voice.model.torch_model, voice.model.facts)


@pytest.mark.parametrize("kwargs, message", [
    ({"g": 2}, "out of range"),
    ({"g": torch.tensor([1.0, 0.0, 0.0])}, "shape"),
    ({"g": torch.tensor([0.0, 0.0])}, "sum to 0"),
    ({"g": torch.tensor([-1.0, 2.0])}, "non-negative"),
    ({"vol": None}, "vol_embedding"),
])
def test_bad_inputs_raise_parameter_errors(tiny_voice_pair, kwargs, message):
    _, ort_voice, _ = tiny_voice_pair
    args = dict(g=0, vol=torch.full((1, 10), 0.1), deterministic=True)
    args.update(kwargs)
    with pytest.raises(ParameterError, match=message):
        ort_voice.model.infer(torch.zeros(1, 256, 10), torch.full((1, 10), 200.0), torch.ones(1, 10), **args)
    with pytest.raises(ParameterError, match="batch 1|shape"):
        ort_voice.model.infer(torch.zeros(2, 256, 10), torch.full((2, 10), 200.0), torch.ones(2, 10),
                              vol=torch.full((2, 10), 0.1))

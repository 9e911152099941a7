"""CUDA paths: a SoVITS voice, its content encoder, FCPE and the live engine on a GPU, in fp32
and fp16, against the same objects on the CPU. Skipped (with the reason) where PyTorch sees no
CUDA GPU, which includes CI; they run on the GPU machines the benchmarks use.

Measures: output SNR against the CPU output (same f0, deterministic and seeded draws): >= 40 dB
in fp32 (cuDNN may use TF32 in convolutions), >= 20 dB in fp16, eager and replayed from CUDA
graphs; encoder features and FCPE salience within 1e-2 relative of the CPU's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtsvc.params import VoiceParams
from signals import sung_vowel
from tiny_voice import make_tiny_voice

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (PyTorch sees none here; run on a GPU machine)")


def snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    noise = float(np.sum((ref.astype(np.float64) - x) ** 2))
    return 10.0 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / max(noise, 1e-30))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, fixtures_dir):
    return make_tiny_voice(tmp_path_factory.mktemp("cuda-voice"), fixtures_dir, vol_embedding=True)


def _voices(tiny, **kwargs):
    from rtsvc.sovits_voice import load_sovits_voice

    model, config, pretrain = tiny
    return (load_sovits_voice(model, config, pretrain_dir=pretrain, backend="torch"),
            load_sovits_voice(model, config, pretrain_dir=pretrain, backend="torch", device="cuda", **kwargs))


def _clip_and_f0(voice):
    x = sung_vowel(220.0, 1.0, voice.sample_rate)
    f0 = np.full(len(x) // voice.hop_length, 220.0, dtype=np.float32)
    return x, f0


@pytest.mark.parametrize("fp16, graphs, floor_db", [(False, False, 40.0), (False, True, 40.0), (True, False, 20.0),
                                                    (True, True, 20.0)])
@pytest.mark.parametrize("deterministic", [True, False])
def test_sovits_voice_on_cuda_matches_cpu(tiny, fp16, graphs, floor_db, deterministic):
    """Same clip four times: calls 1-2 run eagerly, call 3 captures the CUDA graphs, call 4
    replays them; every output matches the CPU's (seeded draws are graph inputs)."""
    cpu, gpu = _voices(tiny, fp16=fp16, cuda_graphs=graphs)
    facts = gpu.describe()
    assert facts["device"] == "cuda" and facts["precision"] == ("fp16" if fp16 else "fp32")
    x, f0 = _clip_and_f0(cpu)
    params = VoiceParams(transpose=3.0, deterministic=deterministic)
    a = cpu.convert(x, params, f0=f0)
    for call in range(4):
        b = gpu.convert(x, params, f0=f0)
        assert b.dtype == np.float32 and np.isfinite(b).all()
        assert snr_db(a, b) >= floor_db, f"call {call + 1}: CUDA output SNR {snr_db(a, b):.1f} dB vs CPU ({facts})"
    if graphs:
        assert gpu.describe()["cuda_graphs"] == "on (1 captured)", gpu.describe()
        assert gpu.model.runner.call.replays >= 1 and gpu.encoder.call.replays >= 1
    else:
        assert gpu.describe()["cuda_graphs"] == "off"
        assert next(gpu.model.parameters()).dtype == (torch.float16 if fp16 else torch.float32)


def test_graphed_call_counts_captures_and_falls_back():
    from rtsvc.cuda_graphs import EAGER_CALLS_BEFORE_CAPTURE, MAX_GRAPHS, GraphedCall

    call = GraphedCall(lambda x: torch.cumsum(x * 2.0, dim=-1), "cuda")
    for n in range(EAGER_CALLS_BEFORE_CAPTURE + 2):
        x = torch.randn(3, 50)
        assert torch.allclose(call(x).cpu(), torch.cumsum(x * 2.0, dim=-1), atol=1e-5)
    assert call.replays == 2 and call.describe() == "on (1 captured)"
    for length in range(MAX_GRAPHS + 1):  # LRU: at most MAX_GRAPHS kept
        for _ in range(EAGER_CALLS_BEFORE_CAPTURE + 1):
            call(torch.zeros(2, 10 + length))
    assert len(call.graphs) == MAX_GRAPHS
    syncing = GraphedCall(lambda x: x * float(x.sum().item()), "cuda")  # a host sync cannot be captured
    for _ in range(EAGER_CALLS_BEFORE_CAPTURE + 2):
        x = torch.ones(4)
        assert torch.allclose(syncing(x).cpu(), x * 4.0)
    assert syncing.failure is not None and syncing.describe().startswith("off:")


def test_auto_backend_with_fp16_picks_torch_with_graphs(tiny):
    from rtsvc.sovits_voice import load_sovits_voice

    model, config, pretrain = tiny
    voice = load_sovits_voice(model, config, pretrain_dir=pretrain, device="cuda", fp16=True)
    facts = voice.describe()
    assert facts["backend"] == "torch" and facts["cuda_graphs"] == "on (0 captured)", facts


def test_content_encoder_on_cuda_matches_cpu(cv_dir):
    from rtsvc.encoders import load_content_encoder

    path = cv_dir / "contentvec_tiny_legacy_like.pt"
    audio = np.load(cv_dir / "input.npy").reshape(-1).astype(np.float32)
    cpu = load_content_encoder("vec768l12", path=path).encode(audio)
    gpu = load_content_encoder("vec768l12", path=path, device="cuda").encode(audio)
    assert gpu.device.type == "cuda"
    err = (gpu.cpu() - cpu).abs().max().item() / cpu.abs().max().item()
    assert err < 1e-2, f"encoder features differ by {err:.2e} (relative to the peak)"


def test_content_encoder_live_window_on_cuda_matches_cpu(cv_dir, monkeypatch):
    """A live window's few frames take the batched-matmul positional convolution on CUDA;
    it agrees with the Conv1d form and with the CPU."""
    from rtsvc.encoders import load_content_encoder
    from rtsvc.models import hubert

    path = cv_dir / "contentvec_tiny_legacy_like.pt"
    audio = np.load(cv_dir / "input.npy").reshape(-1).astype(np.float32)[:2400]  # ~7 frames
    cpu = load_content_encoder("vec768l12", path=path).encode(audio)
    encoder = load_content_encoder("vec768l12", path=path, device="cuda")
    matmul = encoder.encode(audio).cpu()
    monkeypatch.setattr(hubert, "POS_CONV_MATMUL_MAX_FRAMES", 0)
    conv = encoder.encode(audio).cpu()
    for got in (matmul, conv):
        err = (got - cpu).abs().max().item() / cpu.abs().max().item()
        assert err < 1e-2, f"encoder features differ by {err:.2e} (relative to the peak)"


def test_fcpe_network_on_cuda_matches_cpu():
    from rtsvc.models.fcpe import Fcpe, FcpeNetConfig
    from rtsvc.models.fcpe_mel import MelConfig

    torch.manual_seed(0)
    fcpe = Fcpe(MelConfig(), FcpeNetConfig())
    x = torch.from_numpy(sung_vowel(200.0, 0.5, 16000))[None]
    with torch.inference_mode():
        mel = fcpe.front_end(x)
        ref = fcpe.network(mel)
        fcpe.to("cuda")
        got = fcpe.network(fcpe.front_end(x.cuda())).cpu()
    err = (got - ref).abs().max().item() / ref.abs().max().item()
    assert err < 1e-2, f"FCPE salience differs by {err:.2e} (relative to the peak)"


def test_crepe_on_cuda_matches_cpu():
    """CREPE's network and rtsvc.pitch_crepe with the model on the GPU (random tiny-capacity
    weights: the device is what counts; the released weights are checked on the CPU)."""
    from rtsvc.models.crepe import Crepe
    from rtsvc.pitch_crepe import crepe_f0

    torch.manual_seed(0)
    model = Crepe(capacity=4).eval()
    frames = torch.randn(8, 1024)
    x = sung_vowel(200.0, 0.5, 44100)
    with torch.inference_mode():
        ref = model.probabilities(frames)
        f0_cpu = crepe_f0(model, x, 44100, 512, len(x) // 512, 0.0, 50.0, 1100.0)
        model.to("cuda")
        got = model.probabilities(frames.cuda()).cpu()
        f0_gpu = crepe_f0(model, x, 44100, 512, len(x) // 512, 0.0, 50.0, 1100.0)
    assert (got - ref).abs().max().item() < 1e-3
    assert np.mean(np.isclose(f0_gpu, f0_cpu, rtol=1e-3)) > 0.9  # near-ties in Viterbi may differ


def test_live_engine_with_a_cuda_voice(tiny, monkeypatch):
    """The engine streams a CUDA fp16 voice with the pitch estimated on the GPU (the default
    estimator follows the voice's device), after warming the voice up before the first block.
    FCPE has random weights where torchfcpe's file is not installed (the device is what counts)."""
    from rtsvc import pitch
    from rtsvc.engine.controller import Controller
    from rtsvc.engine.drivers import VirtualClockDriver
    from rtsvc.engine.params import LiveParams
    from rtsvc.engine.pitch_cache import estimator_for_device
    from rtsvc.models.fcpe import Fcpe, FcpeNetConfig
    from rtsvc.models.fcpe_mel import MelConfig
    from rtsvc.models.fcpe_weights import torchfcpe_weights_path

    asked, models = [], {}
    real_model = pitch._shared.fcpe_model

    def fcpe_model(device="cpu", backend="torch"):
        asked.append((str(device), backend))
        if torchfcpe_weights_path() is not None:
            return real_model(device, backend)
        if device not in models:
            torch.manual_seed(0)
            models[device] = pitch._graphed_on_cuda(Fcpe(MelConfig(), FcpeNetConfig()).to(device))
        return models[device]

    monkeypatch.setattr(pitch._shared, "fcpe_model", fcpe_model)
    _, gpu = _voices(tiny, fp16=True)
    calls = []
    real = gpu.warm_up
    gpu.warm_up = lambda *a: (calls.append(a), real(*a))
    estimator = estimator_for_device("cuda")
    assert estimator.keywords == {"device": "cuda"}
    x = sung_vowel(220.0, 1.5, 48000)
    drv = VirtualClockDriver(x, 48000, tail_seconds=0.3)
    ctl = Controller(driver=drv, params=LiveParams(block_ms=50.0, threshold_db=-120.0, f0_method="fcpe"), voice=gpu)
    ctl.start()
    drv.run()
    st = ctl.status()
    ctl.stop()
    assert calls, "the voice was not warmed up before the stream opened"
    assert asked and all(device == "cuda" for device, _ in asked), asked
    # the warm-up captured every graph: the blocks replayed them
    assert gpu.model.runner.call.replays >= st.voice_blocks
    assert gpu.encoder.call.replays >= st.voice_blocks
    fcpe = pitch._shared.fcpe_model("cuda")
    assert fcpe.replays >= st.voice_blocks, [call.describe() for call in fcpe.calls.values()]
    assert st.last_error is None and st.fallback_blocks == 0
    assert st.voice_blocks > 10
    y = drv.output
    assert np.isfinite(y).all() and np.abs(y).max() > 1e-4


def test_engine_order_runs_pitch_beside_the_queued_encoder_with_the_same_result(tiny):
    """The live engine queues the voice's content encoder (begin_window) on the default stream,
    then estimates pitch with FCPE on FCPE's own stream, then converts. Pitch must not wait for
    the default stream (checked while that stream is held busy by a GPU spin), and every block
    equals the plain order's (pitch, then convert_window encoding by itself) within float
    rounding, graphs replayed."""
    from rtsvc import pitch
    from rtsvc.cuda_graphs import GraphedFcpe
    from rtsvc.models.fcpe import Fcpe, FcpeNetConfig
    from rtsvc.models.fcpe_mel import MelConfig
    from rtsvc.voice import StreamWindow

    torch.manual_seed(0)
    fcpe = GraphedFcpe(Fcpe(MelConfig(), FcpeNetConfig()).to("cuda"))
    _, gpu = _voices(tiny, cuda_graphs=True)
    x, _ = _clip_and_f0(gpu)
    hop, frames = gpu.hop_length, 24
    params = VoiceParams(deterministic=True)
    from rtsvc.audio_io import resample

    def window(start):
        audio = x[start * hop : (start + frames) * hop]
        return audio, resample(audio, gpu.sample_rate, 16000)

    def f0_of(audio):
        return pitch._neural_f0(fcpe, audio, gpu.sample_rate, frames, 0.05, 50.0, 1100.0)

    for start in range(6):  # calls 1-2 eager, 3 captures, then replays
        audio, a16 = window(start)
        f0 = f0_of(audio)
        plain = gpu.convert_window(StreamWindow(audio, a16, f0, out_samples=2 * hop), params)
        early = gpu.begin_window(audio, a16)
        if start >= 4:  # graphs captured: hold the default stream busy behind the queued encoder
            torch.cuda._sleep(2_000_000_000)
        f0_beside = f0_of(audio)
        if start >= 4:
            assert not torch.cuda.current_stream().query(), "pitch waited for the default stream"
        np.testing.assert_allclose(f0_beside, f0, rtol=0, atol=1e-3)
        engine = gpu.convert_window(StreamWindow(audio, a16, f0_beside, out_samples=2 * hop, early=early), params)
        np.testing.assert_allclose(engine, plain, rtol=0, atol=1e-5)
    assert fcpe.replays >= 3 and gpu.encoder.call.replays >= 3 and gpu.model.runner.call.replays >= 3


def test_onnxruntime_cuda_provider_matches_torch(tiny):
    from rtsvc.backends import PROVIDERS, available_providers
    from rtsvc.sovits_voice import load_sovits_voice

    if PROVIDERS["cuda"] not in available_providers():
        pytest.skip(f"onnxruntime here has {', '.join(available_providers()) or 'no providers'}; "
                    "CUDAExecutionProvider needs onnxruntime-gpu")
    model, config, pretrain = tiny
    ref = load_sovits_voice(model, config, pretrain_dir=pretrain, backend="torch")
    ort = load_sovits_voice(model, config, pretrain_dir=pretrain, backend="onnxruntime", device="cuda")
    assert ort.describe()["synthesizer_provider"] == PROVIDERS["cuda"]
    x, f0 = _clip_and_f0(ref)
    params = VoiceParams(transpose=3.0, deterministic=True)
    assert snr_db(ref.convert(x, params, f0=f0), ort.convert(x, params, f0=f0)) >= 40.0

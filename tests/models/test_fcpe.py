"""rtsvc's own FCPE (models/fcpe*.py) against torchfcpe 0.0.4, plus the weight loader's rules.

torchfcpe is imported here only, as the reference, never by rtsvc. Importing it needs stand-ins:
``torchfcpe/mel_extractor.py`` does ``from torchaudio.transforms import Resample`` at import time
(used only to resample input that is not at 16 kHz; every call here passes 16 kHz audio, so the
stand-in raises if it is ever constructed), and ``model_conformer_naive.py`` imports
``local_attention``, whose package imports ``hyper_connections`` (not installed; only its
LocalTransformer uses it, which FCPE never builds). If local-attention itself is missing, it is
stood in for too: the bundled model is conv-only, so LocalAttention is never constructed. The
stand-ins are removed from ``sys.modules`` right after the import, so no other test sees them.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from stand_ins import import_with_stand_ins, refuse, stub

from rtsvc.audio_io import read_audio
from rtsvc.errors import ModelFileError
from rtsvc.models import fcpe_weights
from rtsvc.models.fcpe import Fcpe, FcpeNetConfig, FcpeNetwork
from rtsvc.models.fcpe_mel import MelConfig, mel_filterbank
from rtsvc.models.fcpe_weights import find_fcpe_weights, load_fcpe, read_fcpe_checkpoint

SR = 16000
#: Agreement with torchfcpe on voiced frames (observed: ~0.002 cents; the mel is bit-identical).
MAX_CENTS_DIFF = 0.05
#: Frames whose reference peak salience is this close to the threshold may flip either way.
VOICING_MARGIN = 1e-4


def _need(what: str) -> None:
    """Skip locally, fail on CI (CI=1): a missing reference must not silently pass there."""
    msg = f"{what}; install it with `pip install --no-deps torchfcpe==0.0.4`"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def import_torchfcpe():
    """Import torchfcpe with the stand-ins described in the module docstring."""
    transforms = stub("torchaudio.transforms", Resample=refuse)
    stubs = {"torchaudio": stub("torchaudio", transforms=transforms), "torchaudio.transforms": transforms,
             "hyper_connections": stub("hyper_connections", get_init_and_expand_reduce_stream_functions=refuse)}
    if importlib.util.find_spec("local_attention") is None:
        stubs["local_attention"] = stub("local_attention", LocalAttention=refuse)
    # local_attention is imported against the hyper_connections stand-in: forget it again
    return import_with_stand_ins("torchfcpe", stubs, forget=("local_attention", "hyper_connections", "torchaudio"))


@pytest.fixture(scope="module")
def torchfcpe():
    if importlib.util.find_spec("torchfcpe") is None:
        _need("torchfcpe (the reference implementation and the weights) is not installed")
    return import_torchfcpe()


@pytest.fixture(scope="module")
def reference(torchfcpe):
    return torchfcpe.spawn_bundled_infer_model(device="cpu")


@pytest.fixture(scope="module")
def ours():
    if fcpe_weights.torchfcpe_weights_path() is None:
        _need("torchfcpe's bundled FCPE weights are not installed")
    return load_fcpe(pretrain_dir=Path("/nonexistent-pretrain"))


def _sweep(seconds: float = 2.0) -> np.ndarray:
    """Exponential 100 -> 1600 Hz sweep with a second harmonic, 0.2 s of silence first."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(100.0 * 2.0 ** (t * 4.0 / seconds)) / SR
    x = 0.4 * np.sin(phase) + 0.1 * np.sin(2 * phase)
    x[: SR // 5] = 0.0
    return x.astype(np.float32)


def _voiced_buzz(seconds: float = 1.5) -> np.ndarray:
    """Glottal-like pulse train gliding 180 -> 260 Hz, with noise gaps and low-level noise."""
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * SR)) / SR
    f = 180.0 + 80.0 * t / seconds
    phase = np.cumsum(f) / SR
    x = sum(np.sin(2 * np.pi * k * phase) / k for k in range(1, 30))
    x[int(0.5 * SR): int(0.7 * SR)] = 0.0
    x = 0.3 * x / np.abs(x).max() + 0.01 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def _speech(repo_root: Path) -> np.ndarray:
    path = repo_root / "examples" / "speech.wav"
    if not path.is_file():
        _need(f"{path} (espeak-ng speech shipped with the repo) is missing")
    return read_audio(path, target_rate=SR).audio[: 3 * SR]


@pytest.mark.parametrize("htk", [False, True])
def test_filterbank_is_librosas_bit_for_bit(torchfcpe, htk):
    """torchfcpe ships a copy of librosa's mel(); FCPE uses Slaney, RMVPE HTK (fmin 30)."""
    from torchfcpe.mel_fn_librosa import mel as librosa_mel

    for sr, n_fft, n_mels, fmin, fmax in ((16000, 1024, 128, 0.0, 8000.0), (16000, 1024, 128, 30.0, 8000.0),
                                          (22050, 2048, 80, 0.0, 11025.0), (44100, 2048, 128, 40.0, 16000.0)):
        ref = librosa_mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk)
        ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk)
        assert ours.shape == ref.shape == (n_mels, n_fft // 2 + 1)
        np.testing.assert_array_equal(ours, ref)
    assert mel_filterbank(16000, 1024, 128, 0.0, 8000.0) is mel_filterbank(16000, 1024, 128, 0.0, 8000.0)


@pytest.mark.parametrize("n", [0, 100, 300, 500, 591, 592, 1600, 16037])
def test_log_mel_matches_torchfcpe(reference, ours, n):
    x = torch.from_numpy(_sweep()[3000: 3000 + n].copy())[None]
    ref = reference.wav2mel(x[..., None], SR) if n else None
    got = ours.front_end(x)
    assert got.shape == (1, n // 160 + 1, 128)
    if ref is not None:
        assert ref.shape == got.shape
        assert torch.max(torch.abs(ref - got)).item() <= 1e-5


def _compare(reference, ours, x: np.ndarray, thresholds: tuple[float, ...]) -> list[tuple[int, float]]:
    """Per threshold: (voiced frames compared, max |cents| difference); asserts identical voicing.

    The reference f0 comes from torchfcpe's own mel, network and local-argmax decoder (one
    network pass, decoded at each threshold); ours from :class:`Fcpe` end to end.
    """
    audio = torch.from_numpy(x)[None]
    with torch.no_grad():
        latent = reference.model(reference.wav2mel(audio[..., None], SR))
        ref_peak = latent.max(-1).values[0].numpy()
        with torch.inference_mode():
            salience = ours.network(ours.front_end(audio))
    results = []
    for threshold in thresholds:
        with torch.no_grad():
            cents = reference.model.latent2cents_local_decoder(latent, threshold=threshold)
            ref_f0 = reference.model.cent_to_f0(cents)[0, :, 0].numpy()
        got = ours.network.decode_local_argmax(salience, threshold)[0].numpy()
        assert got.shape == ref_f0.shape == (len(x) // 160 + 1,)
        clear = np.abs(ref_peak - threshold) > VOICING_MARGIN
        np.testing.assert_array_equal(got[clear] > 0, ref_f0[clear] > 0)
        both = (got > 0) & (ref_f0 > 0)
        diff = np.abs(1200.0 * np.log2(got[both] / ref_f0[both]))
        results.append((int(both.sum()), float(diff.max()) if both.any() else 0.0))
    return results


@pytest.mark.parametrize("signal", ["sweep", "buzz", "speech"])
def test_f0_matches_torchfcpe(reference, ours, repo_root, signal):
    x = {"sweep": _sweep, "buzz": _voiced_buzz}.get(signal, lambda: _speech(repo_root))()
    thresholds = (0.05, 0.006)
    for threshold, (voiced, worst) in zip(thresholds, _compare(reference, ours, x, thresholds)):
        assert voiced > 0.3 * (len(x) // 160), f"too few voiced frames ({voiced}) to compare"
        assert worst <= MAX_CENTS_DIFF, f"{signal} thr {threshold}: {worst:.4f} cents"


def test_end_to_end_call_matches_torchfcpe_call(reference, ours):
    """The public call paths (torchfcpe's model(wav, sr, ...) and ours(audio, threshold))."""
    x = torch.from_numpy(_voiced_buzz(0.5))[None]
    with torch.no_grad():
        ref = reference(x[..., None], SR, "local_argmax", 0.05)[0, :, 0]
    got = ours(x, 0.05)[0]
    np.testing.assert_array_equal(got.numpy() > 0, ref.numpy() > 0)
    both = (got > 0) & (ref > 0)
    assert both.sum() > 20
    assert torch.max(torch.abs(1200 * torch.log2(got[both] / ref[both]))).item() <= MAX_CENTS_DIFF


def test_silence_is_unvoiced(ours):
    assert torch.all(ours(torch.zeros(1, 8000)) == 0)


def test_random_tiny_model_matches_torchfcpe(torchfcpe, tmp_path):
    """A tiny random torchfcpe model (new-style weight norm keys, 2 layers, 16 channels) saved
    in torchfcpe's format loads strictly into ours and gives the same salience."""
    from torchfcpe.models import CFNaiveMelPE

    torch.manual_seed(0)
    ref = CFNaiveMelPE(input_channels=128, out_dims=360, hidden_dims=16, n_layers=2, n_heads=2,
                       f0_max=1975.5, f0_min=32.70, use_fa_norm=True, conv_only=True).eval()
    config = {"mel": {"sr": 16000, "num_mels": 128, "n_fft": 1024, "win_size": 1024, "hop_size": 160, "fmin": 0,
                      "fmax": 8000},
              "model": {"type": "CFNaiveMelPE", "out_dims": 360, "hidden_dims": 16, "n_layers": 2, "n_heads": 2,
                        "f0_min": 32.7, "f0_max": 1975.5, "use_fa_norm": True, "conv_only": True}}
    path = tmp_path / "tiny.pt"
    torch.save({"model": ref.state_dict(), "config_dict": config, "global_step": 0}, path)
    model = load_fcpe(path)
    assert model.network.config == FcpeNetConfig(hidden=16, n_layers=2)
    mel = torch.randn(2, 37, 128)
    with torch.no_grad():
        torch.testing.assert_close(model.network(mel), ref(mel), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model.network.decode_local_argmax(model.network(mel), 0.3),
                                   ref.infer(mel, threshold=0.3)[..., 0], rtol=1e-5, atol=1e-3)


def test_tiny_network_shapes():
    net = FcpeNetwork(FcpeNetConfig(n_mels=8, bins=40, hidden=8, n_layers=1)).eval()
    with torch.no_grad():
        sal = net(torch.randn(3, 5, 8))
    assert sal.shape == (3, 5, 40) and torch.all((sal >= 0) & (sal <= 1))
    assert net.cent_table.shape == (40,)


def test_local_argmax_decoder_semantics():
    net = FcpeNetwork(FcpeNetConfig(n_mels=4, bins=20, hidden=4, n_layers=0))
    cents = net.cent_table
    sal = torch.zeros(1, 4, 20)
    sal[0, 0, 10], sal[0, 0, 11], sal[0, 0, 3] = 0.9, 0.3, 0.85  # bin 3 is outside the 9-bin window of 10
    sal[0, 1, 0], sal[0, 1, 1] = 0.5, 0.5                      # window clamped at the low end (bin 0 x5)
    sal[0, 2, 19] = 0.05                                        # peak exactly at the threshold: unvoiced
    sal[0, 3, 19], sal[0, 3, 15] = 0.8, 0.2                     # clamped at the high end (bin 19 x5)
    f0 = net.decode_local_argmax(sal, threshold=0.05)[0]

    def hz(c: torch.Tensor) -> float:
        return float(10.0 * 2.0 ** (c / 1200.0))

    assert f0[0].item() == pytest.approx(hz((0.9 * cents[10] + 0.3 * cents[11]) / 1.2), rel=1e-6)
    # Window indices are clamped, not dropped: the edge bin is counted once per clamped index.
    assert f0[1].item() == pytest.approx(hz((5 * cents[0] + cents[1]) / 6), rel=1e-6)
    assert f0[2].item() == 0.0
    assert f0[3].item() == pytest.approx(hz((5 * 0.8 * cents[19] + 0.2 * cents[15]) / 4.2), rel=1e-6)


# ---- finding and loading the weights ----------------------------------------------------------------
def _fake_checkpoint(path: Path, state: dict | None = None, model_config: dict | None = None,
                     top: dict | None = None) -> Path:
    """A tiny checkpoint in torchfcpe's format; ``state``/``model_config``/``top`` entries update
    the state dict, the config's model section and the top-level dict (None deletes a key)."""
    net = FcpeNetConfig(hidden=8, n_layers=1)
    model = Fcpe(MelConfig(), net)
    weights = {"input_stack.0.weight": model.network.mel_in_conv.weight, "input_stack.0.bias": model.network.mel_in_conv.bias,
             "input_stack.1.weight": torch.ones(8), "input_stack.1.bias": torch.zeros(8),
             "input_stack.3.weight": model.network.mel_in_conv2.weight, "input_stack.3.bias": model.network.mel_in_conv2.bias,
             "net.encoder_layers.0.conformer.net.0.weight": torch.ones(8),
             "net.encoder_layers.0.conformer.net.0.bias": torch.zeros(8),
             "net.encoder_layers.0.conformer.net.2.weight": torch.randn(32, 8, 1),
             "net.encoder_layers.0.conformer.net.2.bias": torch.zeros(32),
             "net.encoder_layers.0.conformer.net.4.conv.weight": torch.randn(16, 1, 31),
             "net.encoder_layers.0.conformer.net.4.conv.bias": torch.zeros(16),
             "net.encoder_layers.0.conformer.net.6.weight": torch.randn(8, 16, 1),
             "net.encoder_layers.0.conformer.net.6.bias": torch.zeros(8),
             "net.encoder_layers.0.norm.weight": torch.ones(8), "net.encoder_layers.0.norm.bias": torch.zeros(8),
             "norm.weight": torch.ones(8), "norm.bias": torch.zeros(8),
             "output_proj.bias": torch.zeros(360), "output_proj.weight_g": torch.ones(360, 1),
             "output_proj.weight_v": torch.randn(360, 8), "cent_table": model.network.cent_table,
             "gaussian_blurred_cent_mask": torch.tensor(6000.0)}
    config = {"mel": {"sr": 16000, "num_mels": 128, "n_fft": 1024, "win_size": 1024, "hop_size": 160, "fmin": 0,
                      "fmax": 8000},
              "model": {"type": "CFNaiveMelPE", "out_dims": 360, "hidden_dims": 8, "n_layers": 1, "n_heads": 8,
                        "f0_min": 32.7, "f0_max": 1975.5, "use_fa_norm": True, "conv_only": True}}
    ckpt = {"model": weights, "config_dict": config, "global_step": 1}
    for target, updates in ((weights, state), (config["model"], model_config), (ckpt, top)):
        for key, value in (updates or {}).items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    torch.save(ckpt, path)
    return path


def test_fake_checkpoint_loads_and_weight_norm_is_folded(tmp_path):
    path = _fake_checkpoint(tmp_path / "ok.pt")
    model = load_fcpe(path)
    v = read_fcpe_checkpoint(path)[2]["output_proj.weight_v"]
    torch.testing.assert_close(model.network.out_proj.weight, v / v.norm(dim=1, keepdim=True))
    assert model(torch.zeros(1, 1600)).shape == (1, 11)


@pytest.mark.parametrize("change, words", [
    ({"state": {"net.encoder_layers.0.extra.weight": torch.zeros(1)}}, "unexpected FCPE weights"),
    ({"state": {"norm.bias": None}}, "do not fit"),
    ({"state": {"norm.bias": torch.zeros(9)}}, "do not fit"),
    ({"model_config": {"conv_only": False}}, "attention layers"),
    ({"model_config": {"dropout_rate": 0.1}}, "unknown FCPE model setting"),
    ({"top": {"config_dict": None, "config": {"model": {}}}}, "older so-vits-svc FCPE file"),
    ({"top": {"model": None}}, "expected a torchfcpe checkpoint"),
])
def test_bad_checkpoints_are_refused(tmp_path, change, words):
    path = _fake_checkpoint(tmp_path / "bad.pt", **change)
    with pytest.raises(ModelFileError, match=words):
        load_fcpe(path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_unsafe_or_garbage_files_are_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "config_dict": _Evil()}, evil)
    with pytest.raises(ModelFileError, match="not a loadable FCPE weights file"):
        load_fcpe(evil)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError, match="not a loadable"):
        load_fcpe(junk)


def test_lookup_order(tmp_path, monkeypatch):
    bundled = _fake_checkpoint(tmp_path / "bundled.pt")
    monkeypatch.setattr(fcpe_weights, "torchfcpe_weights_path", lambda: bundled)
    pretrain = tmp_path / "pretrain"
    pretrain.mkdir()
    assert find_fcpe_weights(None, pretrain) == bundled
    user = _fake_checkpoint(pretrain / "fcpe.pt")
    assert find_fcpe_weights(None, pretrain) == user
    explicit = _fake_checkpoint(tmp_path / "explicit.pt")
    assert find_fcpe_weights(explicit, pretrain) == explicit
    with pytest.raises(ModelFileError, match="missing.pt: FCPE weights file not found"):
        find_fcpe_weights(tmp_path / "missing.pt", pretrain)


def test_missing_weights_message_names_both_places(tmp_path, monkeypatch):
    monkeypatch.setattr(fcpe_weights, "torchfcpe_weights_path", lambda: None)
    with pytest.raises(ModelFileError) as info:
        load_fcpe(pretrain_dir=tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "fcpe.pt") in msg and "torchfcpe/assets/fcpe_c_v001.pt" in msg
    assert "pip install --no-deps torchfcpe==0.0.4" in msg


def test_bundled_weights_found_without_importing_torchfcpe():
    if importlib.util.find_spec("torchfcpe") is None:
        _need("torchfcpe is not installed")
    code = ("import sys; from rtsvc.models.fcpe_weights import load_fcpe; m = load_fcpe(); "
            "assert 'torchfcpe' not in sys.modules and 'torchaudio' not in sys.modules; print('ok')")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]

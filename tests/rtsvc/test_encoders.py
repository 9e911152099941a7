"""rtsvc.encoders: the so-vits-svc speech_encoder table, loading, messages, torch and ONNX paths.

Real weights are not available; the tiny fairseq fixtures (../shared/fixtures/contentvec) stand in
for checkpoint_best_legacy_500.pt (128/32-dim outputs instead of 768/256).
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from rtsvc.encoders import (
    PRETRAIN_ENV,
    SPEECH_ENCODERS,
    UNSUPPORTED_SPEECH_ENCODERS,
    OnnxContentEncoder,
    TorchContentEncoder,
    default_pretrain_dir,
    load_content_encoder,
    speech_encoder_spec,
)
from rtsvc.errors import ModelFileError, ParameterError
from rtsvc.models.hubert import UnitsForExport
from rtsvc.models.hubert_weights import load_fairseq_hubert

ATOL = 1e-4
LEGACY = "contentvec_tiny_legacy_like.pt"

#: so-vits-svc 4.1 speech_encoder names (utils.get_speech_encoder / README "List of Encoders").
SOVITS_41_NAMES = (
    "vec768l12", "vec256l9", "vec256l9-onnx", "vec256l12-onnx", "vec768l9-onnx", "vec768l12-onnx",
    "hubertsoft-onnx", "hubertsoft", "whisper-ppg", "cnhubertlarge", "dphubert", "whisper-ppg-large", "wavlmbase+",
)


@pytest.fixture(scope="module")
def onnxruntime_installed() -> None:
    """The ONNX tests need the `onnx` extra (installed by `make test`); CI must have it."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        msg = "onnxruntime is not installed (pip install 'rtsvc[onnx]'); ONNX encoder tests not run"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def _audio(cv_dir: Path, name: str) -> np.ndarray:
    return np.load(cv_dir / f"{name}.npy")


def _ref(cv_dir: Path, name: str) -> np.ndarray:
    """A fixture reference in so-vits-svc orientation (1, channels, frames)."""
    return np.load(cv_dir / f"{name}.npy").transpose(0, 2, 1)


def test_table_covers_every_sovits_41_name():
    assert set(SPEECH_ENCODERS) | set(UNSUPPORTED_SPEECH_ENCODERS) == set(SOVITS_41_NAMES)
    assert not set(SPEECH_ENCODERS) & set(UNSUPPORTED_SPEECH_ENCODERS)
    facts = {n: (s.dim, s.output_layer, s.final_proj, s.default_file) for n, s in SPEECH_ENCODERS.items()}
    assert facts["vec768l12"] == (768, 12, False, "checkpoint_best_legacy_500.pt")
    assert facts["vec256l9"] == (256, 9, True, "checkpoint_best_legacy_500.pt")
    assert facts["hubertsoft"] == (256, None, True, "hubert-soft-0d54a1f4.pt")  # None: every layer
    assert facts["vec768l12-onnx"][3] == "vec-768-layer-12.onnx"
    assert facts["vec256l9-onnx"][3] == "vec-256-layer-9.onnx"
    assert facts["vec256l12-onnx"][3] == "vec-256-layer-12.onnx"
    assert facts["vec768l9-onnx"][3] == "vec-768-layer-9.onnx"
    assert facts["hubertsoft-onnx"][3] == "hubert-soft.onnx"


@pytest.mark.parametrize("name", sorted(UNSUPPORTED_SPEECH_ENCODERS))
def test_unsupported_names_say_so_and_list_supported(name, tmp_path):
    with pytest.raises(ModelFileError) as err:
        load_content_encoder(name, pretrain_dir=tmp_path)
    message = str(err.value)
    assert f"{name!r}" in message and "not supported by rtsvc" in message
    assert all(supported in message for supported in SPEECH_ENCODERS)


def test_unknown_name():
    with pytest.raises(ModelFileError, match="unknown speech encoder 'vec512'"):
        speech_encoder_spec("vec512")


def test_missing_file_message(tmp_path, monkeypatch):
    monkeypatch.delenv(PRETRAIN_ENV, raising=False)
    assert default_pretrain_dir() == Path(__file__).resolve().parents[2] / "pretrain"
    with pytest.raises(ModelFileError) as err:
        load_content_encoder("vec256l9", pretrain_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "checkpoint_best_legacy_500.pt") in message
    assert "pretrain/checkpoint_best_legacy_500.pt" in message
    assert "ContentVec legacy 500 checkpoint used by vec768l12 and vec256l9" in message
    monkeypatch.setenv(PRETRAIN_ENV, str(tmp_path / "elsewhere"))
    assert default_pretrain_dir() == tmp_path / "elsewhere"
    for name, file in (("hubertsoft", "hubert-soft-0d54a1f4.pt"), ("vec768l12-onnx", "vec-768-layer-12.onnx")):
        with pytest.raises(ModelFileError) as err:
            load_content_encoder(name)
        assert str(tmp_path / "elsewhere" / file) in str(err.value) and PRETRAIN_ENV in str(err.value)
    with pytest.raises(ModelFileError, match="no such file"):
        load_content_encoder("vec768l12", path=tmp_path / "nope.pt")


@pytest.mark.parametrize("name, inp, ref", [
    ("vec768l12", "input", "ref_layer12"),
    ("vec768l12", "input_odd", "ref_odd_layer12"),
    ("vec256l9", "input", "ref_layer9_proj"),
    ("vec256l9", "input_odd", "ref_odd_layer9_proj"),
])
def test_torch_encoders_match_fairseq(cv_dir, tmp_path, monkeypatch, name, inp, ref):
    shutil.copy(cv_dir / LEGACY, tmp_path / "checkpoint_best_legacy_500.pt")
    monkeypatch.setenv(PRETRAIN_ENV, str(tmp_path))
    encoder = load_content_encoder(name)
    assert isinstance(encoder, TorchContentEncoder)
    assert (encoder.sample_rate, encoder.hop, encoder.name) == (16000, 320, name)
    audio = _audio(cv_dir, inp)
    out = encoder.encode(audio)
    expected = _ref(cv_dir, ref)
    assert out.shape == expected.shape == (1, encoder.dim, encoder.num_frames(len(audio)))
    assert float(np.abs(out.numpy() - expected).max()) < ATOL
    torch.testing.assert_close(encoder.encode(torch.from_numpy(audio)), out, atol=0, rtol=0)


def test_hubert_base_name_is_used_when_legacy_name_absent(cv_dir, tmp_path):
    shutil.copy(cv_dir / "contentvec_tiny_hubert_base_like.pt", tmp_path / "hubert_base.pt")
    encoder = load_content_encoder("vec768l12", pretrain_dir=tmp_path)
    assert encoder.path == tmp_path / "hubert_base.pt"
    assert float(np.abs(encoder.encode(_audio(cv_dir, "input")).numpy() - _ref(cv_dir, "ref_layer12")).max()) < ATOL


def test_bad_input_and_device(cv_dir):
    encoder = load_content_encoder("vec768l12", path=cv_dir / LEGACY)
    assert encoder.num_frames(399) == 0 and encoder.num_frames(400) == 1
    assert encoder.encode(np.zeros(400, np.float32)).shape == (1, 128, 1)
    with pytest.raises(ParameterError, match="at least 400"):
        encoder.encode(np.zeros(399, np.float32))
    with pytest.raises(ParameterError, match=r"\(samples,\)"):
        encoder.encode(np.zeros((1000, 2), np.float32))
    with pytest.raises(ParameterError, match="device"):
        load_content_encoder("vec768l12", path=cv_dir / LEGACY, device="not-a-device")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA"):
            load_content_encoder("vec768l12", path=cv_dir / LEGACY, device="cuda")


def _export_onnx(cv_dir: Path, path: Path, output_layer: int, final_proj: bool) -> None:
    """Export the tiny fixture network the way so-vits-svc's ONNX encoders are laid out."""
    wrapper = UnitsForExport(load_fairseq_hubert(cv_dir / LEGACY), output_layer, final_proj).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, (torch.zeros(1, 1, 16000),), str(path), dynamo=False, opset_version=17,
            input_names=["source"], output_names=["embed"],
            dynamic_axes={"source": {2: "sample_length"}, "embed": {1: "frames"}},
        )


@pytest.mark.parametrize("onnx_name, torch_name, layer, proj", [
    ("vec768l12-onnx", "vec768l12", 12, False),
    ("vec256l9-onnx", "vec256l9", 9, True),
])
def test_onnx_encoder_matches_torch_path(cv_dir, tmp_path, onnxruntime_installed, onnx_name, torch_name, layer, proj):
    spec = SPEECH_ENCODERS[onnx_name]
    _export_onnx(cv_dir, tmp_path / spec.default_file, layer, proj)
    encoder = load_content_encoder(onnx_name, pretrain_dir=tmp_path)
    assert isinstance(encoder, OnnxContentEncoder) and encoder.provider == "CPUExecutionProvider"
    reference = load_content_encoder(torch_name, path=cv_dir / LEGACY)
    assert encoder.dim == reference.dim
    for name in ("input", "input_odd"):  # neither is the export length: the length axis is dynamic
        audio = _audio(cv_dir, name)
        out = encoder.encode(audio)
        expected = reference.encode(audio)
        assert out.shape == expected.shape and out.dtype == torch.float32
        assert float((out - expected).abs().max()) < ATOL


def test_onnx_bad_file(tmp_path, onnxruntime_installed):
    (tmp_path / "vec-256-layer-12.onnx").write_bytes(b"\x08\x01garbage" * 10)
    with pytest.raises(ModelFileError, match="not a usable ONNX model"):
        load_content_encoder("vec256l12-onnx", pretrain_dir=tmp_path)


def test_hubertsoft_loads_and_pads(tmp_path):
    """A tiny random checkpoint in bshall's layout (parity is in tests/models/test_hubert.py)."""
    gen = torch.Generator().manual_seed(3)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    in_ch = 1
    for i, k in enumerate((10, 3, 3, 3, 3, 2, 2)):
        state[f"feature_extractor.conv{i}.weight"] = torch.randn(16, in_ch, k, generator=gen) * 0.3
        in_ch = 16
    for name, shape in {
        "feature_extractor.norm0": (16,), "feature_projection.norm": (16,), "norm": (64,),
        "encoder.layers.0.norm1": (64,), "encoder.layers.0.norm2": (64,),
    }.items():
        state[f"{name}.weight"], state[f"{name}.bias"] = torch.ones(shape), torch.zeros(shape)
    for name, (out_f, in_f) in {
        "feature_projection.projection": (64, 16), "encoder.layers.0.self_attn.out_proj": (64, 64),
        "encoder.layers.0.linear1": (32, 64), "encoder.layers.0.linear2": (64, 32), "proj": (8, 64),
    }.items():
        state[f"{name}.weight"] = torch.randn(out_f, in_f, generator=gen) * 0.1
        state[f"{name}.bias"] = torch.zeros(out_f)
    state["encoder.layers.0.self_attn.in_proj_weight"] = torch.randn(192, 64, generator=gen) * 0.1
    state["encoder.layers.0.self_attn.in_proj_bias"] = torch.zeros(192)
    state["positional_embedding.conv.bias"] = torch.zeros(64)
    state["positional_embedding.conv.weight_g"] = torch.ones(1, 1, 8)
    state["positional_embedding.conv.weight_v"] = torch.randn(64, 4, 8, generator=gen)
    state["masked_spec_embed"] = torch.zeros(64)
    state["label_embedding.weight"] = torch.zeros(100, 8)
    torch.save(state, tmp_path / "hubert-soft-0d54a1f4.pt")
    encoder = load_content_encoder("hubertsoft", pretrain_dir=tmp_path)
    assert encoder.dim == 8 and encoder.num_frames(320) == 1
    out = encoder.encode(np.random.default_rng(0).uniform(-0.3, 0.3, 3200).astype(np.float32))
    assert out.shape == (1, 8, 10) and bool(torch.isfinite(out).all())
    with pytest.raises(ParameterError, match="at least 320"):
        encoder.encode(np.zeros(319, np.float32))

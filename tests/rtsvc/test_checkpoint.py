"""Safe and strict loading of so-vits-svc checkpoints (rtsvc.checkpoint, rtsvc.sovits_config):
mismatched config/checkpoint pairs, unsafe pickles, damaged files, config validation, and the
tiny-model helper other tests build on."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from rtsvc.checkpoint import inspect_checkpoint, load_sovits, read_checkpoint
from rtsvc.errors import ModelFileError, ParameterError
from rtsvc.sovits_config import load_sovits_config


def _load_tiny_helper():
    path = Path(__file__).resolve().parents[1] / "models" / "tiny.py"
    spec = importlib.util.spec_from_file_location("sovits_tiny_helper", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


make_tiny_model = _load_tiny_helper().make_tiny_model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def sovits(fixtures_dir) -> Path:
    return fixtures_dir / "sovits"


def _edited_config(src: Path, dst_dir: Path, edit) -> Path:
    raw = json.loads(src.read_text())
    edit(raw)
    dst = dst_dir / "config.json"
    dst.write_text(json.dumps(raw, indent=2))
    return dst


def _expect_one_line_error(model_path, config_path, *needles):
    with pytest.raises(ModelFileError) as err:
        load_sovits(model_path, config_path)
    text = str(err.value)
    assert "\n" not in text
    for needle in needles:
        assert needle in text, text
    assert "Fix:" in text
    return text


# ------------------------------------------------------------------- good files
def test_full_checkpoint_loads_with_facts(sovits):
    model, cfg, info = load_sovits(sovits / "v41_vec768_vol" / "G_800.pth", sovits / "v41_vec768_vol" / "config.json")
    assert info.kind == "full" and info.skipped_keys == [] and info.iteration == 2
    assert info.facts.ssl_dim == 768 and info.facts.n_speakers == 2 and info.facts.vol_embedding
    assert info.facts.n_params == 714_517 and info.facts.n_entries == 617
    assert not model.training and cfg.speakers == ("alto", "tenor")
    assert not any(n.endswith(("weight_g", "weight_v")) for n, _ in model.named_parameters())  # weight norm folded


def test_training_load_keeps_weight_norm_and_optimizer(sovits):
    folder = sovits / "v41_vec256_novol"
    model, _, _ = load_sovits(folder / "G_800.pth", folder / "config.json", for_inference=False)
    assert any(n.endswith("weight_g") for n, _ in model.named_parameters())
    raw = read_checkpoint(folder / "G_800.pth")
    assert raw.optimizer is not None and raw.learning_rate == pytest.approx(1e-4)
    with pytest.raises(ModelFileError, match="compressed release file"):
        load_sovits(sovits / "v41_vec768_vol" / "G_800_release.pth", sovits / "v41_vec768_vol" / "config.json",
                    for_inference=False)


def test_fp16_needs_cuda(sovits):
    folder = sovits / "v40_vec256"
    with pytest.raises(ParameterError, match="CUDA"):
        load_sovits(folder / "G_800.pth", folder / "config.json", fp16=True)


# ------------------------------------------------------------------- mismatches
def test_768_model_with_256_config(sovits):
    _expect_one_line_error(sovits / "v41_vec768_vol" / "G_800.pth", sovits / "v41_vec256_novol" / "config.json",
                           "model.ssl_dim", "256", "768")


def test_wrong_speaker_count(sovits, tmp_path):
    cfg = _edited_config(sovits / "v41_vec768_vol" / "config.json", tmp_path,
                         lambda r: (r["model"].update(n_speakers=3), r["spk"].update(bass=2)))
    _expect_one_line_error(sovits / "v41_vec768_vol" / "G_800.pth", cfg, "model.n_speakers", "3", "2")


def test_40_checkpoint_with_41_config(sovits, tmp_path):
    def to_41(raw):
        raw["model"].update(speech_encoder="vec256l9", vol_embedding=True, vocoder_name="nsf-hifigan")
        raw["data"]["unit_interpolate_mode"] = "nearest"

    cfg = _edited_config(sovits / "v40_vec256" / "config.json", tmp_path, to_41)
    _expect_one_line_error(sovits / "v40_vec256" / "G_800.pth", cfg, "model.vol_embedding", "true", "false")


def test_vol_embedding_missing_in_config(sovits, tmp_path):
    cfg = _edited_config(sovits / "v41_vec768_vol" / "config.json", tmp_path, lambda r: r["model"].update(vol_embedding=False))
    _expect_one_line_error(sovits / "v41_vec768_vol" / "G_800.pth", cfg, "model.vol_embedding")


def test_wrong_vocoder(sovits, tmp_path):
    cfg = _edited_config(sovits / "v41_snake" / "config.json", tmp_path, lambda r: r["model"].update(vocoder_name="nsf-hifigan"))
    _expect_one_line_error(sovits / "v41_snake" / "G_800.pth", cfg, "model.vocoder_name", "nsf-snake-hifigan")


def test_wrong_gin_channels(sovits, tmp_path):
    cfg = _edited_config(sovits / "v41_vec256_novol" / "config.json", tmp_path, lambda r: r["model"].update(gin_channels=48))
    _expect_one_line_error(sovits / "v41_vec256_novol" / "G_800.pth", cfg, "model.gin_channels", "48", "40")


def test_inspect_lists_every_disagreement(sovits):
    report = inspect_checkpoint(sovits / "v41_vec768_vol" / "G_800.pth", sovits / "v40_vec256" / "config.json")
    fields = {m.field for m in report.mismatches}
    assert {"model.ssl_dim", "model.n_speakers", "model.vol_embedding", "model.hidden_channels"} <= fields
    assert not report.agrees


# ------------------------------------------------------------------- unsafe and damaged files
class _Payload:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("zip_format", [True, False])
def test_reduce_payload_is_refused_and_never_runs(sovits, tmp_path, zip_format):
    target = tmp_path / "created_by_payload.txt"
    evil = tmp_path / "G_evil.pth"
    torch.save({"model": {"pre.weight": torch.zeros(1)}, "iteration": _Payload(str(target))}, evil,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(ModelFileError, match="refused") as err:
        load_sovits(evil, sovits / "v41_vec768_vol" / "config.json")
    assert "open" in str(err.value)  # names the refused global
    assert not target.exists()


def test_truncated_file(sovits, tmp_path):
    data = (sovits / "v41_vec256_novol" / "G_800.pth").read_bytes()
    bad = tmp_path / "G_trunc.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        read_checkpoint(bad)


@pytest.mark.parametrize("content", [b"", b"{\"not\": \"a model\"}", b"RIFF....WAVEfmt "])
def test_non_checkpoint_bytes(tmp_path, content):
    bad = tmp_path / "G_x.pth"
    bad.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a PyTorch checkpoint"):
        read_checkpoint(bad)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pth")


def test_torch_file_that_is_not_a_sovits_checkpoint(tmp_path):
    tensor_file = tmp_path / "t.pth"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(ModelFileError, match="not a so-vits-svc checkpoint"):
        read_checkpoint(tensor_file)
    disc = tmp_path / "D_0.pth"
    torch.save({"model": {"discriminators.0.convs.0.bias": torch.zeros(2)}, "iteration": 0}, disc)
    with pytest.raises(ModelFileError, match="discriminator"):
        inspect_checkpoint(disc)


# ------------------------------------------------------------------- config validation
@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda r: r["model"].update(unknown_switch=True), "model.unknown_switch"),
        (lambda r: r.update(extra={}), "extra"),
        (lambda r: r["model"].update(ssl_dim="768"), "model.ssl_dim"),
        (lambda r: r["model"].update(speech_encoder="vec256l9"), "speech_encoder"),
        (lambda r: r["model"].pop("gin_channels"), "model.gin_channels"),
        (lambda r: r["data"].update(hop_length=256), "hop_length"),
        (lambda r: r["model"].update(vocoder_name="bigvgan"), "vocoder_name"),
        (lambda r: r["spk"].update(ghost=7), "spk.ghost"),
    ],
)
def test_config_errors_name_the_field(sovits, tmp_path, edit, needle):
    cfg = _edited_config(sovits / "v41_vec768_vol" / "config.json", tmp_path, edit)
    with pytest.raises(ModelFileError) as err:
        load_sovits_config(cfg)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_config_not_json(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("model: yes")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_sovits_config(bad)


def test_40_config_defaults(sovits):
    cfg = load_sovits_config(sovits / "v40_vec256" / "config.json")
    assert cfg.layout == "4.0" and cfg.speech_encoder == "vec256l9"
    assert cfg.data.unit_interpolate_mode == "left" and not cfg.model.vol_embedding
    assert cfg.model.vocoder_name == "nsf-hifigan"


# ------------------------------------------------------------------- tiny models
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"ssl_dim": 256, "speech_encoder": "vec256l9", "vol_embedding": False, "n_speakers": 3},
        {"ssl_dim": 256, "speech_encoder": None, "vol_embedding": False},
        {"sampling_rate": 16000, "hop_length": 320, "vocoder_name": "nsf-snake-hifigan"},
    ],
)
def test_tiny_model_round_trip(tmp_path, kwargs):
    model_path, config_path = make_tiny_model(tmp_path, **kwargs)
    model, cfg, info = load_sovits(model_path, config_path)
    assert info.kind == "full"
    frames = 9
    c = torch.randn(1, cfg.model.ssl_dim, frames, generator=torch.Generator().manual_seed(0))
    f0 = torch.full((1, frames), 220.0)
    uv = torch.ones(1, frames)
    vol = torch.full((1, frames), 0.1) if cfg.model.vol_embedding else None
    wav, f0_used = model.infer(c, f0, uv, g=cfg.model.n_speakers - 1, vol=vol, deterministic=True)
    assert wav.shape == (1, 1, frames * cfg.hop_length) and torch.equal(f0_used, f0)
    assert bool(torch.isfinite(wav).all()) and float(wav.abs().max()) > 0
    again_model, _ = make_tiny_model(tmp_path / "again", **kwargs)
    assert (model_path.read_bytes() == again_model.read_bytes()) or _same_weights(model_path, again_model)


def _same_weights(a: Path, b: Path) -> bool:
    sa, sb = read_checkpoint(a).state, read_checkpoint(b).state
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_tiny_model_input_checks(tmp_path):
    model, cfg, _ = load_sovits(*make_tiny_model(tmp_path))
    c, f0, uv = torch.zeros(1, 768, 5), torch.zeros(1, 5), torch.zeros(1, 5)
    with pytest.raises(ParameterError, match="vol"):
        model.infer(c, f0, uv)
    with pytest.raises(ParameterError, match="768"):
        model.infer(torch.zeros(1, 256, 5), f0, uv, vol=f0)
    with pytest.raises(ParameterError, match="out of range"):
        model.infer(c, f0, uv, vol=f0, g=4)
    with pytest.raises(ParameterError, match="f0"):
        model.infer(c, torch.zeros(1, 6), uv, vol=f0)


def test_half_release_agrees_with_its_config(sovits):
    src = sovits / "v41_vec768_vol"
    report = inspect_checkpoint(src / "G_800_release_half.pth", src / "config.json")
    assert report.agrees and report.kind == "compressed" and report.facts.dtype == "float16"


@pytest.mark.parametrize(
    "switches,key",
    [
        ({"use_transformer_flow": True}, "flow.flows.0.enc.self_attn_layers.0.conv_q.weight"),
        ({"use_transformer_flow": True, "flow_share_parameter": True}, "flow.wn.cond_layer.weight_g"),
        ({"flow_share_parameter": True}, "flow.wn.in_layers.0.weight_g"),
        ({"use_depthwise_conv": True}, "flow.flows.0.enc.in_layers.0.depth_conv.weight_v"),
        ({"use_automatic_f0_prediction": False}, "emb_uv.weight"),
    ],
)
def test_tiny_model_config_switches(tmp_path, switches, key):
    """so-vits-svc switches the fixtures do not cover: they build, save under upstream's key
    names, are recognised by inspection and run."""
    model_path, config_path = make_tiny_model(tmp_path, **switches)
    state = read_checkpoint(model_path).state
    assert key in state
    report = inspect_checkpoint(model_path, config_path)
    assert report.agrees, [m.line() for m in report.mismatches]
    for name, value in switches.items():
        assert getattr(report.facts, name) == value
    if switches.get("flow_share_parameter"):  # one network, saved under every coupling too
        shared = [k for k in state if k.startswith("flow.wn.")]
        assert shared and all(torch.equal(state[k], state[k.replace("flow.wn.", "flow.flows.2.enc.")]) for k in shared)
    model, cfg, _ = load_sovits(model_path, config_path)
    frames = 6
    z, mask = torch.randn(1, cfg.model.inter_channels, frames), torch.ones(1, 1, frames)
    g = model.speaker_embedding(0, 1)
    with torch.no_grad():
        z_p, _ = model.flow(z, mask, g=g)
        assert float((z_p - z).abs().max()) > 1e-3  # the flow does something ...
        assert torch.allclose(model.flow(z_p, mask, g=g, reverse=True), z, atol=1e-5)  # ... and inverts
    wav, _ = model.infer(torch.randn(1, 768, frames), torch.full((1, frames), 150.0), torch.ones(1, frames),
                         vol=torch.full((1, frames), 0.05), deterministic=True)
    assert wav.shape == (1, 1, frames * cfg.hop_length) and bool(torch.isfinite(wav).all())
    if not cfg.model.use_automatic_f0_prediction:
        with pytest.raises(ParameterError, match="no f0 predictor"):
            model.infer(torch.randn(1, 768, frames), torch.full((1, frames), 150.0), torch.ones(1, frames),
                        vol=torch.full((1, frames), 0.05), predict_f0=True)

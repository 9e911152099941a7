"""ContentVec/HuBERT network and its safe file loading, against the fairseq fixtures
(../shared/fixtures/contentvec, see its README) and tiny random HuBERT-Soft checkpoints."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rtsvc.errors import ModelFileError
from rtsvc.models.fairseq_checkpoint import load_weights_only, parse_conv_feature_layers, read_fairseq_hubert
from rtsvc.models.hubert import HubertConfig, HubertModel
from rtsvc.models.hubert_weights import (
    FAIRSEQ_SKIPPED_KEYS,
    fold_weight_norm,
    load_fairseq_hubert,
    load_hubert_soft,
)

ATOL = 1e-4  # README section 6: float32 CPU, rtol 0
LEGACY = "contentvec_tiny_legacy_like.pt"
FP16 = "contentvec_tiny_hubert_base_like.pt"
BASE_CONV = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"


@pytest.fixture(scope="module")
def models(cv_dir: Path) -> dict[str, HubertModel]:
    return {name: load_fairseq_hubert(cv_dir / name) for name in (LEGACY, FP16)}


def _wave(cv_dir: Path, name: str) -> torch.Tensor:
    return torch.from_numpy(np.load(cv_dir / f"{name}.npy"))[None]


def _max_diff(a: torch.Tensor, ref: np.ndarray) -> float:
    assert tuple(a.shape) == ref.shape
    return float(np.abs(a.numpy() - ref).max())


@pytest.mark.parametrize("file", [LEGACY, FP16])
@pytest.mark.parametrize("inp, ref12, ref9p, frames", [
    ("input", "ref_layer12", "ref_layer9_proj", 74),
    ("input_odd", "ref_odd_layer12", "ref_odd_layer9_proj", 73),
])
def test_matches_fairseq_references(cv_dir, models, file, inp, ref12, ref9p, frames):
    model = models[file]
    wave = _wave(cv_dir, inp)
    assert model.config.num_frames(wave.shape[1]) == frames
    with torch.inference_mode():
        layer12 = model.units(wave, output_layer=12, final_proj=False)
        layer9p = model.units(wave, output_layer=9, final_proj=True)
    assert layer12.dtype == torch.float32 and layer12.shape == (1, frames, 128)
    assert _max_diff(layer12, np.load(cv_dir / f"{ref12}.npy")) < ATOL
    assert _max_diff(layer9p, np.load(cv_dir / f"{ref9p}.npy")) < ATOL


def test_every_layer_and_transformer_input(cv_dir, models):
    model = models[LEGACY]
    wave = _wave(cv_dir, "input")
    all_layers = np.load(cv_dir / "ref_all_layers.npy")
    outputs: list[torch.Tensor] = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for layer in model.layers]
    try:
        with torch.inference_mode():
            assert _max_diff(model.projected_features(wave), np.load(cv_dir / "ref_feat_proj.npy")) < ATOL
            model.units(wave, 12, False)
    finally:
        for hook in hooks:
            hook.remove()
    diffs = [_max_diff(out, all_layers[k]) for k, out in enumerate(outputs)]
    assert len(diffs) == 12 and max(diffs) < ATOL, diffs
    assert _max_diff(outputs[8], np.load(cv_dir / "ref_layer9.npy")) < ATOL


def test_config_read_from_cfg_and_shapes(models):
    config = models[LEGACY].config
    assert config == HubertConfig(
        conv_layers=((64, 10, 5),) + ((64, 3, 2),) * 4 + ((64, 2, 2),) * 2,
        embed_dim=128, ffn_dim=256, num_heads=2, num_layers=12,
        pos_conv_kernel=128, pos_conv_groups=16, proj_dim=32,
    )
    assert (config.hop, config.receptive_field) == (320, 400)
    assert config.num_frames(399) == 0 and config.num_frames(400) == 1 and config.num_frames(24000) == 74


def test_fp16_file_is_fp16_and_computes_in_float32(cv_dir, models):
    raw = load_weights_only(cv_dir / FP16, "test")
    assert raw["model"]["encoder.layers.0.fc1.weight"].dtype == torch.float16
    assert all(p.dtype == torch.float32 for p in models[FP16].parameters())


def test_weight_norm_is_folded_once(cv_dir, models):
    raw = read_fairseq_hubert(cv_dir / LEGACY).state_dict
    names = [n for n, _ in models[LEGACY].named_parameters()]
    assert not any("weight_g" in n or "weight_v" in n or "parametrizations" in n for n in names)
    expected = torch._weight_norm(raw["encoder.pos_conv.0.weight_v"], raw["encoder.pos_conv.0.weight_g"], 2)
    torch.testing.assert_close(models[LEGACY].pos_conv.weight.detach(), expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fold_weight_norm(raw["encoder.pos_conv.0.weight_g"], raw["encoder.pos_conv.0.weight_v"]), expected, atol=1e-6, rtol=1e-5)


def test_skipped_keys_are_exactly_the_named_ones(cv_dir):
    raw = read_fairseq_hubert(cv_dir / LEGACY).state_dict
    model = load_fairseq_hubert(cv_dir / LEGACY)
    # 214 file tensors = named skips + (g, v) folded into one kernel + one tensor per parameter
    assert len(raw) == len(FAIRSEQ_SKIPPED_KEYS) + 1 + len(model.state_dict())
    assert set(FAIRSEQ_SKIPPED_KEYS) <= set(raw)


def _variant(tmp_path: Path, cv_dir: Path, edit_cfg=None, edit_state=None, name="variant.pt") -> Path:
    """Write a model-only fairseq-style checkpoint derived from the legacy fixture."""
    file = read_fairseq_hubert(cv_dir / LEGACY)
    cfg = {"model": dict(file.model_cfg), "task": dict(file.task_cfg)}
    state = OrderedDict(file.state_dict)
    if edit_cfg:
        edit_cfg(cfg)
    if edit_state:
        edit_state(state)
    path = tmp_path / name
    torch.save({"args": None, "cfg": cfg, "model": state}, path)
    return path


def test_old_fairseq_cfg_and_new_weight_norm_names_load(tmp_path, cv_dir):
    def old_cfg(cfg):
        for field in ("layer_type", "checkpoint_activations", "required_seq_len_multiple",
                      "depthwise_conv_kernel_size", "attn_type", "pos_enc_type", "fp16"):
            del cfg["model"][field]

    def new_names(state):
        state["encoder.pos_conv.0.parametrizations.weight.original0"] = state.pop("encoder.pos_conv.0.weight_g")
        state["encoder.pos_conv.0.parametrizations.weight.original1"] = state.pop("encoder.pos_conv.0.weight_v")

    model = load_fairseq_hubert(_variant(tmp_path, cv_dir, old_cfg, new_names))
    with torch.inference_mode():
        out = model.units(_wave(cv_dir, "input"), 12, False)
    assert _max_diff(out, np.load(cv_dir / "ref_layer12.npy")) < ATOL


@pytest.mark.parametrize("edit_cfg, edit_state, expected", [
    (lambda c: c["model"].update(layer_norm_first=True), None, "layer_norm_first"),
    (lambda c: c["model"].update(extractor_mode="layer_norm"), None, "extractor_mode"),
    (lambda c: c["model"].update(_name="wav2vec2"), None, "'wav2vec2'"),
    (lambda c: c["task"].update(normalize=True), None, "normalize"),
    (lambda c: c["model"].update(conv_feature_layers="__import__('os').getcwd()"), None, "conv_feature_layers"),
    (lambda c: c["model"].update(encoder_ffn_embed_dim=512), None, "shape"),
    (None, lambda s: s.update({"feature_extractor.conv_layers.0.0.bias": torch.zeros(64)}), "conv_layers.0.0.bias"),
    (None, lambda s: s.pop("encoder.layers.3.fc1.bias"), "layers.3.ffn_in.bias"),
    (None, lambda s: s.update({"encoder.layers.12.fc1.bias": torch.zeros(256)}), "layers.12"),
])
def test_unsupported_or_inconsistent_files_are_refused(tmp_path, cv_dir, edit_cfg, edit_state, expected):
    with pytest.raises(ModelFileError) as err:
        load_fairseq_hubert(_variant(tmp_path, cv_dir, edit_cfg, edit_state))
    assert expected in str(err.value)


class HarmlessThing:
    def __init__(self) -> None:
        self.value = 3


class MkdirPayload:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))


def test_allowlist_refuses_another_class(tmp_path):
    path = tmp_path / "other_class.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": HarmlessThing()}, path)
    with pytest.raises(ModelFileError, match="HarmlessThing") as err:
        read_fairseq_hubert(path)
    assert "refused" in str(err.value)


def test_reduce_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload_ran"
    path = tmp_path / "payload.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "task_state": MkdirPayload(marker)}, path)
    with pytest.raises(ModelFileError, match="mkdir"):
        load_fairseq_hubert(path)
    with pytest.raises(ModelFileError, match="mkdir"):
        load_hubert_soft(path)
    assert not marker.exists()


def test_corrupt_missing_and_wrong_files(tmp_path, cv_dir):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((cv_dir / FP16).read_bytes()[:200_000])
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint")
    for bad in (truncated, text):
        with pytest.raises(ModelFileError, match="not a readable PyTorch checkpoint"):
            load_fairseq_hubert(bad)
    with pytest.raises(ModelFileError, match="no such file"):
        load_fairseq_hubert(tmp_path / "absent.pt")
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(3)}, plain)
    with pytest.raises(ModelFileError, match="not a fairseq checkpoint"):
        load_fairseq_hubert(plain)


def test_conv_feature_layers_parser():
    base = parse_conv_feature_layers(BASE_CONV)
    assert base == ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2
    assert parse_conv_feature_layers(" [ (4,2,1), (8,3,2), ]+[(8,2,2)]*2 ") == ((4, 2, 1), (8, 3, 2), (8, 2, 2), (8, 2, 2))
    for bad in ("", "[]", "[(512,10)]", "[(512,10,5)] - [(1,1,1)]", "[(512,10,5)] * 1000",
                "__import__('os').system('true')", "[(512,10,5)] * 2 * 2", "[(0,10,5)]", "[(512,10,5.5)]"):
        with pytest.raises(ValueError):
            parse_conv_feature_layers(bad)


def test_config_from_dict_rejects_unknown_keys():
    good = dict(conv_layers=[[8, 10, 5]], embed_dim=8, ffn_dim=16, num_heads=2, num_layers=1,
                pos_conv_kernel=4, pos_conv_groups=2, proj_dim=4)
    assert HubertConfig.from_dict(good).conv_layers == ((8, 10, 5),)
    with pytest.raises(ValueError, match="unknown HubertConfig field"):
        HubertConfig.from_dict({**good, "dropout": 0.1})
    with pytest.raises(ValueError):
        HubertConfig.from_dict({**good, "num_heads": 3})
    with pytest.raises(ValueError, match="missing: ffn_dim"):
        HubertConfig.from_dict({k: v for k, v in good.items() if k != "ffn_dim"})


# ---- HuBERT-Soft (bshall layout), tiny random checkpoint -------------------------------------

SOFT_CONV = ((32, 10, 5),) + ((32, 3, 2),) * 4 + ((32, 2, 2),) * 2


def _soft_state(seed: int = 0) -> OrderedDict:
    """A random state dict in bshall's HubertSoft layout (embed 128 -> 2 heads of 64, 3 layers)."""
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.2, offset=0.0):
        return torch.randn(*shape, generator=gen) * scale + offset

    embed, ffn, conv, proj = 128, 96, 32, 24
    state = OrderedDict()
    state["masked_spec_embed"] = rnd(embed)
    state["label_embedding.weight"] = rnd(100, proj)
    in_ch = 1
    for i, (ch, k, _) in enumerate(SOFT_CONV):
        state[f"feature_extractor.conv{i}.weight"] = rnd(ch, in_ch, k, scale=1.0 / (in_ch * k) ** 0.5)
        in_ch = ch
    state["feature_extractor.norm0.weight"] = rnd(conv, offset=1.0)
    state["feature_extractor.norm0.bias"] = rnd(conv)
    state["feature_projection.norm.weight"] = rnd(conv, offset=1.0)
    state["feature_projection.norm.bias"] = rnd(conv)
    state["feature_projection.projection.weight"] = rnd(embed, conv)
    state["feature_projection.projection.bias"] = rnd(embed)
    state["positional_embedding.conv.bias"] = rnd(embed)
    state["positional_embedding.conv.weight_g"] = rnd(1, 1, 16, offset=1.0)
    state["positional_embedding.conv.weight_v"] = rnd(embed, embed // 16, 16)
    state["norm.weight"] = rnd(embed, offset=1.0)
    state["norm.bias"] = rnd(embed)
    for n in range(3):
        p = f"encoder.layers.{n}."
        state[p + "self_attn.in_proj_weight"] = rnd(3 * embed, embed, scale=0.1)
        state[p + "self_attn.in_proj_bias"] = rnd(3 * embed)
        state[p + "self_attn.out_proj.weight"] = rnd(embed, embed, scale=0.1)
        state[p + "self_attn.out_proj.bias"] = rnd(embed)
        state[p + "linear1.weight"] = rnd(ffn, embed, scale=0.1)
        state[p + "linear1.bias"] = rnd(ffn)
        state[p + "linear2.weight"] = rnd(embed, ffn, scale=0.1)
        state[p + "linear2.bias"] = rnd(embed)
        for norm in ("norm1", "norm2"):
            state[p + f"{norm}.weight"] = rnd(embed, offset=1.0)
            state[p + f"{norm}.bias"] = rnd(embed)
    state["proj.weight"] = rnd(proj, embed)
    state["proj.bias"] = rnd(proj)
    return state


def _soft_reference(state: OrderedDict, wave: torch.Tensor) -> torch.Tensor:
    """HuBERT-Soft units written independently with torch built-ins (incl. nn.TransformerEncoderLayer)."""
    x = F.pad(wave[:, None], (40, 40))
    x = F.conv1d(x, state["feature_extractor.conv0.weight"], stride=5)
    x = F.gelu(F.group_norm(x, 32, state["feature_extractor.norm0.weight"], state["feature_extractor.norm0.bias"]))
    for i, (_, _, stride) in enumerate(SOFT_CONV[1:], start=1):
        x = F.gelu(F.conv1d(x, state[f"feature_extractor.conv{i}.weight"], stride=stride))
    x = F.layer_norm(x.transpose(1, 2), (32,), state["feature_projection.norm.weight"], state["feature_projection.norm.bias"])
    x = F.linear(x, state["feature_projection.projection.weight"], state["feature_projection.projection.bias"])
    kernel = torch._weight_norm(state["positional_embedding.conv.weight_v"], state["positional_embedding.conv.weight_g"], 2)
    pos = F.conv1d(x.transpose(1, 2), kernel, state["positional_embedding.conv.bias"], padding=8, groups=16)
    x = F.layer_norm(x + F.gelu(pos[:, :, :-1]).transpose(1, 2), (128,), state["norm.weight"], state["norm.bias"])
    for n in range(3):
        layer = torch.nn.TransformerEncoderLayer(128, 2, 96, dropout=0.0, activation="gelu", batch_first=True)
        prefix = f"encoder.layers.{n}."
        layer.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        x = layer.eval()(x)
    return F.linear(x, state["proj.weight"], state["proj.bias"])


@pytest.mark.parametrize("wrap", ["plain", "module_prefix", "hubert_key_fp16"])
def test_hubert_soft_matches_independent_reference(tmp_path, wrap):
    state = _soft_state()
    if wrap == "plain":
        saved = state
    elif wrap == "module_prefix":
        saved = OrderedDict((f"module.{k}", v) for k, v in state.items())
    else:
        state = OrderedDict((k, v.half().float()) for k, v in state.items())
        saved = {"hubert": OrderedDict((k, v.half()) for k, v in state.items()), "step": 1}
    torch.save(saved, tmp_path / "soft.pt")
    model = load_hubert_soft(tmp_path / "soft.pt")
    assert (model.config.num_heads, model.config.num_layers, model.config.input_padding) == (2, 3, 40)
    wave = torch.from_numpy(np.random.default_rng(1).uniform(-0.5, 0.5, (1, 4000)).astype(np.float32))
    with torch.inference_mode():
        out = model.units(wave, 3, True)
        ref = _soft_reference(state, wave)
    assert out.shape == (1, 4000 // 320, 24)  # 40 + 40 padding: one frame per full hop
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)


def test_hubert_soft_refuses_unknown_and_missing_keys(tmp_path):
    extra = _soft_state()
    extra["encoder.layers.0.extra.weight"] = torch.zeros(3)
    torch.save(extra, tmp_path / "extra.pt")
    with pytest.raises(ModelFileError, match="extra.weight"):
        load_hubert_soft(tmp_path / "extra.pt")
    missing = _soft_state()
    del missing["encoder.layers.1.norm2.bias"]
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(ModelFileError, match="missing"):
        load_hubert_soft(tmp_path / "missing.pt")
    torch.save({"step": 3}, tmp_path / "notsoft.pt")
    with pytest.raises(ModelFileError, match="not a HuBERT-Soft state dict"):
        load_hubert_soft(tmp_path / "notsoft.pt")


@pytest.mark.parametrize("channels, groups, kernel, frames", [(768, 16, 128, 6), (32, 4, 8, 3), (12, 3, 5, 40),
                                                              (16, 1, 4, 1)])
def test_grouped_conv_as_matmul_is_the_convolution(channels, groups, kernel, frames):
    """The CUDA live-window form of ContentVec's positional convolution (checked here on the CPU)."""
    from rtsvc.models.hubert import grouped_conv_as_matmul

    gen = torch.Generator().manual_seed(frames)
    x = torch.randn(2, channels, frames, generator=gen)
    weight = torch.randn(channels, channels // groups, kernel, generator=gen) / (channels // groups * kernel) ** 0.5
    bias = torch.randn(channels, generator=gen)
    expected = F.conv1d(x, weight, bias, padding=kernel // 2, groups=groups)
    got = grouped_conv_as_matmul(x, weight, bias, kernel // 2, groups)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < 1e-5

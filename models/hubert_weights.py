"""Build a :class:`~rtsvc.models.hubert.HubertModel` from a weight file, strictly.

Two file layouts are read:

- fairseq HuBERT/ContentVec checkpoints (``checkpoint_best_legacy_500.pt``, ``hubert_base.pt``),
  read safely by :mod:`rtsvc.models.fairseq_checkpoint`; sizes from ``cfg["model"]``, checked
  against the tensor shapes;
- bshall's HuBERT-Soft state dict (``hubert-soft-0d54a1f4.pt``: a plain state dict, optionally
  under a ``"hubert"`` key and/or with a DataParallel ``module.`` prefix); it carries no config,
  so sizes come from the tensor shapes.

Every tensor in the file is either mapped onto a parameter or listed in a ``*_SKIPPED_KEYS`` table
with the reason; anything else, and any parameter left unfilled, is a :class:`ModelFileError`.
The positional conv's weight norm (``weight_g`` magnitude, ``weight_v`` direction, norm over
dims 0 and 1) is folded into one kernel here. fp16 files are upcast to float32.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import torch

from rtsvc.errors import ModelFileError
from rtsvc.models.fairseq_checkpoint import load_weights_only, parse_conv_feature_layers, read_fairseq_hubert
from rtsvc.models.hubert import HubertConfig, HubertModel

#: Keys of a fairseq HuBERT/ContentVec state dict that inference does not use.
FAIRSEQ_SKIPPED_KEYS = {
    "mask_emb": "pre-training embedding that replaces masked frames (no masking at inference)",
    "label_embs_concat": "pre-training cluster-label embeddings (4 specials + one row per cluster)",
}

#: Keys of a HuBERT-Soft state dict that inference does not use.
SOFT_SKIPPED_KEYS = {
    "masked_spec_embed": "pre-training embedding that replaces masked frames",
    "label_embedding.weight": "discrete-unit label embeddings used only by the training loss",
}

#: fairseq HubertConfig defaults for the ``cfg["model"]`` fields read here. ``layer_type`` and
#: ``pos_enc_type`` did not exist in the fairseq that wrote ContentVec (Nov 2021) and are
#: expected to be missing; the others are written by every hydra-era fairseq, and defaulting
#: them is safe because every size is cross-checked against the tensor shapes (except the head
#: count, which only the cfg knows).
FAIRSEQ_MODEL_DEFAULTS: dict[str, Any] = {
    "extractor_mode": "default",
    "layer_norm_first": False,
    "conv_bias": False,
    "activation_fn": "gelu",
    "layer_type": "transformer",
    "pos_enc_type": "abs",
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
    "conv_pos": 128,
    "conv_pos_groups": 16,
}

#: The cfg values this implementation supports, with what a different value would mean.
_FAIRSEQ_REQUIRED_VALUES = {
    "extractor_mode": ("default", "HuBERT large/xlarge layer-norm conv extractor"),
    "layer_norm_first": (False, "pre-LN transformer (HuBERT large/xlarge)"),
    "conv_bias": (False, "conv layers with bias"),
    "activation_fn": ("gelu", "another activation"),
    "layer_type": ("transformer", "conformer layers"),
    "pos_enc_type": ("abs", "relative/rotary position encoding"),
}

#: HuBERT-Soft: (kernel, stride) of its fixed conv stack, padding per side, attention head size.
SOFT_CONV_KERNELS_STRIDES = ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2))
SOFT_INPUT_PADDING = (400 - 320) // 2
SOFT_HEAD_DIM = 64

_FAIRSEQ_LAYER_PARTS = {
    "self_attn.q_proj": "attn.q_proj",
    "self_attn.k_proj": "attn.k_proj",
    "self_attn.v_proj": "attn.v_proj",
    "self_attn.out_proj": "attn.out_proj",
    "self_attn_layer_norm": "attn_norm",
    "fc1": "ffn_in",
    "fc2": "ffn_out",
    "final_layer_norm": "ffn_norm",
}
_FAIRSEQ_PREFIXES = {
    "layer_norm.": "feature_norm.",
    "post_extract_proj.": "feature_proj.",
    "encoder.pos_conv.0.bias": "pos_conv.bias",
    "encoder.layer_norm.": "encoder_norm.",
    "final_proj.": "final_proj.",
}
_SOFT_LAYER_PARTS = {
    "self_attn.out_proj": "attn.out_proj",
    "linear1": "ffn_in",
    "linear2": "ffn_out",
    "norm1": "attn_norm",
    "norm2": "ffn_norm",
}
_SOFT_PREFIXES = {
    "feature_extractor.norm0.": "feature_extractor.first_norm.",
    "feature_projection.norm.": "feature_norm.",
    "feature_projection.projection.": "feature_proj.",
    "positional_embedding.conv.bias": "pos_conv.bias",
    "norm.": "encoder_norm.",
    "proj.": "final_proj.",
}
#: (magnitude g, direction v) names of the weight-normed positional conv, old and new torch style.
_FAIRSEQ_WEIGHT_NORM = (
    ("encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v"),
    ("encoder.pos_conv.0.parametrizations.weight.original0", "encoder.pos_conv.0.parametrizations.weight.original1"),
)
_SOFT_WEIGHT_NORM = (
    ("positional_embedding.conv.weight_g", "positional_embedding.conv.weight_v"),
    ("positional_embedding.conv.parametrizations.weight.original0", "positional_embedding.conv.parametrizations.weight.original1"),
)


def fold_weight_norm(magnitude: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Effective kernel of a weight-normed Conv1d with ``dim=2``.

    magnitude: (1, 1, K); direction: (out, in/groups, K). Returns float32 (out, in/groups, K):
    ``g * v / ||v||`` with one norm per kernel tap (over dims 0 and 1).
    """
    v = direction.float()
    return magnitude.float() * v / v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()


def load_fairseq_hubert(path: str | Path, what: str = "ContentVec/HuBERT checkpoint") -> HubertModel:
    """Read a fairseq HuBERT/ContentVec checkpoint into an eval-mode float32 CPU model.

    Raises :class:`ModelFileError` for unsafe/corrupt files, unsupported layouts (named), and any
    key or shape that does not match.
    """
    file = read_fairseq_hubert(path, what)
    config = hubert_config_from_fairseq(file.model_cfg, file.task_cfg, file.state_dict, file.path)
    native = _rename(file.state_dict, _fairseq_name, _FAIRSEQ_WEIGHT_NORM, FAIRSEQ_SKIPPED_KEYS, file.path)
    return _build_strict(config, native, file.path)


def hubert_config_from_fairseq(
    model_cfg: dict[str, Any], task_cfg: dict[str, Any], state_dict: dict[str, torch.Tensor], path: Path
) -> HubertConfig:
    """HubertConfig from ``cfg["model"]`` (missing fields take :data:`FAIRSEQ_MODEL_DEFAULTS`).
    The projection size is read from ``final_proj.weight`` (0 if the file has none)."""
    cfg = {name: model_cfg.get(name, default) for name, default in FAIRSEQ_MODEL_DEFAULTS.items()}
    for name, (value, meaning) in _FAIRSEQ_REQUIRED_VALUES.items():
        if cfg[name] != value:
            raise ModelFileError(
                f"{path}: cfg['model']['{name}'] is {cfg[name]!r} ({meaning}); rtsvc supports the "
                f"HuBERT/ContentVec base layout ({name} = {value!r}).",
                "use checkpoint_best_legacy_500.pt or hubert_base.pt.",
            )
    if task_cfg.get("normalize", False):
        raise ModelFileError(
            f"{path}: cfg['task']['normalize'] is true (a model trained on normalised waves, HuBERT large style); "
            "rtsvc supports the HuBERT/ContentVec base models, which use the wave as is.",
            "use checkpoint_best_legacy_500.pt or hubert_base.pt.",
        )
    try:
        conv_layers = parse_conv_feature_layers(str(cfg["conv_feature_layers"]))
    except ValueError as exc:
        raise ModelFileError(f"{path}: cannot read cfg['model']['conv_feature_layers']: {exc}.") from None
    proj = state_dict.get("final_proj.weight")
    try:
        return HubertConfig(
            conv_layers=conv_layers,
            embed_dim=int(cfg["encoder_embed_dim"]),
            ffn_dim=int(cfg["encoder_ffn_embed_dim"]),
            num_heads=int(cfg["encoder_attention_heads"]),
            num_layers=int(cfg["encoder_layers"]),
            pos_conv_kernel=int(cfg["conv_pos"]),
            pos_conv_groups=int(cfg["conv_pos_groups"]),
            proj_dim=int(proj.shape[0]) if proj is not None else 0,
        )
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: cfg['model'] holds sizes rtsvc cannot use: {exc}.") from None


def load_hubert_soft(path: str | Path, what: str = "HuBERT-Soft checkpoint") -> HubertModel:
    """Read bshall's HuBERT-Soft state dict into an eval-mode float32 CPU model (sizes from the
    tensor shapes; heads = embed_dim / 64; 40 samples of zero padding per side)."""
    p = Path(path)
    raw = load_weights_only(p, what)
    if isinstance(raw, dict) and isinstance(raw.get("hubert"), dict):
        raw = raw["hubert"]
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise ModelFileError(
            f"{p}: not a HuBERT-Soft state dict (expected a dict of tensors).",
            "give hubert-soft-0d54a1f4.pt from bshall/hubert.",
        )
    state = {str(k): v for k, v in raw.items()}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    config = _soft_config(state, p)
    native = _rename(state, _soft_name, _SOFT_WEIGHT_NORM, SOFT_SKIPPED_KEYS, p)
    for n in range(config.num_layers):
        for kind in ("weight", "bias"):
            packed = native.pop(f"layers.{n}.attn.in_proj_{kind}", None)
            if packed is None:
                continue  # reported as missing by _build_strict
            if packed.shape[0] != 3 * config.embed_dim:
                raise ModelFileError(f"{p}: encoder.layers.{n}.self_attn.in_proj_{kind} has shape {tuple(packed.shape)}, expected first dim {3 * config.embed_dim}.")
            for part, chunk in zip(("q", "k", "v"), packed.chunk(3, dim=0)):
                native[f"layers.{n}.attn.{part}_proj.{kind}"] = chunk
    return _build_strict(config, native, p)


def _soft_config(state: dict[str, torch.Tensor], path: Path) -> HubertConfig:
    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise ModelFileError(f"{path}: HuBERT-Soft key {key!r} is missing.", "give hubert-soft-0d54a1f4.pt from bshall/hubert.")
        return tuple(state[key].shape)

    conv_layers = []
    for i, (kernel, stride) in enumerate(SOFT_CONV_KERNELS_STRIDES):
        out_ch, _, file_kernel = shape(f"feature_extractor.conv{i}.weight")
        if file_kernel != kernel:
            raise ModelFileError(f"{path}: feature_extractor.conv{i} has kernel {file_kernel}, HuBERT-Soft uses {kernel}.")
        conv_layers.append((out_ch, kernel, stride))
    embed = shape("feature_projection.projection.weight")[0]
    names = _SOFT_WEIGHT_NORM[0] if _SOFT_WEIGHT_NORM[0][1] in state else _SOFT_WEIGHT_NORM[1]
    pos_out, pos_in, pos_kernel = shape(names[1])
    layer_ids = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    try:
        return HubertConfig(
            conv_layers=tuple(conv_layers),
            embed_dim=embed,
            ffn_dim=shape("encoder.layers.0.linear1.weight")[0],
            num_heads=max(1, embed // SOFT_HEAD_DIM),
            num_layers=max(layer_ids) + 1,
            pos_conv_kernel=pos_kernel,
            pos_conv_groups=max(1, pos_out // max(1, pos_in)),
            proj_dim=shape("proj.weight")[0],
            input_padding=SOFT_INPUT_PADDING,
        )
    except ValueError as exc:
        raise ModelFileError(f"{path}: HuBERT-Soft tensor shapes are inconsistent: {exc}.") from None


def _fairseq_name(key: str) -> str | None:
    if m := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", key):
        return f"feature_extractor.convs.{m.group(1)}.weight"
    if m := re.fullmatch(r"feature_extractor\.conv_layers\.0\.2\.(weight|bias)", key):
        return f"feature_extractor.first_norm.{m.group(1)}"
    if m := re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", key):
        part = _FAIRSEQ_LAYER_PARTS.get(m.group(2))
        return f"layers.{m.group(1)}.{part}.{m.group(3)}" if part else None
    return _by_prefix(key, _FAIRSEQ_PREFIXES)


def _soft_name(key: str) -> str | None:
    if m := re.fullmatch(r"feature_extractor\.conv(\d+)\.weight", key):
        return f"feature_extractor.convs.{m.group(1)}.weight"
    if m := re.fullmatch(r"encoder\.layers\.(\d+)\.self_attn\.in_proj_(weight|bias)", key):
        return f"layers.{m.group(1)}.attn.in_proj_{m.group(2)}"  # split into q/k/v by the caller
    if m := re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", key):
        part = _SOFT_LAYER_PARTS.get(m.group(2))
        return f"layers.{m.group(1)}.{part}.{m.group(3)}" if part else None
    return _by_prefix(key, _SOFT_PREFIXES)


def _by_prefix(key: str, prefixes: dict[str, str]) -> str | None:
    for old, new in prefixes.items():
        if key == old or (old.endswith(".") and key.startswith(old) and "." not in key[len(old):]):
            return new + key[len(old):]
    return None


def _rename(
    state: dict[str, torch.Tensor],
    rename: Callable[[str], str | None],
    weight_norm_names: tuple[tuple[str, str], ...],
    skipped: dict[str, str],
    path: Path,
) -> dict[str, torch.Tensor]:
    """Map file keys to HubertModel names; fold the weight norm; refuse unknown keys."""
    native: dict[str, torch.Tensor] = {}
    used = set(skipped)
    for g_name, v_name in weight_norm_names:
        if g_name in state and v_name in state:
            native["pos_conv.weight"] = fold_weight_norm(state[g_name], state[v_name])
            used |= {g_name, v_name}
            break
    for key, tensor in state.items():
        if key in used:
            continue
        name = rename(key)
        if name is None:
            raise ModelFileError(
                f"{path}: unexpected key {key!r}: this file's layout is not the HuBERT/ContentVec base layout "
                "rtsvc implements (e.g. conv bias, layer-norm conv extractor, or another model).",
                "use checkpoint_best_legacy_500.pt / hubert_base.pt (ContentVec) or hubert-soft-0d54a1f4.pt.",
            )
        native[name] = tensor
    return native


def _build_strict(config: HubertConfig, native: dict[str, torch.Tensor], path: Path) -> HubertModel:
    model = HubertModel(config)
    expected = model.state_dict()
    missing = [k for k in expected if k not in native]
    unexpected = [k for k in native if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s) (first: {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} tensor(s) beyond the configured network (first: {unexpected[0]!r})")
        raise ModelFileError(
            f"{path}: the weights do not match the network its config describes: {'; '.join(parts)}.",
            "the file is incomplete or not a HuBERT/ContentVec base model; use the original file.",
        )
    for key, tensor in native.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ModelFileError(
                f"{path}: tensor for {key!r} has shape {tuple(tensor.shape)}, the config implies "
                f"{tuple(expected[key].shape)}.",
                "the file's config and weights disagree; use the original file.",
            )
        if not tensor.is_floating_point():
            raise ModelFileError(f"{path}: tensor for {key!r} is {tensor.dtype}, expected floating point weights.")
    model.load_state_dict({k: v.float() for k, v in native.items()}, strict=True)
    return model.eval()

"""What a SoVITS ``G_*.pth`` state dict says about its model, and how that compares with a config.

:func:`derive_facts` reads only tensor names and shapes (no model is built, no encoder
weights are needed). :func:`compare_with_config` maps every disagreement to the config field
that causes it, with both values and the fix, one :class:`Mismatch` per field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from rtsvc.errors import ModelFileError
from rtsvc.sovits_config import SPEECH_ENCODER_DIMS, SovitsConfig

#: Keys every SoVITS synthesizer state dict has.
REQUIRED_KEYS = ("emb_g.weight", "pre.weight", "enc_p.proj.weight", "enc_p.f0_emb.weight", "emb_uv.weight")
#: Buffers (not parameters) stored in snake-vocoder state dicts.
BUFFER_SUFFIXES = (".upsample.filter", ".downsample.lowpass.filter")
POSTERIOR_PREFIX = "enc_q."


@dataclass(frozen=True)
class ModelFacts:
    """Architecture read from a state dict. None = cannot be told from the weights."""

    ssl_dim: int
    hidden_channels: int
    inter_channels: int
    filter_channels: int
    kernel_size: int
    n_layers: int
    n_heads: int | None
    gin_channels: int
    n_speakers: int
    vol_embedding: bool
    vocoder_name: str
    use_automatic_f0_prediction: bool
    use_transformer_flow: bool
    flow_share_parameter: bool
    use_depthwise_conv: bool
    n_flow_layer: int
    n_layers_trans_flow: int | None
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    upsample_rates_after_first: tuple[int, ...]
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    spec_channels: int | None  # None: no posterior encoder (compressed release file)
    dtype: str
    n_entries: int
    n_params: int

    @property
    def has_posterior(self) -> bool:
        return self.spec_channels is not None

    @property
    def layout(self) -> str:
        """'4.0-compatible' when nothing in it needs 4.1 code, else '4.1'."""
        four_one = (self.vol_embedding or self.vocoder_name != "nsf-hifigan" or self.use_transformer_flow
                    or self.flow_share_parameter or self.use_depthwise_conv or not self.use_automatic_f0_prediction)
        return "4.1" if four_one else "4.0-compatible"

    @property
    def likely_speech_encoders(self) -> tuple[str, ...]:
        return tuple(n for n, d in SPEECH_ENCODER_DIMS.items() if d == self.ssl_dim and not n.endswith("-onnx"))


def _count(keys: list[str], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in keys if (m := rx.match(k))})


def _conv_weight(state: Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
    for suffix in (".weight_v", ".weight"):
        if name + suffix in state:
            return state[name + suffix]
    raise KeyError(name)


def check_is_synthesizer(state: Mapping[str, torch.Tensor], where: str) -> None:
    """Refuse state dicts that are not a SoVITS generator, saying what they look like."""
    keys = list(state)
    if any(k.startswith("discriminators.") for k in keys):
        raise ModelFileError(f"{where} is a discriminator checkpoint (D_*.pth), not the voice model.",
                             fix="pass the matching G_*.pth file.")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ModelFileError(
            f"{where} is not a so-vits-svc 4.x synthesizer checkpoint (it has no {missing[0]}).",
            fix="pass a so-vits-svc G_*.pth (diffusion models, encoders and cluster files are different files).",
        )


def derive_facts(state: Mapping[str, torch.Tensor], where: str = "checkpoint") -> ModelFacts:
    """Read the architecture from names and shapes. Raises ModelFileError when incomplete."""
    check_is_synthesizer(state, where)
    keys = list(state)
    try:
        hidden, ssl_dim, _ = state["pre.weight"].shape
        n_speakers, gin = state["emb_g.weight"].shape
        inter = state["enc_p.proj.weight"].shape[0] // 2
        ffn = state["enc_p.enc_.ffn_layers.0.conv_1.weight"]
        rel = state.get("enc_p.enc_.attn_layers.0.emb_rel_k")
        transformer_flow = any(k.startswith("flow.flows.0.enc.self_attn_layers.") for k in keys)
        if transformer_flow:
            n_flow = _count(keys, r"flow\.flows\.(\d+)\.pre\.weight")
            trans_layers = _count(keys, r"flow\.flows\.0\.enc\.self_attn_layers\.(\d+)\.")
        else:
            n_flow = _count(keys, r"flow\.flows\.0\.enc\.in_layers\.(\d+)\.")
            trans_layers = None
        n_up = _count(keys, r"dec\.ups\.(\d+)\.")
        up_kernels = tuple(_conv_weight(state, f"dec.ups.{i}").shape[2] for i in range(n_up))
        noise_k = [state[f"dec.noise_convs.{i}.weight"].shape[2] for i in range(n_up)]
        later_products = [k // 2 for k in noise_k[:-1]] + [1]
        rates_after_first = tuple(later_products[i - 1] // later_products[i] for i in range(1, n_up))
        resblock = "1" if "dec.resblocks.0.convs1.0.bias" in state else "2"
        first = "convs1.0" if resblock == "1" else "convs.0"
        n_res = _count(keys, r"dec\.resblocks\.(\d+)\.")
        n_kernels = n_res // n_up if n_up else 0
        res_kernels = tuple(_conv_weight(state, f"dec.resblocks.{j}.{first}").shape[2] for j in range(n_kernels))
        upsample_initial = _conv_weight(state, "dec.conv_pre").shape[0]
        spec = state["enc_q.pre.weight"].shape[1] if "enc_q.pre.weight" in state else None
    except (KeyError, IndexError, ValueError, ZeroDivisionError) as exc:
        raise ModelFileError(f"{where} is missing or has malformed synthesizer weights ({exc}).",
                             fix="the file is incomplete or from another program; use the G_*.pth written by so-vits-svc.") from None
    dtypes = {str(v.dtype).replace("torch.", "") for v in state.values() if torch.is_floating_point(v)}
    n_params = sum(v.numel() for k, v in state.items() if not k.endswith(BUFFER_SUFFIXES))
    return ModelFacts(
        ssl_dim=ssl_dim, hidden_channels=hidden, inter_channels=inter, filter_channels=ffn.shape[0],
        kernel_size=ffn.shape[2], n_layers=_count(keys, r"enc_p\.enc_\.attn_layers\.(\d+)\."),
        n_heads=(hidden // rel.shape[2]) if rel is not None else None, gin_channels=gin, n_speakers=n_speakers,
        vol_embedding="emb_vol.weight" in state,
        vocoder_name="nsf-snake-hifigan" if any(k.startswith("dec.snakes.") for k in keys) else "nsf-hifigan",
        use_automatic_f0_prediction=any(k.startswith("f0_decoder.") for k in keys),
        use_transformer_flow=transformer_flow, flow_share_parameter=any(k.startswith("flow.wn.") for k in keys),
        use_depthwise_conv=any(".depth_conv." in k for k in keys), n_flow_layer=n_flow,
        n_layers_trans_flow=trans_layers, upsample_initial_channel=upsample_initial,
        upsample_kernel_sizes=up_kernels, upsample_rates_after_first=rates_after_first, resblock=resblock,
        resblock_kernel_sizes=res_kernels, spec_channels=spec, dtype="+".join(sorted(dtypes)),
        n_entries=len(state), n_params=n_params,
    )


@dataclass(frozen=True)
class Mismatch:
    """One config field that disagrees with the checkpoint."""

    field: str
    checkpoint_value: object
    config_value: object
    fix: str

    def line(self) -> str:
        return (f"config {self.field} is {_show(self.config_value)} but the checkpoint has "
                f"{_show(self.checkpoint_value)}. Fix: {self.fix}")


def _show(value: object) -> str:
    """A value as it is written in config.json."""
    return json.dumps(value)


def _fix_for(field: str, ckpt_value: object) -> str:
    if field == "model.ssl_dim":
        encoders = [n for n, d in SPEECH_ENCODER_DIMS.items() if d == ckpt_value and not n.endswith("-onnx")]
        hint = f" with a {'/'.join(encoders)} speech_encoder" if encoders else ""
        return f"use this model's own config.json (ssl_dim {ckpt_value}{hint})."
    if field == "model.n_speakers":
        return f"use this model's own config.json (n_speakers {ckpt_value}, one spk entry per speaker)."
    if field == "model.vol_embedding":
        return (f"set model.vol_embedding to {str(ckpt_value).lower()} (a 4.0 checkpoint or a 4.1 model trained "
                "without loudness has none), or use the config that came with the model.")
    if field == "model.vocoder_name":
        return f"set model.vocoder_name to \"{ckpt_value}\"."
    return f"use this model's own config.json (or set {field} to {ckpt_value!r})."


def compare_with_config(facts: ModelFacts, cfg: SovitsConfig) -> list[Mismatch]:
    """Every config field that disagrees with the weights, most telling first."""
    m = cfg.model
    pairs: list[tuple[str, object, object]] = [
        ("model.ssl_dim", facts.ssl_dim, m.ssl_dim),
        ("model.n_speakers", facts.n_speakers, m.n_speakers),
        ("model.vol_embedding", facts.vol_embedding, m.vol_embedding),
        ("model.vocoder_name", facts.vocoder_name, m.vocoder_name),
        ("model.gin_channels", facts.gin_channels, m.gin_channels),
        ("model.hidden_channels", facts.hidden_channels, m.hidden_channels),
        ("model.inter_channels", facts.inter_channels, m.inter_channels),
        ("model.filter_channels", facts.filter_channels, m.filter_channels),
        ("model.kernel_size", facts.kernel_size, m.kernel_size),
        ("model.n_layers", facts.n_layers, m.n_layers),
        ("model.use_automatic_f0_prediction", facts.use_automatic_f0_prediction, m.use_automatic_f0_prediction),
        ("model.use_transformer_flow", facts.use_transformer_flow, m.use_transformer_flow),
        ("model.flow_share_parameter", facts.flow_share_parameter, m.flow_share_parameter),
        ("model.use_depthwise_conv", facts.use_depthwise_conv, m.use_depthwise_conv),
        ("model.n_flow_layer", facts.n_flow_layer, m.n_flow_layer),
        ("model.upsample_initial_channel", facts.upsample_initial_channel, m.upsample_initial_channel),
        ("model.upsample_kernel_sizes", list(facts.upsample_kernel_sizes), list(m.upsample_kernel_sizes)),
        ("model.upsample_rates[1:]", list(facts.upsample_rates_after_first), list(m.upsample_rates[1:])),
        ("model.resblock", facts.resblock, m.resblock),
        ("model.resblock_kernel_sizes", list(facts.resblock_kernel_sizes), list(m.resblock_kernel_sizes)),
    ]
    if facts.n_heads is not None:
        pairs.append(("model.n_heads", facts.n_heads, m.n_heads))
    if facts.use_transformer_flow and facts.n_layers_trans_flow is not None:
        pairs.append(("model.n_layers_trans_flow", facts.n_layers_trans_flow, m.n_layers_trans_flow))
    if facts.spec_channels is not None:
        pairs.append(("data.filter_length", 2 * (facts.spec_channels - 1), cfg.data.filter_length))
    return [Mismatch(f, c, v, _fix_for(f, c)) for f, c, v in pairs if c != v]


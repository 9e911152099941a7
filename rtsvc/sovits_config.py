"""Typed reading of so-vits-svc ``config.json`` files (4.0 and 4.1 formats).

:func:`load_sovits_config` returns a frozen :class:`SovitsConfig`. Every key so-vits-svc
documents (including the many training-only ones) is accepted; a key nobody documents is
refused with :class:`ModelFileError` naming it, as are wrong types and impossible values.
Fields missing from 4.0 files take the defaults 4.1 uses for them (vol_embedding false,
nsf-hifigan, unit_interpolate_mode "left"); a missing ``speech_encoder`` is derived from
``ssl_dim`` (256 -> vec256l9, 768 -> vec768l12) and reported by :attr:`SovitsConfig.notes`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from rtsvc.errors import ModelFileError

#: Speech encoders of so-vits-svc 4.1 and the feature width each produces (``ssl_dim``).
SPEECH_ENCODER_DIMS = {
    "vec768l12": 768, "vec256l9": 256, "vec256l9-onnx": 256, "vec256l12-onnx": 256, "vec768l9-onnx": 768,
    "vec768l12-onnx": 768, "hubertsoft": 256, "hubertsoft-onnx": 256, "whisper-ppg": 1024,
    "whisper-ppg-large": 1280, "cnhubertlarge": 1024, "dphubert": 768, "wavlmbase+": 768,
}
VOCODER_NAMES = ("nsf-hifigan", "nsf-snake-hifigan")
UNIT_INTERPOLATE_MODES = ("left", "nearest", "linear")
#: Speech encoder assumed for configs without ``speech_encoder`` (4.0 format), by ssl_dim.
LEGACY_ENCODER_BY_DIM = {256: "vec256l9", 768: "vec768l12"}


@dataclass(frozen=True)
class SovitsTrainConfig:
    """``train`` section (training only; kept typed for the trainer)."""

    log_interval: int = 200
    eval_interval: int = 800
    seed: int = 1234
    epochs: int = 10000
    learning_rate: float = 1e-4
    betas: tuple[float, ...] = (0.8, 0.99)
    eps: float = 1e-9
    batch_size: int = 6
    fp16_run: bool = False
    half_type: str = "fp16"
    lr_decay: float = 0.999875
    segment_size: int = 10240
    init_lr_ratio: float = 1.0
    warmup_epochs: int = 0
    c_mel: float = 45.0
    c_kl: float = 1.0
    use_sr: bool = True
    max_speclen: int = 512
    port: str = "8001"
    keep_ckpts: int = 3
    all_in_mem: bool = False
    vol_aug: bool = False


@dataclass(frozen=True)
class SovitsDataConfig:
    """``data`` section. sampling_rate / hop_length define the model frame grid."""

    sampling_rate: int
    hop_length: int
    filter_length: int = 2048
    win_length: int = 2048
    n_mel_channels: int = 80
    mel_fmin: float = 0.0
    mel_fmax: float | None = 22050.0
    max_wav_value: float = 32768.0
    training_files: str = "filelists/train.txt"
    validation_files: str = "filelists/val.txt"
    unit_interpolate_mode: str = "left"


@dataclass(frozen=True)
class SovitsModelConfig:
    """``model`` section. n_layers_q, use_spectral_norm and speaker_embedding have no effect on
    the synthesizer; p_dropout none at inference. ``speech_encoder`` None = absent (4.0 format)."""

    inter_channels: int
    hidden_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    kernel_size: int
    p_dropout: float
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    gin_channels: int
    ssl_dim: int
    n_speakers: int
    n_layers_q: int = 3
    use_spectral_norm: bool = False
    speech_encoder: str | None = None
    speaker_embedding: bool = False
    vol_embedding: bool = False
    vocoder_name: str = "nsf-hifigan"
    use_depthwise_conv: bool = False
    flow_share_parameter: bool = False
    use_automatic_f0_prediction: bool = True
    use_transformer_flow: bool = False
    n_flow_layer: int = 4
    n_layers_trans_flow: int = 3


@dataclass(frozen=True)
class SovitsConfig:
    """A whole config.json. ``spk`` maps speaker names to ids; ``layout`` is "4.0" when the
    file has no ``speech_encoder`` key (4.0 template), else "4.1"."""

    model: SovitsModelConfig
    data: SovitsDataConfig
    train: SovitsTrainConfig
    spk: dict[str, int]
    layout: str
    path: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def sampling_rate(self) -> int:
        return self.data.sampling_rate

    @property
    def hop_length(self) -> int:
        return self.data.hop_length

    @property
    def speech_encoder(self) -> str:
        """The encoder in use (explicit, or derived from ssl_dim for 4.0 files)."""
        if self.model.speech_encoder is not None:
            return self.model.speech_encoder
        return LEGACY_ENCODER_BY_DIM[self.model.ssl_dim]

    @property
    def speakers(self) -> tuple[str, ...]:
        """Speaker names in id order (ids without a name show as "speaker<id>")."""
        by_id = {i: n for n, i in self.spk.items()}
        return tuple(by_id.get(i, f"speaker{i}") for i in range(self.model.n_speakers))


_SECTIONS = {"train": SovitsTrainConfig, "data": SovitsDataConfig, "model": SovitsModelConfig}


def _fail(where: str, what: str, fix: str) -> ModelFileError:
    return ModelFileError(f"{where}: {what}.", fix=fix)


def _coerce(where: str, name: str, value: Any, annotation: str) -> Any:
    bad = _fail(where, f"field {name!r} has the wrong type ({type(value).__name__} {value!r}; expected {annotation})",
                f"correct {name} in the config file.")
    if annotation == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
            raise bad
        return int(value)
    if annotation == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if annotation == "float | None":
        return None if value is None else _coerce(where, name, value, "float")
    if annotation == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if annotation in ("str", "str | None"):
        if value is None and annotation == "str | None":
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name in ("resblock", "port"):
            return str(value)
        if not isinstance(value, str):
            raise bad
        return value
    if annotation in ("tuple[int, ...]", "tuple[float, ...]"):
        if not isinstance(value, list) or not value:
            raise bad
        inner = "int" if "int" in annotation else "float"
        return tuple(_coerce(where, name, v, inner) for v in value)
    if annotation == "tuple[tuple[int, ...], ...]":
        if not isinstance(value, list) or not all(isinstance(v, list) for v in value):
            raise bad
        return tuple(tuple(_coerce(where, name, x, "int") for x in v) for v in value)
    raise AssertionError(f"unhandled annotation {annotation}")


def _section(where: str, section: str, raw: Any):
    cls = _SECTIONS[section]
    if not isinstance(raw, dict):
        raise _fail(where, f"section {section!r} must be a JSON object", "use a config.json written by so-vits-svc.")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise _fail(where, f"unknown key {section}.{unknown[0]} (not a so-vits-svc config field)",
                    f"remove {section}.{unknown[0]} or check that this is a so-vits-svc 4.x config.json.")
    values = {}
    for name, f in known.items():
        if name in raw:
            values[name] = _coerce(where, f"{section}.{name}", raw[name], str(f.type))
    try:
        return cls(**values)
    except TypeError as exc:
        missing = [n for n, f in known.items() if n not in values and f.default is MISSING and f.default_factory is MISSING]
        name = missing[0] if missing else str(exc)
        raise _fail(where, f"required key {section}.{name} is missing", f"add {section}.{name} (see so-vits-svc's config template).") from None


def _validate(where: str, cfg: SovitsConfig) -> None:
    m, d = cfg.model, cfg.data

    def need(cond: bool, what: str, fix: str) -> None:
        if not cond:
            raise _fail(where, what, fix)

    for name in ("inter_channels", "hidden_channels", "filter_channels", "n_heads", "n_layers", "kernel_size",
                 "upsample_initial_channel", "gin_channels", "ssl_dim", "n_speakers", "n_flow_layer"):
        need(getattr(m, name) > 0, f"model.{name} must be positive, got {getattr(m, name)}", f"correct model.{name}.")
    need(m.hidden_channels % m.n_heads == 0, f"model.hidden_channels {m.hidden_channels} is not divisible by model.n_heads {m.n_heads}",
         "correct hidden_channels or n_heads.")
    need(m.inter_channels % 2 == 0, f"model.inter_channels must be even, got {m.inter_channels}", "correct model.inter_channels.")
    need(m.resblock in ("1", "2"), f"model.resblock must be \"1\" or \"2\", got {m.resblock!r}", "correct model.resblock.")
    need(len(m.resblock_kernel_sizes) == len(m.resblock_dilation_sizes) > 0,
         "model.resblock_kernel_sizes and model.resblock_dilation_sizes differ in length", "give one dilation list per kernel size.")
    need(len(m.upsample_rates) == len(m.upsample_kernel_sizes) > 0,
         "model.upsample_rates and model.upsample_kernel_sizes differ in length", "give one kernel size per upsample rate.")
    for u, k in zip(m.upsample_rates, m.upsample_kernel_sizes):
        need(u > 0 and k >= u and (k - u) % 2 == 0,
             f"upsample kernel {k} with rate {u} cannot upsample exactly (kernel - rate must be even and >= 0)",
             "use so-vits-svc's template values for upsample_rates / upsample_kernel_sizes.")
    need(m.upsample_initial_channel % (2 ** len(m.upsample_rates)) == 0,
         f"model.upsample_initial_channel {m.upsample_initial_channel} is not divisible by 2^{len(m.upsample_rates)}",
         "correct model.upsample_initial_channel.")
    need(math.prod(m.upsample_rates) == d.hop_length,
         f"data.hop_length is {d.hop_length} but the product of model.upsample_rates {list(m.upsample_rates)} is {math.prod(m.upsample_rates)}",
         "make hop_length equal the product of upsample_rates.")
    need(d.sampling_rate > 0 and d.hop_length > 0, "data.sampling_rate and data.hop_length must be positive", "correct the data section.")
    need(m.vocoder_name in VOCODER_NAMES, f"model.vocoder_name {m.vocoder_name!r} is unknown (known: {', '.join(VOCODER_NAMES)})",
         "set model.vocoder_name to the vocoder the model was trained with.")
    need(d.unit_interpolate_mode in UNIT_INTERPOLATE_MODES,
         f"data.unit_interpolate_mode {d.unit_interpolate_mode!r} is unknown (known: {', '.join(UNIT_INTERPOLATE_MODES)})",
         "set data.unit_interpolate_mode to nearest (4.1) or left (4.0).")
    if m.speech_encoder is None:
        need(m.ssl_dim in LEGACY_ENCODER_BY_DIM,
             f"model.speech_encoder is missing and model.ssl_dim {m.ssl_dim} does not identify an encoder",
             "add model.speech_encoder (e.g. \"vec768l12\") to the config.")
    else:
        need(m.speech_encoder in SPEECH_ENCODER_DIMS,
             f"model.speech_encoder {m.speech_encoder!r} is unknown (known: {', '.join(SPEECH_ENCODER_DIMS)})",
             "set model.speech_encoder to the encoder the model was trained with.")
        dim = SPEECH_ENCODER_DIMS[m.speech_encoder]
        need(dim == m.ssl_dim, f"model.speech_encoder {m.speech_encoder} produces {dim}-dim features but model.ssl_dim is {m.ssl_dim}",
             "make speech_encoder and ssl_dim agree (vec256l9 <-> 256, vec768l12 <-> 768).")
    for name, sid in cfg.spk.items():
        need(0 <= sid < m.n_speakers, f"spk.{name} has id {sid}, outside 0..{m.n_speakers - 1} (model.n_speakers {m.n_speakers})",
             "correct the spk map or model.n_speakers.")


def parse_sovits_config(raw: Any, where: str = "config") -> SovitsConfig:
    """Build a :class:`SovitsConfig` from an already-parsed JSON object."""
    if not isinstance(raw, dict):
        raise _fail(where, "the top level is not a JSON object", "use a config.json written by so-vits-svc.")
    unknown = sorted(set(raw) - {"train", "data", "model", "spk"})
    if unknown:
        raise _fail(where, f"unknown top-level key {unknown[0]!r}", "check that this is a so-vits-svc 4.x config.json.")
    for section in ("data", "model"):
        if section not in raw:
            raise _fail(where, f"section {section!r} is missing", "use a config.json written by so-vits-svc.")
    model = _section(where, "model", raw["model"])
    data = _section(where, "data", raw["data"])
    train = _section(where, "train", raw.get("train", {}))
    spk_raw = raw.get("spk", {})
    if not isinstance(spk_raw, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in spk_raw.values()):
        raise _fail(where, "spk must map speaker names to integer ids", "correct the spk section.")
    notes = []
    layout = "4.1" if model.speech_encoder is not None else "4.0"
    if layout == "4.0" and model.ssl_dim in LEGACY_ENCODER_BY_DIM:
        notes.append(f"no model.speech_encoder (4.0 format): assuming {LEGACY_ENCODER_BY_DIM[model.ssl_dim]} from ssl_dim {model.ssl_dim}")
    if "unit_interpolate_mode" not in raw["data"]:
        notes.append("no data.unit_interpolate_mode: using \"left\" (the 4.0 behaviour)")
    cfg = SovitsConfig(model=model, data=data, train=train, spk=dict(spk_raw), layout=layout, path=where, notes=tuple(notes))
    _validate(where, cfg)
    return cfg


def load_sovits_config(path: str | os.PathLike) -> SovitsConfig:
    """Read and validate a so-vits-svc config.json (raises :class:`ModelFileError`)."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"config file {p} does not exist or is not a file.", fix="pass the config.json that came with the model (-c).")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"config file {p} is not valid JSON ({exc}).", fix="pass the model's config.json, not another file.") from None
    return parse_sovits_config(raw, where=str(p))

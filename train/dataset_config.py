"""Stage 2, ``config``: train/val file lists and a so-vits-svc 4.1 ``config.json``.

The written config is so-vits-svc's ``configs_template/config_template.json`` (same sections,
keys and order) with what its ``preprocess_flist_config.py`` changes: ``spk``,
``model.n_speakers``, ``model.speech_encoder``, ``ssl_dim`` = ``filter_channels`` =
``gin_channels`` = the encoder's feature size, and ``vol_embedding`` / ``train.vol_aug``; plus
rtsvc's flags (batch size, learning rate, intervals, keep_ckpts, all_in_mem, fp16_run,
half_type). File lists hold one ``<dataset>/<speaker>/<clip>.wav`` path per line.
"""

from __future__ import annotations

import copy
import json
import os
import random
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from rtsvc.errors import ParameterError, RtsvcError

#: Feature size of each speech encoder rtsvc can extract (so-vits-svc's ssl_dim for it).
ENCODER_DIMS = {
    "vec768l12": 768, "vec256l9": 256, "hubertsoft": 256, "vec768l12-onnx": 768, "vec256l9-onnx": 256,
    "vec256l12-onnx": 256, "vec768l9-onnx": 768, "hubertsoft-onnx": 256,
}
#: Validation clips taken per speaker (so-vits-svc takes 2).
VAL_PER_SPEAKER = 2
#: Split seed, so the same dataset always gives the same split.
SPLIT_SEED = 1234
HALF_TYPES = ("fp16", "bf16")

_TEMPLATE: dict[str, Any] = {
    "train": {
        "log_interval": 200, "eval_interval": 800, "seed": 1234, "epochs": 10000, "learning_rate": 0.0001,
        "betas": [0.8, 0.99], "eps": 1e-09, "batch_size": 6, "fp16_run": False, "half_type": "fp16",
        "lr_decay": 0.999875, "segment_size": 10240, "init_lr_ratio": 1, "warmup_epochs": 0, "c_mel": 45,
        "c_kl": 1.0, "use_sr": True, "max_speclen": 512, "port": "8001", "keep_ckpts": 3, "all_in_mem": False,
        "vol_aug": False,
    },
    "data": {
        "training_files": "filelists/train.txt", "validation_files": "filelists/val.txt", "max_wav_value": 32768.0,
        "sampling_rate": 44100, "filter_length": 2048, "hop_length": 512, "win_length": 2048, "n_mel_channels": 80,
        "mel_fmin": 0.0, "mel_fmax": 22050, "unit_interpolate_mode": "nearest",
    },
    "model": {
        "inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2, "n_layers": 6,
        "kernel_size": 3, "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "upsample_rates": [8, 8, 2, 2, 2],
        "upsample_initial_channel": 512, "upsample_kernel_sizes": [16, 16, 4, 4, 4], "n_layers_q": 3,
        "n_layers_trans_flow": 3, "n_flow_layer": 4, "use_spectral_norm": False, "gin_channels": 768,
        "ssl_dim": 768, "n_speakers": 200, "vocoder_name": "nsf-hifigan", "speech_encoder": "vec768l12",
        "speaker_embedding": False, "vol_embedding": False, "use_depthwise_conv": False,
        "flow_share_parameter": False, "use_automatic_f0_prediction": True, "use_transformer_flow": False,
    },
    "spk": {},
}
#: Model sizes of the "tiny" preset: a few hundred thousand parameters, for tests and CPU trials.
TINY_MODEL = {
    "inter_channels": 16, "hidden_channels": 24, "n_heads": 2, "n_layers": 2, "upsample_initial_channel": 32,
    "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]],
}
SIZES = ("default", "tiny")


def template() -> dict[str, Any]:
    """A deep copy of so-vits-svc 4.1's config template."""
    return copy.deepcopy(_TEMPLATE)


@dataclass(frozen=True)
class ConfigOptions:
    """What ``rtsvc train config`` lets a user choose (None = template value)."""

    speech_encoder: str = "vec768l12"
    vol_embedding: bool = False
    size: str = "default"
    ssl_dim: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    log_interval: int | None = None
    eval_interval: int | None = None
    keep_ckpts: int | None = None
    epochs: int | None = None
    segment_size: int | None = None
    all_in_mem: bool = False
    fp16_run: bool = False
    half_type: str = "fp16"
    val_per_speaker: int = VAL_PER_SPEAKER

    def __post_init__(self) -> None:
        if self.speech_encoder not in ENCODER_DIMS:
            raise ParameterError(f"speech encoder must be one of {', '.join(ENCODER_DIMS)}, got {self.speech_encoder!r}.")
        if self.size not in SIZES:
            raise ParameterError(f"model size must be one of {', '.join(SIZES)}, got {self.size!r}.")
        if self.half_type not in HALF_TYPES:
            raise ParameterError(f"half type must be fp16 or bf16, got {self.half_type!r}.")
        for name in ("ssl_dim", "batch_size", "log_interval", "eval_interval", "epochs", "segment_size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ParameterError(f"{name} must be a positive integer, got {v!r}.")
        if self.keep_ckpts is not None and self.keep_ckpts < 0:
            raise ParameterError(f"keep_ckpts must be >= 0 (0 keeps all), got {self.keep_ckpts!r}.")
        if self.learning_rate is not None and not (0 < self.learning_rate < 1):
            raise ParameterError(f"learning rate must be in (0, 1), got {self.learning_rate!r}.")
        if self.val_per_speaker < 0:
            raise ParameterError(f"val_per_speaker must be >= 0, got {self.val_per_speaker!r}.")


def build_config(speakers: list[str], options: ConfigOptions, train_list: str, val_list: str) -> dict[str, Any]:
    """The config.json dict for ``speakers`` (ids in list order)."""
    cfg = template()
    dim = options.ssl_dim or ENCODER_DIMS[options.speech_encoder]
    model = cfg["model"]
    model.update({"ssl_dim": dim, "filter_channels": dim, "gin_channels": dim})
    if options.size == "tiny":
        model.update(copy.deepcopy(TINY_MODEL))
        model["filter_channels"] = model["gin_channels"] = 2 * TINY_MODEL["hidden_channels"]
    model["speech_encoder"] = options.speech_encoder
    model["n_speakers"] = len(speakers)
    model["vol_embedding"] = options.vol_embedding
    cfg["train"]["vol_aug"] = options.vol_embedding
    train = cfg["train"]
    for name in ("batch_size", "learning_rate", "log_interval", "eval_interval", "keep_ckpts", "epochs", "segment_size"):
        value = getattr(options, name)
        if value is not None:
            train[name] = value
    train.update({"all_in_mem": options.all_in_mem, "fp16_run": options.fp16_run, "half_type": options.half_type})
    if train["segment_size"] % cfg["data"]["hop_length"]:
        raise ParameterError(f"segment_size {train['segment_size']} must be a multiple of hop_length {cfg['data']['hop_length']}.")
    cfg["data"]["training_files"] = train_list
    cfg["data"]["validation_files"] = val_list
    cfg["spk"] = {name: i for i, name in enumerate(speakers)}
    return cfg


def split_dataset(dataset_dir: Path, val_per_speaker: int) -> tuple[list[str], list[Path], list[Path]]:
    """(speakers, train clips, val clips) from ``dataset/<speaker>/*.wav``; a speaker with
    fewer than val_per_speaker + 1 clips gives all its clips to training."""
    if not dataset_dir.is_dir():
        raise RtsvcError(f"{dataset_dir}: no such folder; expected the prepared dataset.", "run 'rtsvc train prepare' first.")
    speakers = sorted(d.name for d in dataset_dir.iterdir() if d.is_dir() and any(d.glob("*.wav")))
    if not speakers:
        raise RtsvcError(f"{dataset_dir}: holds no speaker folders with .wav clips.", "run 'rtsvc train prepare' first.")
    rng = random.Random(SPLIT_SEED)
    train: list[Path] = []
    val: list[Path] = []
    for spk in speakers:
        clips = sorted((dataset_dir / spk).glob("*.wav"))
        rng.shuffle(clips)
        n_val = val_per_speaker if len(clips) > val_per_speaker else 0
        val += clips[:n_val]
        train += clips[n_val:]
    return speakers, train, val


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_config(dataset_dir: Path, work_dir: Path, options: ConfigOptions) -> Path:
    """Write ``<work>/filelists/{train,val}.txt`` and ``<work>/configs/config.json``; returns the config path."""
    speakers, train, val = split_dataset(dataset_dir, options.val_per_speaker)
    if not val:
        val = train[:1]  # so-vits-svc needs a non-empty validation list
    lists = work_dir / "filelists"
    write_text_atomic(lists / "train.txt", "".join(f"{p.as_posix()}\n" for p in train))
    write_text_atomic(lists / "val.txt", "".join(f"{p.as_posix()}\n" for p in val))
    cfg = build_config(speakers, options, (lists / "train.txt").as_posix(), (lists / "val.txt").as_posix())
    out = work_dir / "configs" / "config.json"
    write_text_atomic(out, json.dumps(cfg, indent=2, ensure_ascii=False))
    return out


@dataclass(frozen=True)
class TrainSection:
    """config.json ``train`` (so-vits-svc 4.1 keys; unknown keys are refused)."""

    log_interval: int
    eval_interval: int
    seed: int
    epochs: int
    learning_rate: float
    betas: tuple[float, float]
    eps: float
    batch_size: int
    lr_decay: float
    segment_size: int
    c_mel: float
    c_kl: float
    keep_ckpts: int = 3
    fp16_run: bool = False
    half_type: str = "fp16"
    all_in_mem: bool = False
    vol_aug: bool = False
    init_lr_ratio: float = 1
    warmup_epochs: int = 0
    use_sr: bool = True
    max_speclen: int = 512
    port: str = "8001"


@dataclass(frozen=True)
class DataSection:
    """config.json ``data`` (unknown keys are refused)."""

    training_files: str
    validation_files: str
    sampling_rate: int
    filter_length: int
    hop_length: int
    win_length: int
    n_mel_channels: int
    mel_fmin: float
    mel_fmax: float | None
    max_wav_value: float = 32768.0
    unit_interpolate_mode: str = "left"


def _typed(cls, raw: Any, where: str):
    if not isinstance(raw, dict):
        raise ParameterError(f"config.json '{where}' must be an object, got {type(raw).__name__}.")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParameterError(f"config.json '{where}' has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}.")
    required = [f.name for f in fields(cls) if f.default is MISSING and f.name not in raw]
    if required:
        raise ParameterError(f"config.json '{where}' lacks {', '.join(required)}.", "regenerate it with 'rtsvc train config'.")
    values = dict(raw)
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    return cls(**values)


def read_sections(config: dict[str, Any]) -> tuple[TrainSection, DataSection]:
    """Typed ``train`` and ``data`` sections of a config.json dict."""
    return _typed(TrainSection, config.get("train"), "train"), _typed(DataSection, config.get("data"), "data")


def read_config_json(path: Path) -> dict[str, Any]:
    """Parse config.json with a clear message on failure."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RtsvcError(f"{path}: no such file; expected the training config.json.", "run 'rtsvc train config' first.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RtsvcError(f"{path}: not a readable JSON config ({exc}).", "regenerate it with 'rtsvc train config'.") from None
    if not isinstance(data, dict) or not all(k in data for k in ("train", "data", "model", "spk")):
        raise RtsvcError(f"{path}: not a so-vits-svc config (needs train, data, model and spk sections).")
    return data


__all__ = [
    "ConfigOptions", "DataSection", "ENCODER_DIMS", "TrainSection", "build_config", "read_config_json",
    "read_sections", "split_dataset", "template", "write_config",
]

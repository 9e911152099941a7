"""Safe, strict loading of so-vits-svc ``G_*.pth`` checkpoints.

* Files are untrusted: they are read with ``torch.load(..., weights_only=True)`` only, so a
  pickle payload (``__reduce__`` and friends) is refused before anything runs.
* A config/checkpoint mismatch is found from tensor names and shapes *before*
  ``load_state_dict`` and reported in one line naming the config field, both values and the fix.
* Full training checkpoints and compressed release files (no ``enc_q``; fp32 or fp16) load;
  the posterior-encoder keys a release file lacks are named in :attr:`LoadInfo.skipped_keys`
  and the model's ``enc_q`` is removed (never left at random weights).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rtsvc.checkpoint_inspect import POSTERIOR_PREFIX, ModelFacts, Mismatch, compare_with_config, derive_facts
from rtsvc.errors import ModelFileError
from rtsvc.models.synthesizer import SynthesizerTrn
from rtsvc.sovits_config import SovitsConfig, load_sovits_config

#: First bytes of the two torch.save formats: zip container, or legacy pickle (protocol 2+).
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80
#: Prefix DataParallel adds to every key.
_PARALLEL_PREFIX = "module."


@dataclass
class RawCheckpoint:
    """A G_*.pth read safely. ``state``: name -> tensor (prefix-free); ``iteration`` (so-vits-svc
    stores the epoch there), ``learning_rate`` and ``optimizer`` (AdamW state dict) when present."""

    path: str
    state: dict[str, torch.Tensor]
    iteration: int | None
    learning_rate: float | None
    optimizer: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)


@dataclass
class LoadInfo:
    """What :func:`load_sovits` found. ``kind``: "full" (training checkpoint, has enc_q) or
    "compressed" (release file without enc_q); ``skipped_keys``: checkpoint-format keys the
    model did not load on purpose (with why in ``notes``)."""

    model_path: str
    config_path: str
    facts: ModelFacts
    kind: str
    weights_dtype: str
    iteration: int | None
    skipped_keys: list[str]
    notes: list[str]


def safe_torch_load(path: str | os.PathLike) -> Any:
    """torch.load with weights_only=True; every failure becomes one clear ModelFileError."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"model file {p} does not exist or is not a file.", fix="pass the path of the G_*.pth file (-m).")
    with open(p, "rb") as f:
        head = f.read(4)
    if len(head) < 2 or not (head == _ZIP_MAGIC or head[0] == _PICKLE_PROTO):
        raise ModelFileError(f"{p} is not a PyTorch checkpoint (it is empty or another kind of file).",
                             fix="pass the G_*.pth file written by so-vits-svc.")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files; all mean "cannot use it"
        text = str(exc)
        unsafe = re.search(r"GLOBAL (\S+)", text)
        if unsafe or "Unsupported global" in text:
            what = unsafe.group(1) if unsafe else "a non-tensor Python object"
            raise ModelFileError(
                f"{p} was refused: it contains executable pickle content ({what}), not just tensors; nothing from it was run.",
                fix="only use model files from sources you trust; re-export the weights as a plain state dict.",
            ) from None
        reason = text.strip().splitlines()[0][:160] if text.strip() else type(exc).__name__
        raise ModelFileError(f"{p} could not be read: it is corrupt or truncated ({reason}).",
                             fix="download or copy the file again.") from None


def read_checkpoint(path: str | os.PathLike) -> RawCheckpoint:
    """Read a G_*.pth safely and unwrap its state dict (top-level dict with ``model``)."""
    obj = safe_torch_load(path)
    notes: list[str] = []
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        state = obj["model"]
    elif isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
        notes.append("file is a bare state dict (no iteration/optimizer)")
    else:
        found = sorted(map(str, obj.keys()))[:6] if isinstance(obj, Mapping) else type(obj).__name__
        raise ModelFileError(f"{path} is a PyTorch file but not a so-vits-svc checkpoint (found {found}).",
                             fix="pass the G_*.pth file written by so-vits-svc.")
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelFileError(f"{path}: model entry {bad[0]!r} is not a named tensor.", fix="pass the G_*.pth file written by so-vits-svc.")
    state = dict(state)
    if state and all(k.startswith(_PARALLEL_PREFIX) for k in state):
        state = {k[len(_PARALLEL_PREFIX):]: v for k, v in state.items()}
        notes.append("removed the DataParallel 'module.' prefix")
    meta = obj if (isinstance(obj, Mapping) and "model" in obj) else {}
    iteration = meta.get("iteration")
    lr = meta.get("learning_rate")
    optimizer = meta.get("optimizer")
    return RawCheckpoint(
        path=str(path), state=state,
        iteration=int(iteration) if isinstance(iteration, int) and not isinstance(iteration, bool) else None,
        learning_rate=float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None,
        optimizer=optimizer if isinstance(optimizer, dict) else None, notes=notes,
    )


def build_synthesizer(cfg: SovitsConfig) -> SynthesizerTrn:
    """A random-weight synthesizer shaped by ``cfg`` (weights must be loaded afterwards)."""
    m = cfg.model
    return SynthesizerTrn(
        spec_channels=cfg.data.filter_length // 2 + 1, inter_channels=m.inter_channels,
        hidden_channels=m.hidden_channels, filter_channels=m.filter_channels, n_heads=m.n_heads,
        n_layers=m.n_layers, kernel_size=m.kernel_size, p_dropout=m.p_dropout, resblock=m.resblock,
        resblock_kernel_sizes=m.resblock_kernel_sizes, resblock_dilation_sizes=m.resblock_dilation_sizes,
        upsample_rates=m.upsample_rates, upsample_initial_channel=m.upsample_initial_channel,
        upsample_kernel_sizes=m.upsample_kernel_sizes, gin_channels=m.gin_channels, ssl_dim=m.ssl_dim,
        n_speakers=m.n_speakers, sampling_rate=cfg.data.sampling_rate, vol_embedding=m.vol_embedding,
        vocoder_name=m.vocoder_name, use_depthwise_conv=m.use_depthwise_conv,
        use_automatic_f0_prediction=m.use_automatic_f0_prediction, flow_share_parameter=m.flow_share_parameter,
        n_flow_layer=m.n_flow_layer, n_layers_trans_flow=m.n_layers_trans_flow,
        use_transformer_flow=m.use_transformer_flow, coarse_f0_version="4.0" if cfg.layout == "4.0" else "4.1",
    )


def _mismatch_error(mismatches: list[Mismatch], model_path: str, config_path: str) -> ModelFileError:
    first = mismatches[0]
    more = f" ({len(mismatches) - 1} more field(s) disagree; `rtsvc info -m ... -c ...` lists all)" if len(mismatches) > 1 else ""
    return ModelFileError(
        f"{config_path} does not match {model_path}: config {first.field} is {json.dumps(first.config_value)} "
        f"but the checkpoint has {json.dumps(first.checkpoint_value)}{more}.",
        fix=first.fix,
    )


def _match_state(model: SynthesizerTrn, state: dict[str, torch.Tensor], model_path: str) -> list[str]:
    """Check names and shapes against the model; returns the posterior keys skipped on purpose."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    skipped = [k for k in missing if k.startswith(POSTERIOR_PREFIX)]
    if skipped and len(skipped) != sum(k.startswith(POSTERIOR_PREFIX) for k in expected):
        raise ModelFileError(f"{model_path} has only part of the posterior encoder (missing {skipped[0]}).",
                             fix="the file is damaged; use the original G_*.pth.")
    others = [k for k in missing if not k.startswith(POSTERIOR_PREFIX)]
    unexpected = [k for k in state if k not in expected]
    if others or unexpected:
        what = f"missing {others[0]}" if others else f"unexpected {unexpected[0]}"
        raise ModelFileError(f"{model_path} does not fit the model built from its config ({what}; "
                             f"{len(others)} missing, {len(unexpected)} unexpected).",
                             fix="use the config.json that came with this model.")
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise ModelFileError(f"{model_path}: {k} has shape {tuple(v.shape)}, the config implies {tuple(expected[k].shape)}.",
                                 fix="use the config.json that came with this model.")
        if not torch.is_floating_point(v) or not bool(torch.isfinite(v).all()):
            raise ModelFileError(f"{model_path}: {k} holds non-finite or non-float values.", fix="the file is damaged; use the original G_*.pth.")
    return skipped


def load_sovits(
    model_path: str | os.PathLike,
    config_path: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    fp16: bool = False,
    for_inference: bool = True,
) -> tuple[SynthesizerTrn, SovitsConfig, LoadInfo]:
    """Load a so-vits-svc 4.0/4.1 voice strictly and safely.

    Returns (model, config, info). With ``for_inference`` (default) the model is in eval mode
    with weight norm folded, on ``device``, float32 (float16 when ``fp16`` on CUDA). fp16
    weight files are upcast to float32 unless ``fp16``. ``for_inference=False`` keeps weight
    norm and train-mode defaults for fine-tuning (enc_q must then be present).
    """
    cfg = load_sovits_config(config_path)
    raw = read_checkpoint(model_path)
    facts = derive_facts(raw.state, where=str(model_path))
    mismatches = compare_with_config(facts, cfg)
    if mismatches:
        raise _mismatch_error(mismatches, str(model_path), str(config_path))
    model = build_synthesizer(cfg)
    skipped = _match_state(model, raw.state, str(model_path))
    notes = list(cfg.notes) + raw.notes
    if skipped and not for_inference:
        raise ModelFileError(f"{model_path} is a compressed release file without the posterior encoder (enc_q); it cannot be trained.",
                             fix="fine-tune from the full G_*.pth training checkpoint.")
    incompatible = model.load_state_dict(raw.state, strict=False)
    if list(incompatible.unexpected_keys) or sorted(incompatible.missing_keys) != sorted(skipped):
        raise ModelFileError(f"{model_path} did not load completely.", fix="use the config.json that came with this model.")
    if skipped:
        model.enc_q = None
        notes.append(f"skipped {len(skipped)} enc_q.* keys: posterior encoder, training only, absent from compressed files")
    if facts.dtype == "float16" and not fp16:
        notes.append("fp16 weights upcast to float32")
    if for_inference:
        model.prepare_for_inference(device, fp16=fp16)
    else:
        model.to(device)
    info = LoadInfo(
        model_path=str(model_path), config_path=str(config_path), facts=facts,
        kind="compressed" if skipped else "full", weights_dtype=facts.dtype, iteration=raw.iteration,
        skipped_keys=skipped, notes=notes,
    )
    return model, cfg, info


@dataclass
class CheckpointReport:
    """What ``rtsvc info`` prints: facts from the weights, optional config, disagreements."""

    model_path: str
    facts: ModelFacts
    kind: str
    iteration: int | None
    learning_rate: float | None
    has_optimizer: bool
    config: SovitsConfig | None
    mismatches: list[Mismatch]
    notes: list[str]

    @property
    def agrees(self) -> bool:
        return not self.mismatches

    def lines(self) -> list[str]:
        f, cfg = self.facts, self.config
        kind = ("full training checkpoint (has the posterior encoder enc_q)" if self.kind == "full"
                else "compressed release file (no enc_q; inference only)")
        out = [f"model: {self.model_path}", f"file: {kind}, {f.n_entries} tensors, {f.dtype}"
               + (f", epoch {self.iteration}" if self.iteration is not None else "")
               + (", optimizer state included" if self.has_optimizer else "")]
        layout = "4.1" if f.layout == "4.1" else "4.0-compatible (loads as 4.0 or 4.1)"
        if cfg is not None:
            layout += f"; config is in {cfg.layout} format"
        out.append(f"layout: {layout}")
        enc = "/".join(f.likely_speech_encoders) or "unknown encoder"
        out.append(f"speech encoder: ssl_dim {f.ssl_dim} ({enc})" + (f"; config: {cfg.speech_encoder}" if cfg else ""))
        names = f"; names: {', '.join(cfg.speakers)}" if cfg else ""
        out.append(f"speakers: {f.n_speakers}{names}")
        if cfg is not None:
            out.append(f"sampling rate / hop: {cfg.sampling_rate} Hz / {cfg.hop_length} samples (from the config)")
        else:
            later = 1
            for r in f.upsample_rates_after_first:
                later *= r
            out.append(f"sampling rate / hop: not stored in the checkpoint (hop = first upsample rate x {later}); pass -c")
        out.append(f"vol embedding: {'yes' if f.vol_embedding else 'no'}")
        out.append(f"vocoder: {f.vocoder_name}")
        out.append(f"f0 predictor head: {'yes' if f.use_automatic_f0_prediction else 'no'}")
        if f.use_transformer_flow:
            flow = f"{f.n_flow_layer} transformer couplings of {f.n_layers_trans_flow} layers"
        else:
            flow = f"4 WaveNet couplings of {f.n_flow_layer} layers"
        flow += (", shared" if f.flow_share_parameter else "") + (", depthwise convs" if f.use_depthwise_conv else "")
        out.append(f"flow: {flow}")
        out.append(f"sizes: hidden {f.hidden_channels}, inter {f.inter_channels}, filter {f.filter_channels}, "
                   f"gin {f.gin_channels}, heads {f.n_heads}, layers {f.n_layers}, decoder {f.upsample_initial_channel}")
        out.append(f"parameters: {f.n_params:,}")
        out.extend(f"note: {n}" for n in self.notes)
        if cfg is not None:
            out.extend(f"MISMATCH: {m.line()}" for m in self.mismatches)
            out.append("config agrees with the checkpoint" if self.agrees else f"{len(self.mismatches)} disagreement(s)")
        return out


def inspect_checkpoint(model_path: str | os.PathLike, config_path: str | os.PathLike | None = None) -> CheckpointReport:
    """Describe a G_*.pth (read safely; no encoder weights needed) and, with a config,
    list every disagreement (field-level first, then any remaining name/shape difference)."""
    raw = read_checkpoint(model_path)
    facts = derive_facts(raw.state, where=str(model_path))
    cfg = load_sovits_config(config_path) if config_path is not None else None
    notes = list(raw.notes) + (list(cfg.notes) if cfg else [])
    mismatches: list[Mismatch] = []
    if cfg is not None:
        mismatches = compare_with_config(facts, cfg)
        if not mismatches:
            try:
                _match_state(build_synthesizer(cfg), raw.state, str(model_path))
            except ModelFileError as exc:
                mismatches.append(Mismatch("(weights)", "see message", "see message", str(exc)))
    return CheckpointReport(
        model_path=str(model_path), facts=facts, kind="full" if facts.has_posterior else "compressed",
        iteration=raw.iteration, learning_rate=raw.learning_rate, has_optimizer=raw.optimizer is not None,
        config=cfg, mismatches=mismatches, notes=notes,
    )

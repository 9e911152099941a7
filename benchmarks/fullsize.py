"""Full-size, random-weight models for the speed benchmarks (render, onnx, live), in memory or on disk.

* The synthesizer is a so-vits-svc 4.1 model with the template sizes, taken from
  :func:`rtsvc.train.dataset_config.build_config` (so-vits-svc's ``config_template.json``):
  hidden / inter 192, filter 768, 2 heads, 6 layers, kernel 3, NSF-HiFiGAN decoder 512 channels
  with upsample rates [8, 8, 2, 2, 2] and kernels [16, 16, 4, 4, 4], resblock "1" with kernels
  [3, 7, 11] and dilations [[1, 3, 5]] x 3, gin 768, ssl_dim 768, vec768l12, loudness embedding
  on, 44.1 kHz with hop 512, one speaker. :func:`write_full_size_model` writes it as so-vits-svc
  does: ``G_0.pth`` (dict with model / iteration / optimizer / learning_rate, weight norm as
  ``weight_g`` / ``weight_v`` pairs) next to ``config.json``.
* The content encoder is ContentVec-shaped (768 dim, 12 layers, 12 heads, 512-channel conv
  stack; sizes from the fixtures' ``contentvec/layout_base.json``). In memory it is built by
  ``benchmarks/encoder.py``'s ``build_model``; :func:`write_full_size_encoder` writes the same
  network as a fairseq checkpoint (``{"args": None, "cfg": {"model", "task"}, "model": state}``)
  with exactly the 214 keys and shapes of the layout, so rtsvc's fairseq loader reads it like
  ``checkpoint_best_legacy_500.pt``.

Weights are random (seeded): the audio is not speech. These files measure speed and memory only.
Load this module by path (the benchmarks folder holds an ``onnx.py`` that would shadow the
``onnx`` package if the folder were on ``sys.path``)::

    fullsize = load_sibling("fullsize")   # see load_sibling below, or importlib by path
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from rtsvc.checkpoint import build_synthesizer
from rtsvc.models.synthesizer import SynthesizerTrn
from rtsvc.sovits_config import parse_sovits_config
from rtsvc.train.dataset_config import ConfigOptions, build_config

HERE = Path(__file__).resolve().parent
#: File names a user would have: the synthesizer checkpoint and the ContentVec encoder.
MODEL_FILE = "G_0.pth"
CONFIG_FILE = "config.json"
ENCODER_FILE = "checkpoint_best_legacy_500.pt"
SPEAKER = "speaker0"
#: so-vits-svc's training learning rate, stored in G_*.pth.
LEARNING_RATE = 1e-4
#: Scale of the random flow output projections (so-vits-svc starts them at zero: an identity flow).
FLOW_INIT_STD = 0.1
#: Random encoder init: 1-D norm gains are 1 + this * N(0, 1), biases this * N(0, 1).
ENCODER_NORM_JITTER = 0.1
ENCODER_BIAS_STD = 0.02


#: Subfolder of rtsvc's cache that holds the benchmarks' own ONNX graphs.
BENCHMARK_CACHE = "benchmarks"


def use_benchmark_cache() -> Path:
    """Point rtsvc's cache at ``<cache>/benchmarks`` for this process and the ones it starts, so
    the graphs of the random-weight benchmark models (up to ~380 MB each) neither push the user's
    voices out of their own least-recently-used cache nor stay among them. A ``RTSVC_CACHE_DIR``
    the caller set is kept. Returns the cache folder in use."""
    from rtsvc.onnx_cache import CACHE_DIR_ENV, cache_dir

    if not os.environ.get(CACHE_DIR_ENV):
        os.environ[CACHE_DIR_ENV] = str(cache_dir() / BENCHMARK_CACHE)
    return cache_dir()


def load_sibling(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` by path (registered as ``rtsvc_bench_<name>``)."""
    module_name = f"rtsvc_bench_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def default_layout() -> Path:
    """The fixtures' ``contentvec/layout_base.json`` (``$RTSVC_FIXTURES`` or ../shared/fixtures)."""
    return load_sibling("encoder").default_layout()


def full_size_config() -> dict[str, Any]:
    """so-vits-svc 4.1 template config.json dict: vec768l12, loudness embedding, one speaker."""
    options = ConfigOptions(speech_encoder="vec768l12", vol_embedding=True, size="default")
    return build_config([SPEAKER], options, "filelists/train.txt", "filelists/val.txt")


def build_full_size_synthesizer(seed: int = 0) -> SynthesizerTrn:
    """Random-weight training-form synthesizer (weight norm, enc_q kept) of :func:`full_size_config`.

    The flow's zero-initialised output projections get N(0, FLOW_INIT_STD) values so the flow is
    not an identity. The global torch RNG state is restored afterwards.
    """
    cfg = parse_sovits_config(full_size_config(), where="full-size benchmark config")
    rng_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = build_synthesizer(cfg)
        with torch.no_grad():
            for p in model.flow.parameters():
                if not p.any():
                    p.normal_(0.0, FLOW_INIT_STD)
    finally:
        torch.random.set_rng_state(rng_state)
    return model


def inference_synthesizer(model: SynthesizerTrn, device: str = "cpu") -> SynthesizerTrn:
    """``model`` ready for inference: posterior encoder dropped, weight norm folded, eval mode."""
    model.enc_q = None
    return model.prepare_for_inference(device)


def write_full_size_model(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``folder/G_0.pth`` (so-vits-svc checkpoint dict, optimizer without moments) and
    ``folder/config.json``; returns (model_path, config_path)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / CONFIG_FILE
    config_path.write_text(json.dumps(full_size_config(), indent=2), encoding="utf-8")
    model = build_full_size_synthesizer(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, betas=(0.8, 0.99), eps=1e-9)
    model_path = folder / MODEL_FILE
    torch.save({"model": model.state_dict(), "iteration": 1, "optimizer": optimizer.state_dict(),
                "learning_rate": LEARNING_RATE}, model_path)
    return model_path, config_path


def build_full_size_encoder(layout: Path | None = None):
    """Random-weight in-memory HubertModel with ContentVec's sizes (``encoder.py``'s builder)."""
    return load_sibling("encoder").build_model(layout or default_layout())


def _random_encoder_tensor(key: str, shape: list[int], gen: torch.Generator) -> torch.Tensor:
    """A finite random value of sensible scale for one fairseq key (fan-in scaled matrices,
    norm gains near 1, small biases)."""
    if len(shape) >= 2:
        fan_in = math.prod(shape[1:])
        return torch.randn(shape, generator=gen) / math.sqrt(fan_in)
    if key.endswith(".bias"):
        return ENCODER_BIAS_STD * torch.randn(shape, generator=gen)
    if key.endswith(".weight"):  # LayerNorm / GroupNorm gains
        return 1.0 + ENCODER_NORM_JITTER * torch.randn(shape, generator=gen)
    return torch.randn(shape, generator=gen)  # mask_emb


def write_full_size_encoder(folder: Path, layout: Path | None = None, seed: int = 0,
                            dtype: torch.dtype = torch.float32) -> Path:
    """Write ``folder/checkpoint_best_legacy_500.pt``: a fairseq HuBERT/ContentVec checkpoint with
    the layout's cfg and exactly its keys and shapes, random values (float32 like the real
    trainer file, or float16 like ``hubert_base.pt``). Returns the path (about 380 MB in float32).

    The positional conv's weight-norm gain ``weight_g`` (shape [1, 1, kernel], norm over dims
    0 and 1) is set to the norm of ``weight_v``, so the effective kernel is ``weight_v``.
    """
    layout_data = json.loads(Path(layout or default_layout()).read_text())
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for entry in layout_data["state_dict"]:
        key, shape = entry["key"], entry["shape"]
        if key.endswith("weight_g"):
            continue  # filled from its weight_v below
        state[key] = _random_encoder_tensor(key, shape, gen)
    for entry in layout_data["state_dict"]:
        key = entry["key"]
        if key.endswith("weight_g"):
            direction = state[key[: -len("weight_g")] + "weight_v"]
            state[key] = direction.norm(dim=(0, 1), keepdim=True).reshape(entry["shape"])
    ordered = {entry["key"]: state[entry["key"]].to(dtype) for entry in layout_data["state_dict"]}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ENCODER_FILE
    cfg = {"model": dict(layout_data["cfg_model"]), "task": dict(layout_data["cfg_task"])}
    torch.save({"args": None, "cfg": cfg, "model": ordered}, path)
    return path


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

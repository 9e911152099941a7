"""Shared helpers of the ONNX tests (no tests here): random-weight synthesizers built from
so-vits-svc-style configs (full-size 4.1 template sizes, or tiny variants covering paths the
fixtures do not), and fixture reference loading. Other test files load this one by path
(tests/rtsvc is not on sys.path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rtsvc.checkpoint import build_synthesizer, load_sovits
from rtsvc.sovits_config import parse_sovits_config
from tiny_voice import tiny_models

#: so-vits-svc 4.1 template model sizes (configs_template/config_template.json).
FULL_SIZE_MODEL = {
    "inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2, "n_layers": 6,
    "kernel_size": 3, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "upsample_rates": [8, 8, 2, 2, 2],
    "upsample_initial_channel": 512, "upsample_kernel_sizes": [16, 16, 4, 4, 4], "n_flow_layer": 4,
    "gin_channels": 768,
}
#: The four parity fixtures of /work/shared/fixtures/sovits (README there).
FIXTURE_VARIANTS = ("v41_vec768_vol", "v41_vec256_novol", "v41_snake", "v40_vec256")


def random_synthesizer(model_overrides: dict, *, ssl_dim: int = 768, speech_encoder: str = "vec768l12",
                       n_speakers: int = 1, vol_embedding: bool = True, vocoder_name: str = "nsf-hifigan",
                       seed: int = 0):
    """An inference-ready random-weight SynthesizerTrn (flow projections made non-zero, so the
    flow is not an identity)."""
    raw = tiny_models.tiny_config_dict(
        ssl_dim=ssl_dim, n_speakers=n_speakers, vol_embedding=vol_embedding, speech_encoder=speech_encoder,
        sampling_rate=44100, hop_length=512, vocoder_name=vocoder_name,
    )
    raw["model"].update(model_overrides)
    cfg = parse_sovits_config(raw, where="random test model")
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = build_synthesizer(cfg)
        with torch.no_grad():
            for p in model.flow.parameters():
                if not p.any():
                    p.normal_(0.0, 0.05)
    finally:
        torch.random.set_rng_state(state)
    model.enc_q = None  # posterior encoder: training only, not part of inference
    return model.prepare_for_inference("cpu")


def load_fixture(fixtures_dir: Path, variant: str):
    """(model, config, ref) of one sovits fixture variant."""
    folder = fixtures_dir / "sovits" / variant
    model, config, _ = load_sovits(folder / "G_800.pth", folder / "config.json")
    ref = dict(np.load(folder / "ref.npz"))
    return model, config, ref


def random_inputs(model, frames: int, seed: int = 1):
    """(c, f0, uv, vol) torch inputs for ``frames`` frames: voiced f0 150-350 Hz with an
    unvoiced stretch, vol None when the model has no loudness embedding."""
    gen = torch.Generator().manual_seed(seed)
    c = torch.randn(1, model.ssl_dim, frames, generator=gen)
    f0 = 150 + 200 * torch.rand(1, frames, generator=gen)
    uv = torch.ones(1, frames)
    uv[:, frames // 3 : frames // 2] = 0
    vol = 0.2 * torch.rand(1, frames, generator=gen) if model.vol_embedding else None
    return c, f0, uv, vol

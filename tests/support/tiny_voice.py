"""A complete tiny SoVITS voice on disk: model + config + a content-encoder file, for end-to-end
tests of render, live, panel and remote (``from tiny_voice import make_tiny_voice``).

The encoder file is the shared ContentVec fixture (real fairseq layout, reduced width) with its
``final_proj`` widened to 256 outputs, so the vec256l9 path yields the 256-dim features a
vec256l9 model expects. Weights are random: the output is not speech, but every stage runs.
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from pathlib import Path

import torch

_TINY = Path(__file__).resolve().parents[1] / "models" / "tiny.py"
_spec = importlib.util.spec_from_file_location("rtsvc_tests_tiny_models", _TINY)
tiny_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_models)
make_tiny_model = tiny_models.make_tiny_model

ENCODER_FILE = "checkpoint_best_legacy_500.pt"


def make_tiny_encoder(pretrain_dir: Path, fixtures_dir: Path, proj_dim: int = 256, seed: int = 0) -> Path:
    """Write ``pretrain_dir/checkpoint_best_legacy_500.pt``: the tiny ContentVec fixture with a
    random ``final_proj`` of ``proj_dim`` outputs (fairseq file layout)."""
    from rtsvc.models.fairseq_checkpoint import read_fairseq_hubert

    file = read_fairseq_hubert(fixtures_dir / "contentvec" / "contentvec_tiny_legacy_like.pt")
    cfg = {"model": dict(file.model_cfg), "task": dict(file.task_cfg)}
    cfg["model"]["final_dim"] = proj_dim
    state = OrderedDict((k, v.float()) for k, v in file.state_dict.items())
    g = torch.Generator().manual_seed(seed)
    embed = state["final_proj.weight"].shape[1]
    state["final_proj.weight"] = torch.randn(proj_dim, embed, generator=g) / embed**0.5
    state["final_proj.bias"] = torch.zeros(proj_dim)
    state["label_embs_concat"] = torch.randn(state["label_embs_concat"].shape[0], proj_dim, generator=g)
    pretrain_dir.mkdir(parents=True, exist_ok=True)
    path = pretrain_dir / ENCODER_FILE
    torch.save({"args": None, "cfg": cfg, "model": state}, path)
    return path


def make_tiny_voice(tmp_dir: Path, fixtures_dir: Path, **model_kwargs) -> tuple[Path, Path, Path]:
    """(model_path, config_path, pretrain_dir) of a vec256l9 tiny voice; ``model_kwargs`` go to
    ``make_tiny_model`` (n_speakers, vol_embedding, sampling_rate, hop_length, ...)."""
    tmp_dir = Path(tmp_dir)
    kwargs = dict(ssl_dim=256, speech_encoder="vec256l9")
    kwargs.update(model_kwargs)
    model_path, config_path = make_tiny_model(tmp_dir / "voice", **kwargs)
    pretrain = tmp_dir / "pretrain"
    make_tiny_encoder(pretrain, fixtures_dir)
    return model_path, config_path, pretrain

"""Tiny random-weight SoVITS voices on disk, for tests that need a loadable model.

``make_tiny_model(tmp_dir, ...)`` writes ``config.json`` (so-vits-svc 4.1 template layout;
4.0 layout when ``speech_encoder`` is None) and ``G_0.pth`` (so-vits-svc's top-level dict:
model / iteration / optimizer / learning_rate) and returns their paths. The weights are seeded,
so the same arguments always give the same model. The output is not speech.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from rtsvc.checkpoint import build_synthesizer
from rtsvc.sovits_config import SPEECH_ENCODER_DIMS, parse_sovits_config

#: Stage rates tried (largest first) when splitting hop_length into upsampling stages.
_STAGE_RATES = (8, 5, 4, 3, 2)


def _split_hop(hop_length: int) -> list[int]:
    """hop_length as a product of small upsampling rates, largest first."""
    rates, rest = [], hop_length
    while rest > 1:
        for r in _STAGE_RATES:
            if rest % r == 0:
                rates.append(r)
                rest //= r
                break
        else:
            rates.append(rest)
            rest = 1
    return rates or [1]


def tiny_config_dict(
    *, ssl_dim: int, n_speakers: int, vol_embedding: bool, speech_encoder: str | None, sampling_rate: int,
    hop_length: int, vocoder_name: str = "nsf-hifigan", use_automatic_f0_prediction: bool = True,
    use_transformer_flow: bool = False, flow_share_parameter: bool = False, use_depthwise_conv: bool = False,
) -> dict:
    """A so-vits-svc config.json dict with tiny model sizes."""
    rates = _split_hop(hop_length)
    kernels = [2 * r if r % 2 == 0 else r for r in rates]
    model = {
        "inter_channels": 8, "hidden_channels": 16, "filter_channels": 32, "n_heads": 2, "n_layers": 2,
        "kernel_size": 3, "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": [3],
        "resblock_dilation_sizes": [[1, 3, 5]], "upsample_rates": rates,
        "upsample_initial_channel": 2 ** (len(rates) + 1), "upsample_kernel_sizes": kernels,
        "n_layers_q": 3, "n_flow_layer": 2, "use_spectral_norm": False, "gin_channels": 8,
        "ssl_dim": ssl_dim, "n_speakers": n_speakers,
    }
    data = {
        "training_files": "filelists/train.txt", "validation_files": "filelists/val.txt", "max_wav_value": 32768.0,
        "sampling_rate": sampling_rate, "filter_length": 2048, "hop_length": hop_length, "win_length": 2048,
        "n_mel_channels": 80, "mel_fmin": 0.0, "mel_fmax": sampling_rate // 2,
    }
    if speech_encoder is not None:
        model.update({
            "n_layers_trans_flow": 3, "vocoder_name": vocoder_name, "speech_encoder": speech_encoder,
            "speaker_embedding": False, "vol_embedding": vol_embedding, "use_depthwise_conv": use_depthwise_conv,
            "flow_share_parameter": flow_share_parameter, "use_automatic_f0_prediction": use_automatic_f0_prediction,
            "use_transformer_flow": use_transformer_flow,
        })
        data["unit_interpolate_mode"] = "nearest"
    train = {"log_interval": 200, "eval_interval": 800, "seed": 1234, "epochs": 10000, "learning_rate": 0.0001,
             "betas": [0.8, 0.99], "eps": 1e-09, "batch_size": 6, "fp16_run": False, "lr_decay": 0.999875,
             "segment_size": 10240, "init_lr_ratio": 1, "warmup_epochs": 0, "c_mel": 45, "c_kl": 1.0}
    spk = {f"speaker{i}": i for i in range(n_speakers)}
    return {"train": train, "data": data, "model": model, "spk": spk}


def make_tiny_model(
    tmp_dir: str | os.PathLike,
    *,
    ssl_dim: int = 768,
    n_speakers: int = 1,
    vol_embedding: bool = True,
    speech_encoder: str | None = "vec768l12",
    sampling_rate: int = 44100,
    hop_length: int = 512,
    vocoder_name: str = "nsf-hifigan",
    use_automatic_f0_prediction: bool = True,
    use_transformer_flow: bool = False,
    flow_share_parameter: bool = False,
    use_depthwise_conv: bool = False,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write a tiny voice into ``tmp_dir``; returns (model_path, config_path).

    ``speech_encoder`` None writes a 4.0-format config (no 4.1 keys; ``vol_embedding`` must be
    False, and the 4.1-only switches must stay off). ``ssl_dim`` must match ``speech_encoder`` (e.g. 256 with "vec256l9").
    """
    if speech_encoder is not None and SPEECH_ENCODER_DIMS.get(speech_encoder) != ssl_dim:
        raise ValueError(f"speech_encoder {speech_encoder} does not produce {ssl_dim}-dim features")
    if speech_encoder is None and vol_embedding:
        raise ValueError("4.0-format configs have no vol_embedding")
    raw = tiny_config_dict(
        ssl_dim=ssl_dim, n_speakers=n_speakers, vol_embedding=vol_embedding, speech_encoder=speech_encoder,
        sampling_rate=sampling_rate, hop_length=hop_length, vocoder_name=vocoder_name,
        use_automatic_f0_prediction=use_automatic_f0_prediction, use_transformer_flow=use_transformer_flow,
        flow_share_parameter=flow_share_parameter, use_depthwise_conv=use_depthwise_conv,
    )
    if speech_encoder is None and (use_transformer_flow or flow_share_parameter or use_depthwise_conv):
        raise ValueError("4.0-format configs have no transformer flow, shared flow or depthwise convs")
    out = Path(tmp_dir)
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "config.json"
    config_path.write_text(json.dumps(raw, indent=2), encoding="utf-8")
    cfg = parse_sovits_config(raw, where=str(config_path))
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = build_synthesizer(cfg)
        with torch.no_grad():  # non-zero flow outputs, so the flow is not an identity
            for p in model.flow.parameters():
                if not p.any():
                    p.normal_(0.0, 0.1)
    finally:
        torch.random.set_rng_state(state)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.8, 0.99), eps=1e-9)
    model_path = out / "G_0.pth"
    torch.save(
        {"model": model.state_dict(), "iteration": 1, "optimizer": optimizer.state_dict(), "learning_rate": 1e-4},
        model_path,
    )
    return model_path, config_path

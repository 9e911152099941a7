"""Content-encoder speed: a full-size, random-weight ContentVec-shaped network (768 dim, 12 layers,
sizes from the fixtures' ``contentvec/layout_base.json``) encoding 0.5 s, 1 s and 2 s of 16 kHz
audio, for the vec768l12 (layer 12) and vec256l9 (layer 9 + final_proj) paths.

Usage: python benchmarks/encoder.py [--layout PATH] [--device cpu|cuda] [--threads N] [--repeats N]
Prints one line per (path, length): median and best wall time in ms and the real-time factor
(encode time / audio duration; below 1 is faster than real time). Weights are random: this
measures speed only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from rtsvc.models.hubert import HubertModel
from rtsvc.models.hubert_weights import hubert_config_from_fairseq

SAMPLE_RATE = 16000
DURATIONS_S = (0.5, 1.0, 2.0)
PATHS = (("vec768l12", 12, False), ("vec256l9", 9, True))


def default_layout() -> Path:
    root = os.environ.get("RTSVC_FIXTURES")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "fixtures"
    return base / "contentvec" / "layout_base.json"


def build_model(layout_path: Path) -> HubertModel:
    """Random-weight HubertModel with the sizes a real ContentVec file would give."""
    layout = json.loads(layout_path.read_text())
    shapes = {entry["key"]: entry["shape"] for entry in layout["state_dict"]}
    # Only final_proj's shape is read from the state dict; a meta tensor carries it without memory.
    fake_state = {"final_proj.weight": torch.empty(shapes["final_proj.weight"], device="meta")}
    config = hubert_config_from_fairseq(layout["cfg_model"], layout["cfg_task"], fake_state, layout_path)
    return HubertModel(config).eval()


def time_once(model: HubertModel, wave: torch.Tensor, layer: int, proj: bool, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        model.units(wave, layer, proj)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layout", type=Path, default=default_layout(), help="layout_base.json (default: shared fixtures)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per length after one warm-up (default 5)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model(args.layout).to(args.device)
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    print(f"ContentVec-shaped encoder: embed {cfg.embed_dim}, {cfg.num_layers} layers, {cfg.num_heads} heads, "
          f"{params / 1e6:.1f} M parameters (random), device {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    gen = torch.Generator().manual_seed(0)
    for name, layer, proj in PATHS:
        for seconds in DURATIONS_S:
            wave = (torch.rand(1, int(seconds * SAMPLE_RATE), generator=gen) - 0.5).to(args.device)
            time_once(model, wave, layer, proj, args.device)  # warm-up
            runs = [time_once(model, wave, layer, proj, args.device) for _ in range(args.repeats)]
            median = statistics.median(runs)
            print(f"{name:10s} {seconds:4.1f} s audio ({cfg.num_frames(wave.shape[1]):3d} frames): "
                  f"median {1000 * median:7.1f} ms, best {1000 * min(runs):7.1f} ms, RTF {median / seconds:.3f}")


if __name__ == "__main__":
    main()

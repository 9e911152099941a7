"""Training speed: steps/s and peak memory of one GAN step (generator + so-vits-svc discriminator,
all losses, both AdamW updates) for the tiny and the default config, on CPU and, when present,
on CUDA with AMP. Synthetic batches (no dataset needed). Prints figures; asserts nothing.

The discriminator is so-vits-svc's own (MultiPeriodDiscriminator, divisor 1: a scale
discriminator plus periods 2, 3, 5, 7, 11). Each (size, device, amp) case runs in a fresh child
process, so its peak RSS is its own and no case warms caches for the next; after one warm-up
step, each timed step is measured alone and steps/s is 1 / median step time (robust to other
processes taking the CPU for a while). ``default`` is so-vits-svc's template size (52 M
generator parameters at ssl_dim 768); the discriminator (about 47 M) dominates a CPU step at
both sizes, which is why tiny is only a few times faster.

    python benchmarks/train.py [--steps 3] [--batch 2] [--frames 100] [--sizes tiny,default]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Run as a script, this folder would be sys.path[0] and its onnx.py would shadow the `onnx` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _HERE]

import torch
from torch.nn import functional as F

from rtsvc.checkpoint import build_synthesizer
from rtsvc.sovits_config import parse_sovits_config
from rtsvc.train.dataset_config import ConfigOptions, build_config
from rtsvc.train.discriminator import MultiPeriodDiscriminator
from rtsvc.train.generator import generator_forward, slice_frames
from rtsvc.train.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss, kl_loss
from rtsvc.train.mel import mel_spectrogram, spec_to_mel

#: 1 = so-vits-svc's discriminator widths (its D_*.pth files interchange with rtsvc's).
DISCRIMINATOR_DIVISOR = 1


def bench(size: str, device: str, amp: bool, steps: int, batch: int, frames: int) -> str:
    cfg = parse_sovits_config(build_config(["a", "b"], ConfigOptions(size=size, vol_embedding=True), "t", "v"))
    dev = torch.device(device)
    gen, disc = build_synthesizer(cfg).to(dev).train(), MultiPeriodDiscriminator(divisor=DISCRIMINATOR_DIVISOR).to(dev).train()
    opt_g = torch.optim.AdamW(gen.parameters(), 1e-4, betas=(0.8, 0.99), eps=1e-9)
    opt_d = torch.optim.AdamW(disc.parameters(), 1e-4, betas=(0.8, 0.99), eps=1e-9)
    hop, seg = cfg.data.hop_length, cfg.train.segment_size // cfg.data.hop_length
    c = torch.randn(batch, cfg.model.ssl_dim, frames, device=dev)
    f0 = torch.full((batch, frames), 220.0, device=dev)
    uv, vol = torch.ones(batch, frames, device=dev), torch.full((batch, frames), 0.1, device=dev)
    audio = 0.1 * torch.randn(batch, 1, frames * hop, device=dev)
    from rtsvc.train.mel import linear_spectrogram

    spec = linear_spectrogram(audio[:, 0], cfg.data.filter_length, hop, cfg.data.win_length)
    mel = spec_to_mel(spec, cfg.data.sampling_rate, cfg.data.filter_length, cfg.data.n_mel_channels, cfg.data.mel_fmin, cfg.data.mel_fmax)
    spk, lengths = torch.arange(batch, device=dev) % 2, torch.full((batch,), frames, device=dev)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step() -> None:
        with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
            out = generator_forward(gen, c, f0, uv, spec, spk, lengths, vol, seg)
            y = slice_frames(audio, out.ids_slice * hop, out.y_hat.shape[-1])
            r, f, _, _ = disc(y, out.y_hat.detach())
        loss_d = discriminator_loss(r, f)
        opt_d.zero_grad()
        scaler.scale(loss_d).backward()
        scaler.step(opt_d)
        with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
            _, f, rm, fm = disc(y, out.y_hat)
        y_mel = slice_frames(mel, out.ids_slice, out.y_hat.shape[-1] // hop)
        y_hat_mel = mel_spectrogram(out.y_hat.squeeze(1).float(), cfg.data.sampling_rate, cfg.data.filter_length, hop,
                                    cfg.data.win_length, cfg.data.n_mel_channels, cfg.data.mel_fmin, cfg.data.mel_fmax)
        loss = (generator_adversarial_loss(f) + feature_matching_loss(rm, fm) + 45 * F.l1_loss(y_mel, y_hat_mel)
                + kl_loss(out.z_p, out.logs_q, out.m_p, out.logs_p, out.mask) + F.mse_loss(out.pred_lf0.float(), out.lf0))
        opt_g.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt_g)
        scaler.update()

    step()  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if dev.type == "cuda":
        peak = f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB GPU"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB process RSS"
    median = statistics.median(times)
    n_g = sum(p.numel() for p in gen.parameters()) / 1e6
    n_d = sum(p.numel() for p in disc.parameters()) / 1e6
    return (f"{size:8s} {device:5s} amp={str(amp):5s} batch {batch} x {frames} frames: {1 / median:.3f} steps/s "
            f"(median step {median:.2f} s, best {min(times):.2f} s), peak {peak} (G {n_g:.2f} M, D {n_d:.2f} M params)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--sizes", default="tiny,default")
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)  # size,device,amp: run one case here
    args = ap.parse_args()
    if args.case is not None:
        size, device, amp = args.case.split(",")
        print(bench(size, device, amp == "True", args.steps, args.batch, args.frames), flush=True)
        return
    runs = [("cpu", False)] + ([("cuda", False), ("cuda", True)] if torch.cuda.is_available() else [])
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads on {os.cpu_count()} cores"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU")
          + f"; discriminator divisor {DISCRIMINATOR_DIVISOR}; parent max RSS (children's RSS floor) "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
          flush=True)
    for size in args.sizes.split(","):
        for device, amp in runs:
            command = [sys.executable, str(Path(__file__).resolve()), "--case", f"{size},{device},{amp}",
                       "--steps", str(args.steps), "--batch", str(args.batch), "--frames", str(args.frames)]
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            print(proc.stdout.strip() if proc.returncode == 0 else f"{size} {device} amp={amp}: failed ({tail})", flush=True)
    load = os.getloadavg()
    print(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (above {os.cpu_count()} means other "
          f"processes competed for the CPU)")


if __name__ == "__main__":
    main()

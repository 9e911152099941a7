"""``rtsvc train``: make a voice from recordings (prepare, config, features, fit, cluster, index,
compress, all). The result is a so-vits-svc 4.1 model folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtsvc.params import F0_METHODS

STAGES = ("prepare", "config", "features", "fit", "cluster", "index", "compress", "all")


def _work(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work", default=".", metavar="DIR",
                   help="training folder holding dataset_raw/, dataset/, filelists/, configs/, logs/ (default: current folder)")
    p.add_argument("--sr", type=int, default=44100, metavar="HZ", help="sampling rate of the voice (default 44100)")


def _prepare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skip-loudnorm", action="store_true", help="keep the recordings' level (no loudness normalisation)")


def _config_args(p: argparse.ArgumentParser) -> None:
    from rtsvc.train.dataset_config import ENCODER_DIMS, HALF_TYPES, SIZES

    p.add_argument("--speech-encoder", choices=tuple(ENCODER_DIMS), default="vec768l12", help="content encoder (default vec768l12)")
    p.add_argument("--vol-embedding", action="store_true", help="loudness embedding and volume augmentation (so-vits-svc --vol_aug)")
    p.add_argument("--size", choices=SIZES, default="default", help="model size: so-vits-svc's template, or tiny for tests/CPU trials")
    p.add_argument("--batch-size", type=int, help="clips per step (template: 6)")
    p.add_argument("--learning-rate", type=float, help="AdamW learning rate (template: 0.0001)")
    p.add_argument("--log-interval", type=int, help="steps between log lines / TensorBoard scalars (template: 200)")
    p.add_argument("--eval-interval", type=int, help="steps between checkpoints (template: 800)")
    p.add_argument("--keep-ckpts", type=int, help="checkpoints kept, 0 = all (template: 3)")
    p.add_argument("--epochs", type=int, help="epochs to train (template: 10000)")
    p.add_argument("--segment-size", type=int, help="decoder window in samples, a multiple of the hop (template: 10240)")
    p.add_argument("--all-in-mem", action="store_true", help="keep the whole dataset in memory")
    p.add_argument("--fp16", action="store_true", help="mixed precision training on CUDA (config fp16_run)")
    p.add_argument("--half-type", choices=HALF_TYPES, default="fp16", help="mixed precision type (default fp16)")


def _features_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--f0-method", choices=F0_METHODS, default="fcpe", help="pitch estimator (default fcpe)")
    p.add_argument("--f0-threshold", type=float, default=0.05, help="voicing threshold of the pitch estimator (default 0.05)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")


def _fit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-steps", type=int, help="stop after this global step (default: the config's epochs)")
    p.add_argument("--grad-clip", type=float, help="clip gradient values to +-this (default: off, norms are logged)")
    p.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard logs")
    p.add_argument("--discriminator-divisor", type=int, default=1, choices=(1, 2, 4, 8, 16),
                   help="1 (default) = so-vits-svc's discriminator; 2..16 = a narrower one for CPU trials "
                   "(its D_*.pth do not load in so-vits-svc; G_*.pth always do)")


def _common_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="torch device, cpu or cuda (default cpu)")
    p.add_argument("--pretrain", metavar="DIR", help="folder with encoder weights and G_0.pth/D_0.pth (default: pretrain/)")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a voice from recordings (so-vits-svc 4.1 compatible)",
                       description="Train a SoVITS 4.1 voice. Put recordings in <work>/dataset_raw/<speaker>/, then run the "
                       "stages in order (or 'all'). Checkpoints and config.json land in <work>/logs/44k/ and also load in so-vits-svc.")
    stages = p.add_subparsers(dest="stage", metavar="STAGE", required=True)
    adders = {
        "prepare": ("resample, normalise and slice dataset_raw/ into dataset/ (with a rejection report)", (_prepare_args,)),
        "config": ("write filelists/ and configs/config.json", (_config_args,)),
        "features": ("extract content features, f0, loudness and spectrograms (cached, resumable)", (_features_args, _common_device)),
        "fit": ("train the generator and discriminator; resumes from the newest checkpoint", (_fit_args, _common_device)),
        "cluster": ("k-means cluster model per speaker (for cluster_ratio)", ()),
        "index": ("feature-retrieval index per speaker", ()),
        "compress": ("write a release file without training-only weights", ()),
        "all": ("run every stage in order; finished work is kept", (_prepare_args, _config_args, _features_args, _fit_args, _common_device)),
    }
    for name, (text, extra) in adders.items():
        sp = stages.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        _work(sp)
        for add in extra:
            add(sp)
        if name in ("cluster", "all"):
            sp.add_argument("--clusters", type=int, default=10000, help="k-means centres per speaker (default 10000)")
        if name in ("compress", "all"):
            sp.add_argument("--half", action="store_true", help="store float16 weights")
        if name == "compress":
            sp.add_argument("checkpoint", nargs="?", help="G_<step>.pth to compress (default: the newest in logs/)")
            sp.add_argument("-o", "--output", help="release file (default: logs/<rate>k/release_<name>)")
    return p


def _pretrain(args) -> Path:
    from rtsvc.encoders import default_pretrain_dir

    return Path(args.pretrain) if getattr(args, "pretrain", None) else default_pretrain_dir()


def run(args: argparse.Namespace) -> int:
    from rtsvc.train import pipeline
    from rtsvc.train.pipeline import Workspace

    ws = Workspace(Path(args.work), args.sr)
    order = STAGES[:-1] if args.stage == "all" else (args.stage,)
    for stage in order:
        if args.stage == "all":
            print(f"== {stage}")
        if stage == "prepare":
            if args.stage == "all" and (ws.dataset / "prepare_report.json").is_file():
                print(f"{ws.dataset} already prepared; kept")
                continue
            from rtsvc.train.prepare import prepare_dataset

            prepare_dataset(ws.raw, ws.dataset, args.sr, loudnorm=not args.skip_loudnorm)
        elif stage == "config":
            if args.stage == "all" and ws.config.is_file():
                print(f"{ws.config} exists; kept")
                continue
            from rtsvc.errors import ParameterError
            from rtsvc.train.dataset_config import ConfigOptions, write_config

            if args.sr != 44100:
                raise ParameterError(f"config: only 44100 Hz voices are supported (so-vits-svc's template), got --sr {args.sr}.",
                                     "prepare and train at --sr 44100.")

            opts = ConfigOptions(
                speech_encoder=args.speech_encoder, vol_embedding=args.vol_embedding, size=args.size, batch_size=args.batch_size,
                learning_rate=args.learning_rate, log_interval=args.log_interval, eval_interval=args.eval_interval,
                keep_ckpts=args.keep_ckpts, epochs=args.epochs, segment_size=args.segment_size, all_in_mem=args.all_in_mem,
                fp16_run=args.fp16, half_type=args.half_type,
            )
            print(f"wrote {write_config(ws.dataset, ws.root, opts)}")
        elif stage == "features":
            failures = pipeline.run_features(ws.config, args.f0_method, args.f0_threshold, args.workers, args.device, _pretrain(args))
            if failures and args.stage != "all":
                return 1
        elif stage == "fit":
            from rtsvc.train.fit import FitOptions, fit

            res = fit(FitOptions(ws.config, ws.model_dir, device=args.device, max_steps=args.max_steps, pretrain_dir=_pretrain(args),
                                 grad_clip=args.grad_clip, tensorboard=not args.no_tensorboard,
                                 discriminator_divisor=args.discriminator_divisor))
            print(f"trained steps {res.first_step}..{res.last_step}; checkpoints in {ws.model_dir}")
        elif stage == "cluster":
            from rtsvc.train.cluster import train_cluster

            print(f"wrote {train_cluster(ws.dataset, ws.cluster_file, args.clusters)}")
        elif stage == "index":
            from rtsvc.train.cluster import train_index

            print(f"wrote {train_index(ws.dataset, ws.index_file)}")
        elif stage == "compress":
            from rtsvc.train.compress import compress_checkpoint

            src = Path(args.checkpoint) if getattr(args, "checkpoint", None) else pipeline.newest_generator(ws.model_dir)
            dst = Path(args.output) if getattr(args, "output", None) else ws.model_dir / f"release_{src.name}"
            counts = compress_checkpoint(src, dst, half=args.half)
            print(f"wrote {dst} ({counts['kept']} tensors kept, {counts['dropped']} training-only dropped{', float16' if args.half else ''})")
    return 0

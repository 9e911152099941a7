"""Stage 4, ``fit``: VITS GAN training of a so-vits-svc 4.1 voice (so-vits-svc's ``train.py`` loop).

Per step: the generator makes a window of audio; the discriminator step minimises the LSGAN loss
on (real, fake.detach()); the generator step minimises adversarial + feature-matching + c_mel *
mel L1 + c_kl * KL (+ f0-predictor MSE). AdamW (config betas / eps), learning rate
learning_rate * lr_decay ** (epoch - 1), AMP (fp16 with a grad scaler, or bf16) on CUDA when
train.fp16_run. Gradient norms are logged; values are clipped only with ``grad_clip``.

Steps count optimizer updates: ``G_<step>.pth`` holds the weights after ``step`` updates, is
written every eval_interval steps and training resumes after it. Without checkpoints, training
starts from ``G_0.pth``/``D_0.pth`` in the model folder or the pretrain folder when present.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

from rtsvc.checkpoint import build_synthesizer
from rtsvc.errors import ParameterError, RtsvcError
from rtsvc.sovits_config import parse_sovits_config

from . import checkpoints as ckpt
from .data import ClipDataset, collate, read_filelist
from .dataset_config import read_config_json, read_sections
from .discriminator import MultiPeriodDiscriminator
from .generator import generator_forward, slice_frames
from .losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss, kl_loss
from .mel import mel_spectrogram, spec_to_mel
from .tb import Board

#: AdamW weight decay (torch default, as so-vits-svc uses it).
WEIGHT_DECAY = 0.01


@dataclass
class FitOptions:
    """config_path: the training config.json; model_dir: where G_*/D_* and logs go.
    max_steps: stop after this many total steps (None: run the config's epochs).
    pretrain_dir: where G_0.pth / D_0.pth may be found for fine-tuning.
    grad_clip: clip gradient values to [-grad_clip, grad_clip] (None: measure only, like upstream).
    discriminator_divisor: 1 = so-vits-svc's discriminator; 2..16 = a narrower one for CPU trials
    and tests (its D_*.pth then do not load in so-vits-svc; G_*.pth always do)."""

    config_path: Path
    model_dir: Path
    device: str = "cpu"
    max_steps: int | None = None
    pretrain_dir: Path | None = None
    grad_clip: float | None = None
    discriminator_divisor: int = 1
    num_workers: int = 0
    tensorboard: bool = True
    log: Callable[[str], None] = print


@dataclass
class FitResult:
    """first_step / last_step: global steps run (first_step > last_step when nothing ran);
    history: one dict of float losses per step; resumed_from: step of the checkpoint resumed."""

    first_step: int
    last_step: int
    resumed_from: int | None
    history: list[dict[str, float]] = field(default_factory=list)


def _device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ParameterError(f"device {name!r} is not a torch device name.", "use 'cpu' or 'cuda'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {name!r} requested but this PyTorch has no usable CUDA GPU.", "use --device cpu.")
    return dev


def _grad_norm(params, clip: float | None) -> float:
    total = 0.0
    for p in params:
        if p.grad is not None:
            total += float(p.grad.detach().float().norm(2)) ** 2
            if clip is not None:
                p.grad.detach().clamp_(-clip, clip)
    return math.sqrt(total)


def _start_state(opts: FitOptions, gen, disc, optim_g, optim_d, n_speakers: int) -> tuple[int, int, int | None]:
    """Load the newest checkpoint pair (resume) or G_0/D_0 (fine-tune). Returns (next step, epoch, resumed step)."""
    found = ckpt.latest_loadable(opts.model_dir, opts.log)
    if found:
        pair, g_data, d_data = found
        ckpt.load_strict(gen, g_data["model"], pair.generator, "generator")
        ckpt.load_strict(disc, d_data["model"], pair.discriminator, "discriminator")
        optim_g.load_state_dict(g_data["optimizer"])
        optim_d.load_state_dict(d_data["optimizer"])
        opts.log(f"resuming from step {pair.step} ({pair.generator.name}, {pair.discriminator.name})")
        return pair.step + 1, max(int(g_data["iteration"]), 1), pair.step
    for folder in (opts.model_dir, opts.pretrain_dir):
        if folder is None:
            continue
        g0, d0 = Path(folder) / "G_0.pth", Path(folder) / "D_0.pth"
        if g0.is_file() and d0.is_file():
            g_state = ckpt.read_checkpoint(g0)["model"]
            skip = ()
            own = gen.state_dict()[ckpt.SPEAKER_TABLE_KEY]
            theirs = g_state.get(ckpt.SPEAKER_TABLE_KEY)
            if theirs is not None and tuple(theirs.shape) != tuple(own.shape) and theirs.shape[1:] == own.shape[1:]:
                skip = (ckpt.SPEAKER_TABLE_KEY,)
                opts.log(f"fine-tuning: {ckpt.SPEAKER_TABLE_KEY} not taken from {g0.name} (it has {theirs.shape[0]} "
                         f"speakers, this voice {n_speakers}); speaker embeddings start fresh")
            ckpt.load_strict(gen, g_state, g0, "pretrained generator", skip=skip)
            ckpt.load_strict(disc, ckpt.read_checkpoint(d0)["model"], d0, "pretrained discriminator")
            opts.log(f"fine-tuning from {g0} and {d0}")
            return 1, 1, None
    opts.log("no checkpoint and no pretrained G_0.pth/D_0.pth found: training from scratch")
    return 1, 1, None


def fit(opts: FitOptions) -> FitResult:
    """Train until ``max_steps`` or the config's epochs; returns what ran."""
    raw = read_config_json(opts.config_path)
    cfg = parse_sovits_config(raw, str(opts.config_path))
    tr, data = read_sections(raw)
    dev = _device(opts.device)
    opts.model_dir.mkdir(parents=True, exist_ok=True)
    saved_cfg = opts.model_dir / "config.json"
    if saved_cfg.resolve() != Path(opts.config_path).resolve():
        if saved_cfg.is_file() and ckpt.list_pairs(opts.model_dir) and json.loads(saved_cfg.read_text(encoding="utf-8"))["model"] != raw["model"]:
            raise RtsvcError(f"{saved_cfg}: the checkpoints in {opts.model_dir} were trained with other model settings than {opts.config_path}.",
                             "use another model folder, or the config.json saved there.")
        shutil.copyfile(opts.config_path, saved_cfg)
    torch.manual_seed(tr.seed)
    segment_frames = tr.segment_size // data.hop_length
    clips = read_filelist(Path(data.training_files))
    dataset = ClipDataset(
        clips, cfg.spk, sampling_rate=data.sampling_rate, hop_length=data.hop_length, filter_length=data.filter_length,
        win_length=data.win_length, unit_interpolate_mode=data.unit_interpolate_mode, vol_embedding=cfg.model.vol_embedding,
        vol_aug=tr.vol_aug and cfg.model.vol_embedding, all_in_mem=tr.all_in_mem, seed=tr.seed,
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=tr.batch_size, shuffle=True, collate_fn=collate,
                                         num_workers=0 if tr.all_in_mem else opts.num_workers, drop_last=False)
    gen = build_synthesizer(cfg).to(dev).train()
    disc = MultiPeriodDiscriminator(opts.discriminator_divisor).to(dev).train()
    optim_g = torch.optim.AdamW(gen.parameters(), tr.learning_rate, betas=tr.betas, eps=tr.eps, weight_decay=WEIGHT_DECAY)
    optim_d = torch.optim.AdamW(disc.parameters(), tr.learning_rate, betas=tr.betas, eps=tr.eps, weight_decay=WEIGHT_DECAY)
    step, epoch, resumed = _start_state(opts, gen, disc, optim_g, optim_d, cfg.model.n_speakers)
    amp = tr.fp16_run and dev.type == "cuda"
    half = torch.float16 if tr.half_type == "fp16" else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and half == torch.float16)
    board = Board(opts.model_dir, opts.tensorboard, opts.log)
    result = FitResult(first_step=step, last_step=step - 1, resumed_from=resumed)
    mel_args = (data.sampling_rate, data.filter_length, data.n_mel_channels, data.mel_fmin, data.mel_fmax)
    started = time.perf_counter()
    try:
        while epoch <= tr.epochs:
            lr = tr.learning_rate * tr.lr_decay ** (epoch - 1)
            for group in (*optim_g.param_groups, *optim_d.param_groups):
                group["lr"], group["initial_lr"] = lr, tr.learning_rate
            for batch in loader:
                if opts.max_steps is not None and step > opts.max_steps:
                    return result
                b = batch.to(dev)
                mel = spec_to_mel(b.spec, *mel_args)
                with torch.autocast(dev.type, dtype=half, enabled=amp):
                    out = generator_forward(gen, b.c, b.f0, b.uv, b.spec, b.speaker, b.lengths, b.vol, segment_frames)
                    frames = out.y_hat.shape[-1] // data.hop_length
                    y_mel = slice_frames(mel, out.ids_slice, frames)
                    y_hat_mel = mel_spectrogram(out.y_hat.squeeze(1).float(), data.sampling_rate, data.filter_length,
                                                data.hop_length, data.win_length, data.n_mel_channels, data.mel_fmin, data.mel_fmax)
                    y = slice_frames(b.audio, out.ids_slice * data.hop_length, frames * data.hop_length)
                    real_s, fake_s, _, _ = disc(y, out.y_hat.detach())
                loss_d = discriminator_loss(real_s, fake_s)
                optim_d.zero_grad(set_to_none=True)
                scaler.scale(loss_d).backward()
                scaler.unscale_(optim_d)
                grad_d = _grad_norm(disc.parameters(), opts.grad_clip)
                scaler.step(optim_d)
                disc.requires_grad_(False)  # the generator step needs gradients w.r.t. y_hat only
                with torch.autocast(dev.type, dtype=half, enabled=amp):
                    _, fake_s, real_maps, fake_maps = disc(y, out.y_hat)
                disc.requires_grad_(True)
                loss_mel = F.l1_loss(y_mel.float(), y_hat_mel.float()) * tr.c_mel
                loss_kl = kl_loss(out.z_p, out.logs_q, out.m_p, out.logs_p, out.mask) * tr.c_kl
                loss_fm = feature_matching_loss(real_maps, fake_maps)
                loss_adv = generator_adversarial_loss(fake_s)
                loss_lf0 = F.mse_loss(out.pred_lf0.float(), out.lf0.float()) if out.pred_lf0 is not None else torch.zeros((), device=dev)
                loss_g = loss_adv + loss_fm + loss_mel + loss_kl + loss_lf0
                optim_g.zero_grad(set_to_none=True)
                scaler.scale(loss_g).backward()
                scaler.unscale_(optim_g)
                grad_g = _grad_norm(gen.parameters(), opts.grad_clip)
                scaler.step(optim_g)
                scaler.update()
                named = {"loss/g/total": loss_g, "loss/d/total": loss_d, "loss/g/fm": loss_fm, "loss/g/mel": loss_mel,
                         "loss/g/kl": loss_kl, "loss/g/lf0": loss_lf0, "loss/g/adv": loss_adv}
                values = {k: float(v.detach()) for k, v in named.items()}
                values.update({ "learning_rate": lr, "grad_norm_d": grad_d, "grad_norm_g": grad_g})
                result.history.append(values)
                result.last_step = step
                if not all(math.isfinite(v) for v in values.values()):
                    raise RtsvcError(f"training diverged at step {step}: a loss or gradient is NaN/Inf ({values}).",
                                     "lower train.learning_rate, or turn fp16_run off; training resumes from the last checkpoint.")
                if step % tr.log_interval == 0:
                    rate = (step - result.first_step + 1) / (time.perf_counter() - started)
                    opts.log(f"epoch {epoch} step {step}: mel {values['loss/g/mel']:.3f} kl {values['loss/g/kl']:.3f} "
                             f"fm {values['loss/g/fm']:.3f} gen {values['loss/g/adv']:.3f} disc {values['loss/d/total']:.3f} "
                             f"lf0 {values['loss/g/lf0']:.4f} lr {lr:.3g} ({rate:.2f} steps/s)")
                    board.scalars(step, values)
                    board.images(step, {"slice/mel_org": y_mel[0], "slice/mel_gen": y_hat_mel[0], "all/mel": mel[0]})
                if step % tr.eval_interval == 0:
                    _evaluate(gen, data, cfg, board, step, dev)
                    pair = ckpt.save_pair(opts.model_dir, step, epoch, tr.learning_rate, gen, optim_g, disc, optim_d)
                    ckpt.remove_old(opts.model_dir, tr.keep_ckpts)
                    opts.log(f"saved {pair.generator.name} and {pair.discriminator.name}")
                step += 1
            epoch += 1
        return result
    finally:
        board.close()


def _evaluate(gen, data, cfg, board: Board, step: int, dev: torch.device) -> None:
    """Infer the first validation clip and log audio and mel images (TensorBoard only)."""
    if board.writer_eval is None:
        return
    val = read_filelist(Path(data.validation_files))[:1]
    dataset = ClipDataset(val, cfg.spk, sampling_rate=data.sampling_rate, hop_length=data.hop_length,
                          filter_length=data.filter_length, win_length=data.win_length,
                          unit_interpolate_mode=data.unit_interpolate_mode, vol_embedding=cfg.model.vol_embedding,
                          vol_aug=False, all_in_mem=False, seed=0)
    item = dataset.load(val[0])
    gen.eval()
    with torch.no_grad():
        y_hat = gen.infer(item.c[None].to(dev), item.f0[None].to(dev), item.uv[None].to(dev),
                          g=torch.tensor([item.speaker], device=dev),
                          vol=item.vol[None].to(dev) if item.vol is not None else None)
    gen.train()
    wav = y_hat[0] if isinstance(y_hat, tuple) else y_hat
    board.audio(step, {"gen/audio_0": wav[0], "gt/audio_0": item.audio[0]}, data.sampling_rate)
    mel_args = (data.sampling_rate, data.filter_length, data.hop_length, data.win_length, data.n_mel_channels, data.mel_fmin, data.mel_fmax)
    board.images(step, {"gen/mel": mel_spectrogram(wav.reshape(1, -1).float().cpu(), *mel_args)[0],
                        "gt/mel": mel_spectrogram(item.audio, *mel_args)[0]}, evaluation=True)

"""End to end on a tiny synthesized two-speaker dataset: prepare -> config -> features -> fit ->
resume -> SIGKILL -> cluster -> index -> compress, with a tiny generator and so-vits-svc's own
discriminator."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from rtsvc.checkpoint import load_sovits
from rtsvc.cluster import load_cluster_model, load_feature_index
from rtsvc.train import checkpoints as ckpt
from rtsvc.train.cluster import train_cluster, train_index
from rtsvc.train.compress import compress_checkpoint
from rtsvc.train.dataset_config import ConfigOptions, write_config
from rtsvc.train.fit import FitOptions, fit
from rtsvc.train.pipeline import Workspace, run_features
from rtsvc.train.prepare import prepare_dataset
from tiny_data import projected_encoder, write_dataset_raw

STEPS = 24  # a few dozen steps of the tiny model (narrow discriminator: see DIVISOR)
EVAL = 6
DIVISOR = 1  # so-vits-svc's own discriminator (46.7 M parameters)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fixtures_dir):
    ws = Workspace(tmp_path_factory.mktemp("work"))
    write_dataset_raw(ws.raw)
    prepare_dataset(ws.raw, ws.dataset, log=lambda s: None)
    config = write_config(ws.dataset, ws.root, ConfigOptions(
        speech_encoder="vec256l9", vol_embedding=True, size="tiny", batch_size=2, learning_rate=2e-3, log_interval=1,
        eval_interval=EVAL, keep_ckpts=2, segment_size=4096, val_per_speaker=1))
    encoder = functools.partial(projected_encoder, str(fixtures_dir / "contentvec" / "contentvec_tiny_legacy_like.pt"))
    failures = run_features(config, "dio", 0.05, 1, "cpu", None, encoder_factory=encoder, log=lambda s: None)
    assert failures == {}
    torch.manual_seed(0)
    result = fit(FitOptions(config, ws.model_dir, max_steps=STEPS, discriminator_divisor=DIVISOR, log=lambda s: None))
    return ws, config, result


def test_features_cached_per_clip(trained):
    ws, _, _ = trained
    clip = sorted(ws.dataset.glob("*/*.wav"))[0]
    for kind in ("soft", "f0", "vol", "spec"):
        arr = np.load(clip.with_name(f"{clip.name}.{kind}.npy"), allow_pickle=False)
        assert np.all(np.isfinite(arr))
    f0 = np.load(clip.with_name(f"{clip.name}.f0.npy"))
    assert np.median(f0[f0 > 0]) > 80  # the synthesized vowels are voiced


def test_fit_losses_finite_and_mel_falls(trained):
    _, _, result = trained
    assert (result.first_step, result.last_step, result.resumed_from) == (1, STEPS, None)
    assert all(np.isfinite(v) for h in result.history for v in h.values())
    mel = [h["loss/g/mel"] for h in result.history]
    half = len(mel) // 2
    assert np.mean(mel[half:]) < np.mean(mel[:half]), mel


def test_checkpoints_load_strictly_and_render(trained, fixtures_dir):
    ws, config, _ = trained
    assert [p.step for p in ckpt.list_pairs(ws.model_dir)] == [STEPS - EVAL, STEPS]  # keep_ckpts 2
    model, cfg, info = load_sovits(ws.model_dir / f"G_{STEPS}.pth", ws.model_dir / "config.json")
    assert info.kind == "full" and cfg.speakers == ("alto", "tenor_1efcf888")
    data = torch.load(ws.model_dir / f"G_{STEPS}.pth", weights_only=True)
    assert sorted(data) == ["iteration", "learning_rate", "model", "optimizer"] and data["optimizer"]["state"]
    # The discriminator trained here is so-vits-svc's own: its D_*.pth has exactly the layout of
    # so-vits-svc's D_0.pth (every key and shape).
    d_ref = json.loads((fixtures_dir / "sovits" / "discriminator_keys.json").read_text())
    d_state = torch.load(ws.model_dir / f"D_{STEPS}.pth", weights_only=True)["model"]
    assert {k: list(v.shape) for k, v in d_state.items()} == d_ref
    clip = sorted((ws.dataset / "alto").glob("*.wav"))[0]
    c = torch.from_numpy(np.load(clip.with_name(f"{clip.name}.soft.npy")))
    f0 = torch.full((1, 40), 200.0)
    from rtsvc.models.frames import expand_frames

    wav, _ = model.infer(expand_frames(c, 40, "nearest")[None], f0, torch.ones(1, 40), g=0, vol=torch.full((1, 40), 0.05))
    assert wav.shape == (1, 1, 40 * 512) and torch.isfinite(wav).all() and float(wav.abs().max()) > 0


def test_trained_voice_renders_with_rtsvc_render(trained, fixtures_dir, tmp_path, capsys):
    """The newest checkpoint goes through the user's path: `rtsvc render -m G -c config`."""
    import soundfile as sf
    from tiny_voice import make_tiny_encoder

    from rtsvc.cli import main

    ws, _, _ = trained
    encoder = make_tiny_encoder(tmp_path / "pretrain", fixtures_dir)  # a 256-dim vec256l9 file
    clip = sorted((ws.dataset / "tenor_1efcf888").glob("*.wav"))[0]
    out = tmp_path / "rendered.wav"
    rc = main(["render", str(clip), "-o", str(out), "-m", str(ws.model_dir / f"G_{STEPS}.pth"),
               "-c", str(ws.model_dir / "config.json"), "-e", str(encoder), "-s", "tenor_1efcf888", "-t", "3"])
    assert rc == 0, capsys.readouterr().err
    y, sr = sf.read(out)
    assert sr == 44100 and abs(len(y) - sf.info(clip).frames) <= 512 and np.all(np.isfinite(y))


def test_resume_continues_from_saved_step(trained):
    ws, config, _ = trained
    res = fit(FitOptions(config, ws.model_dir, max_steps=STEPS + 1, discriminator_divisor=DIVISOR, tensorboard=False, log=lambda s: None))
    assert (res.resumed_from, res.first_step, res.last_step) == (STEPS, STEPS + 1, STEPS + 1)


def test_sigkill_during_training_leaves_loadable_checkpoint(trained):
    ws, config, _ = trained
    raw = json.loads(config.read_text())
    raw["train"]["eval_interval"] = 1  # save every step, so the kill lands in or near a save
    config.write_text(json.dumps(raw, indent=2))
    before = ckpt.list_pairs(ws.model_dir)[-1].step
    cmd = [sys.executable, "-m", "rtsvc", "train", "fit", "--work", str(ws.root), "--max-steps", "1000",
           "--discriminator-divisor", str(DIVISOR), "--no-tensorboard"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 240
    saw_partial = False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            names = os.listdir(ws.model_dir)
            if any(n.endswith(".part") for n in names) and ckpt.list_pairs(ws.model_dir)[-1].step > before:
                saw_partial = True
                break
            time.sleep(0.001)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert saw_partial, "the trainer never wrote a new checkpoint within the time limit"
    for p in ws.model_dir.glob("*.pth"):  # every visible checkpoint is complete
        ckpt.read_checkpoint(p)
    pair, _, _ = ckpt.latest_loadable(ws.model_dir)
    assert pair.step > before
    load_sovits(pair.generator, ws.model_dir / "config.json")
    res = fit(FitOptions(config, ws.model_dir, max_steps=pair.step + 1, discriminator_divisor=DIVISOR, tensorboard=False, log=lambda s: None))
    assert res.resumed_from == pair.step and not list(ws.model_dir.glob(".*.part"))


def test_cluster_index_compress(trained, tmp_path):
    ws, _, _ = trained
    centres = load_cluster_model(train_cluster(ws.dataset, tmp_path / "kmeans.npz", n_clusters=8, log=lambda s: None))
    assert set(centres) == {"alto", "tenor_1efcf888"} and all(v.shape == (8, 256) for v in centres.values())
    index = load_feature_index(train_index(ws.dataset, tmp_path / "index.npz", log=lambda s: None))
    c = np.random.default_rng(0).standard_normal((256, 5)).astype(np.float32)
    assert index.mix_features(c, "alto", 0.5).shape == c.shape
    src = ckpt.list_pairs(ws.model_dir)[-1].generator
    compress_checkpoint(src, tmp_path / "release.pth", half=True)
    model, _, info = load_sovits(tmp_path / "release.pth", ws.model_dir / "config.json")
    assert info.kind == "compressed" and info.weights_dtype == "float16"

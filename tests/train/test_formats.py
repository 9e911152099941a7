"""Fast checks of the so-vits-svc formats: config.json, G/D checkpoint layouts, mel, losses, compress."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rtsvc.checkpoint import build_synthesizer, load_sovits
from rtsvc.errors import ModelFileError, ParameterError
from rtsvc.sovits_config import load_sovits_config, parse_sovits_config
from rtsvc.train import checkpoints as ckpt
from rtsvc.train.compress import compress_checkpoint
from rtsvc.train.dataset_config import ConfigOptions, build_config, read_sections, template
from rtsvc.train.discriminator import MultiPeriodDiscriminator
from rtsvc.train.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss, kl_loss
from rtsvc.train.mel import linear_spectrogram, mel_spectrogram, slaney_filterbank

VARIANTS = ("v41_vec768_vol", "v41_vec256_novol", "v41_snake")


def _layout(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        out.append(prefix + k)
        if isinstance(v, dict) and k != "spk":
            out += _layout(v, prefix + k + ".")
    return out


def test_config_template_has_sovits_layout(fixtures_dir):
    ref = json.loads((fixtures_dir / "sovits" / "v41_vec768_vol" / "config.json").read_text())
    assert _layout(template()) == _layout(ref)
    cfg = build_config(["alto", "tenor"], ConfigOptions(vol_embedding=True, batch_size=3, keep_ckpts=5), "t.txt", "v.txt")
    assert _layout(cfg) == _layout(ref)
    assert cfg["spk"] == {"alto": 0, "tenor": 1} and cfg["model"]["n_speakers"] == 2
    assert cfg["train"]["vol_aug"] and cfg["model"]["vol_embedding"] and cfg["train"]["batch_size"] == 3
    assert parse_sovits_config(cfg).model.ssl_dim == 768
    tiny = build_config(["a"], ConfigOptions(speech_encoder="vec256l9", size="tiny"), "t", "v")
    assert parse_sovits_config(tiny).model.ssl_dim == 256


def test_config_rejects_bad_values():
    with pytest.raises(ParameterError, match="speech encoder"):
        ConfigOptions(speech_encoder="whisper-ppg")
    with pytest.raises(ParameterError, match="unknown key"):
        read_sections({"train": {**template()["train"], "lr": 1}, "data": template()["data"]})


def test_discriminator_matches_sovits_keys(fixtures_dir):
    ref = json.loads((fixtures_dir / "sovits" / "discriminator_keys.json").read_text())
    state = MultiPeriodDiscriminator().state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == ref
    small = MultiPeriodDiscriminator(divisor=8).state_dict()
    assert set(small) == set(ref) and small["discriminators.1.convs.4.weight_v"].shape[0] == 128
    with pytest.raises(ParameterError):
        MultiPeriodDiscriminator(divisor=3)


@pytest.mark.parametrize("variant", VARIANTS)
def test_generator_checkpoint_layout_and_strict_finetune_load(fixtures_dir, tmp_path, variant):
    folder = fixtures_dir / "sovits" / variant
    keys = json.loads((folder / "checkpoint_keys.json").read_text())["G_800.pth"]
    gen = build_synthesizer(load_sovits_config(folder / "config.json"))
    # so-vits-svc's own G_800.pth loads strictly into our generator (fine-tuning path) ...
    ckpt.load_strict(gen, ckpt.read_checkpoint(folder / "G_800.pth")["model"], folder / "G_800.pth", "generator")
    optim = torch.optim.AdamW(gen.parameters(), 1e-4, betas=(0.8, 0.99), eps=1e-9)
    disc = MultiPeriodDiscriminator(divisor=16)
    pair = ckpt.save_pair(tmp_path, 800, 2, 1e-4, gen, optim, disc, torch.optim.AdamW(disc.parameters(), 1e-4))
    saved = torch.load(pair.generator, weights_only=True)
    # ... and what we save has its layout: the four top-level keys, every tensor name/shape/dtype.
    assert sorted(saved) == sorted(keys["top_level"])
    assert sorted([k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in saved["model"].items()) == sorted(keys["model"])
    group = saved["optimizer"]["param_groups"][0]
    ref_group = keys["optimizer"]["param_groups"][0]
    assert set(group) == set(ref_group) - {"initial_lr"} and group["betas"] == tuple(ref_group["betas"])
    assert f"list of {len(group['params'])} ints" == ref_group["params"]
    model, _, _ = load_sovits(pair.generator, folder / "config.json")
    assert model is not None


def test_checkpoint_mismatch_message(fixtures_dir, tmp_path):
    folder = fixtures_dir / "sovits"
    gen = build_synthesizer(load_sovits_config(folder / "v41_vec256_novol" / "config.json"))
    with pytest.raises(ModelFileError, match="does not match this config.json"):
        ckpt.load_strict(gen, ckpt.read_checkpoint(folder / "v41_vec768_vol" / "G_800.pth")["model"], folder / "x", "generator")
    bad = tmp_path / "G_5.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError, match="cannot be read"):
        ckpt.read_checkpoint(bad)


def test_compress_matches_sovits_release(fixtures_dir, tmp_path):
    folder = fixtures_dir / "sovits" / "v41_vec768_vol"
    ref = json.loads((folder / "checkpoint_keys.json").read_text())
    for half, name in ((False, "G_800_release.pth"), (True, "G_800_release_half.pth")):
        out = tmp_path / name
        counts = compress_checkpoint(folder / "G_800.pth", out, half=half)
        saved = torch.load(out, weights_only=True)
        assert sorted([k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in saved["model"].items()) == sorted(ref[name]["model"])
        assert saved["iteration"] == 0 and len(saved["optimizer"]["param_groups"][0]["params"]) == 617
        assert counts["dropped"] == 617 - 514
        model, _, info = load_sovits(out, folder / "config.json")
        assert info.kind == "compressed"
    with pytest.raises(ModelFileError, match="already a release"):
        compress_checkpoint(tmp_path / "G_800_release.pth", tmp_path / "again.pth")


def test_mel_filterbank_equals_librosa():
    librosa = pytest.importorskip("librosa", reason="librosa is in the 'train' extra that CI installs")
    ours = slaney_filterbank(44100, 2048, 80, 0.0, 22050)
    ref = librosa.filters.mel(sr=44100, n_fft=2048, n_mels=80, fmin=0.0, fmax=22050)
    assert np.allclose(ours, ref, atol=1e-7)


def test_spectrogram_frame_grid_and_tone_peak():
    rate, hop = 44100, 512
    t = np.arange(hop * 40) / rate
    x = torch.from_numpy(0.5 * np.sin(2 * np.pi * 1000 * t).astype(np.float32))[None]
    spec = linear_spectrogram(x, 2048, hop, 2048)
    assert spec.shape == (1, 1025, 40)
    assert abs(int(spec[0, :, 20].argmax()) - round(1000 * 2048 / rate)) <= 1
    mel = mel_spectrogram(x, rate, 2048, hop, 2048, 80, 0.0, 22050)
    assert mel.shape == (1, 80, 40) and float(mel.min()) >= np.log(1e-5) - 1e-6


def test_losses_values():
    real, fake = [torch.ones(2, 5)], [torch.zeros(2, 5)]
    assert float(discriminator_loss(real, fake)) == 0.0
    assert float(discriminator_loss(fake, real)) == 2.0
    assert float(generator_adversarial_loss(fake)) == 1.0
    maps = [[torch.ones(2, 3), torch.zeros(2, 4)]]
    assert float(feature_matching_loss(maps, [[torch.zeros(2, 3), torch.zeros(2, 4)]])) == 2.0
    z = torch.randn(1, 4, 6)
    mask = torch.ones(1, 1, 6)
    mask[..., 4:] = 0
    # equal prior and posterior: -1/2 per element, summed over channels, averaged over unmasked frames
    assert abs(float(kl_loss(z, torch.zeros_like(z), z, torch.zeros_like(z), mask)) + 0.5 * 4) < 1e-6

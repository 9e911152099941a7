"""Parity of rtsvc's SoVITS synthesizer with so-vits-svc, using the shared fixtures
(fixtures/sovits/README.md): deterministic waveforms and intermediates of every variant, the
f0-prediction path, the release files, upstream's default noisy draw, and the helpers
(coarse f0, unit interpolation, loudness)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtsvc.checkpoint import load_sovits
from rtsvc.models.coarse_f0 import f0_to_coarse
from rtsvc.models.draws import DEFAULT_SEED
from rtsvc.models.frames import expand_frames
from rtsvc.models.loudness import frame_loudness
from rtsvc.models.vocoder_snake import ALIAS_KERNEL, ALIAS_RATIO, kaiser_sinc_filter

VARIANTS = ("v41_vec768_vol", "v41_vec256_novol", "v41_snake", "v40_vec256")
WAV_TOL = 1e-4  # max abs and relative RMS (README "Tolerances")
INTERMEDIATE_TOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: identical results within 1.4e-6 (README) and far faster on a busy
    2-core machine. Restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def variants(fixtures_dir):
    """variant -> (model, config, info, ref arrays as tensors); each loaded once."""
    out = {}
    for name in VARIANTS:
        folder = fixtures_dir / "sovits" / name
        model, cfg, info = load_sovits(folder / "G_800.pth", folder / "config.json")
        with np.load(folder / "ref.npz") as ref:
            out[name] = (model, cfg, info, {k: torch.from_numpy(ref[k]) for k in ref.files})
    return out


def _run(model, ref, f0_key="f0", **kwargs):
    return model.infer_trace(
        ref["c"], ref[f0_key], ref["uv"], g=ref["sid"], vol=ref.get("vol"), noise_scale=float(ref["noise_scale"]),
        deterministic=kwargs.pop("deterministic", True), **kwargs,
    )


def assert_wav_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    a, e = actual.detach().float().numpy(), expected.numpy()
    assert a.shape == e.shape
    diff = a - e
    max_abs = float(np.abs(diff).max())
    rel_rms = float(np.sqrt(np.mean(diff**2)) / np.sqrt(np.mean(e**2)))
    assert max_abs <= WAV_TOL and rel_rms <= WAV_TOL, f"max abs {max_abs:.3g}, relative RMS {rel_rms:.3g}"


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float = INTERMEDIATE_TOL) -> None:
    a = actual.detach().float().numpy()
    assert a.shape == expected.shape
    assert float(np.abs(a - expected.numpy()).max()) <= tol


@pytest.mark.parametrize("name", VARIANTS)
def test_deterministic_waveform_and_intermediates(variants, name):
    model, _, _, ref = variants[name]
    trace = _run(model, ref)
    assert torch.equal(trace.f0_coarse, ref["f0_coarse"])
    for key in ("g", "pre_out", "enc_p_in", "m_p", "logs_p", "flow_out"):
        assert_close(getattr(trace, key), ref[key])
    assert_close(trace.z_p, ref["m_p"])  # zeroed noise: z_p is the prior mean
    assert_wav_close(trace.wav, ref["wav"])
    assert trace.wav.shape[-1] == ref["c"].shape[-1] * 512


@pytest.mark.parametrize("name", VARIANTS)
def test_interpolated_f0_waveform(variants, name):
    model, _, _, ref = variants[name]
    trace = _run(model, ref, f0_key="f0_interp")
    assert torch.equal(trace.f0_coarse, ref["f0_coarse_interp"])
    assert_wav_close(trace.wav, ref["wav_interp"])


@pytest.mark.parametrize("name", VARIANTS)
def test_excitation_matches_har_source(variants, name):
    model, _, _, ref = variants[name]
    har = model.dec.excitation(ref["f0"])  # (1, 1, N)
    assert_close(har.transpose(1, 2), ref["har_source"])


def test_sine_bank_head(variants):
    model, _, _, ref = variants["v41_vec768_vol"]
    from rtsvc.models.vocoder_source import upsample_f0

    bank = model.dec.m_source.sine_bank(upsample_f0(ref["f0"][:, :16], 512), None)
    assert_close(bank, ref["sine_waves_head"], tol=1e-5)


def test_predicted_f0_path(variants):
    model, _, _, ref = variants["v41_vec768_vol"]
    trace = model.infer_trace(ref["c"], ref["f0"], ref["uv"], g=ref["sid"], vol=ref["vol"], predict_f0=True, deterministic=True)
    assert_close(trace.f0, ref["f0_pred"], tol=1e-3)  # Hz
    assert torch.equal(trace.f0_coarse, ref["f0_coarse_pred"])
    assert_wav_close(trace.wav, ref["wav_predict_f0"])


def test_default_noisy_call_reproduces_upstream_draws(variants):
    """Upstream reseeds with 52468 and draws prior noise, initial phases and sine noise in this
    order; rtsvc's default (no generator) does the same on a private CPU generator."""
    model, _, _, ref = variants["v41_vec768_vol"]
    global_state = torch.random.get_rng_state()
    wav, _ = model.infer(ref["c"], ref["f0"], ref["uv"], g=ref["sid"], vol=ref["vol"], noise_scale=0.4)
    assert torch.equal(torch.random.get_rng_state(), global_state), "inference must not touch torch's global RNG"
    assert_wav_close(wav, ref["wav_default_rng"])
    assert float((wav - ref["wav"]).abs().max()) > 0.1  # the draws matter


def test_explicit_generator_and_determinism(variants):
    model, _, _, ref = variants["v41_vec256_novol"]
    short = {k: ref[k][..., :24] for k in ("c", "f0", "uv")}
    args = (short["c"], short["f0"], short["uv"])
    a, _ = model.infer(*args, g=0, deterministic=True)
    b, _ = model.infer(*args, g=0, deterministic=True)
    assert torch.equal(a, b)
    gen = torch.Generator().manual_seed(DEFAULT_SEED)
    seeded, _ = model.infer(*args, g=0, generator=gen)
    default, _ = model.infer(*args, g=0)
    assert torch.equal(seeded, default)
    other, _ = model.infer(*args, g=0, generator=torch.Generator().manual_seed(1))
    assert float((other - default).abs().max()) > 1e-3


def test_speaker_mix(variants):
    model, _, _, ref = variants["v41_vec768_vol"]
    emb = model.emb_g.weight
    one_hot = model.speaker_embedding(torch.tensor([0.0, 2.0]), 1)
    assert torch.equal(one_hot[0, :, 0], emb[1])
    half = model.speaker_embedding(torch.tensor([1.0, 1.0]), 1)
    assert torch.allclose(half[0, :, 0], (emb[0] + emb[1]) / 2)
    per_frame = model.speaker_embedding(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 3.0]]), 1)
    assert per_frame.shape == (1, emb.shape[1], 3)
    assert torch.allclose(per_frame[0, :, 2], 0.25 * emb[0] + 0.75 * emb[1])
    linear = model.speaker_embedding(torch.tensor([3.0, 0.0]), 1, normalize=False)
    assert torch.allclose(linear[0, :, 0], 3.0 * emb[0])
    short = {k: ref[k][..., :24] for k in ("c", "f0", "uv", "vol")}
    by_id, _ = model.infer(short["c"], short["f0"], short["uv"], g=1, vol=short["vol"], deterministic=True)
    by_mix, _ = model.infer(short["c"], short["f0"], short["uv"], g=torch.tensor([0.0, 1.0]), vol=short["vol"], deterministic=True)
    assert torch.equal(by_id, by_mix)


@pytest.mark.parametrize("name", ["v41_vec768_vol", "v41_snake"])
@pytest.mark.parametrize("frames", [1, 2, 7])
def test_output_length_is_frames_times_hop(variants, name, frames):
    model, cfg, _, ref = variants[name]
    wav, _ = model.infer(ref["c"][..., :frames], ref["f0"][:, :frames], ref["uv"][:, :frames],
                         g=0, vol=ref["vol"][:, :frames], deterministic=True)
    assert wav.shape == (1, 1, frames * cfg.hop_length)


def test_snake_filters_equal_stored_buffers(fixtures_dir):
    stored = torch.load(fixtures_dir / "sovits" / "v41_snake" / "G_800.pth", weights_only=True)["model"]
    mine = kaiser_sinc_filter(0.5 / ALIAS_RATIO, 0.6 / ALIAS_RATIO, ALIAS_KERNEL)
    for key in ("dec.snakes.0.upsample.filter", "dec.snake_post.downsample.lowpass.filter"):
        assert torch.allclose(mine, stored[key], atol=1e-7)


def test_release_files(fixtures_dir, variants):
    folder = fixtures_dir / "sovits" / "v41_vec768_vol"
    full_model, _, _, ref = variants["v41_vec768_vol"]
    release, _, info = load_sovits(folder / "G_800_release.pth", folder / "config.json")
    assert info.kind == "compressed" and info.weights_dtype == "float32"
    assert info.skipped_keys and all(k.startswith("enc_q.") for k in info.skipped_keys)
    assert release.enc_q is None
    full_state = {k: v for k, v in full_model.state_dict().items() if not k.startswith("enc_q.")}
    release_state = release.state_dict()
    assert set(full_state) == set(release_state)
    assert all(torch.equal(full_state[k], release_state[k]) for k in full_state)  # => identical waveform
    half, _, half_info = load_sovits(folder / "G_800_release_half.pth", folder / "config.json")
    assert half_info.weights_dtype == "float16" and half.dtype == torch.float32
    wav, _ = half.infer(ref["c"], ref["f0"], ref["uv"], g=ref["sid"], vol=ref["vol"], deterministic=True)
    assert_wav_close(wav, ref["wav_release_half_weights_as_fp32"])


# ---------------------------------------------------------------------------- helpers.npz
@pytest.fixture(scope="module")
def helpers(fixtures_dir):
    with np.load(fixtures_dir / "sovits" / "helpers.npz") as h:
        return {k: h[k] for k in h.files}


@pytest.mark.parametrize("version,key", [("4.1", "f0_grid_coarse_41"), ("4.0", "f0_grid_coarse_40")])
def test_coarse_f0_grid(helpers, version, key):
    grid = torch.from_numpy(helpers["f0_grid_hz"])
    assert np.array_equal(f0_to_coarse(grid, version).numpy(), helpers[key])
    assert np.array_equal(f0_to_coarse(grid.double(), version).numpy(), helpers[key])


def test_coarse_f0_versions_differ_only_above_1103_hz(helpers):
    grid = torch.from_numpy(helpers["f0_grid_hz"])
    differ = f0_to_coarse(grid, "4.1") != f0_to_coarse(grid, "4.0")
    assert bool(differ.any()) and bool((grid[differ] >= 1103.0).all())


#: (case, mode) pairs helpers.npz has references for (768x50_to_173 has no linear one).
INTERPOLATION_CASES = [
    (case, mode)
    for case in ("768x50_to_173", "32x50_to_86", "256x7_to_19", "4x10_to_6", "4x12_to_12")
    for mode in ("left", "nearest", "linear")
    if not (case == "768x50_to_173" and mode == "linear")
]


@pytest.mark.parametrize("case,mode", INTERPOLATION_CASES)
def test_unit_interpolation(helpers, case, mode):
    key = f"rep_{case}_{mode}"
    src = torch.from_numpy(helpers[f"rep_{case}_in"])
    out = expand_frames(src, helpers[key].shape[1], mode)
    assert out.dtype == torch.float32
    assert np.array_equal(out.numpy(), helpers[key])
    probe = expand_frames(torch.arange(src.shape[1], dtype=torch.float32)[None], helpers[key].shape[1], mode)
    assert np.array_equal(probe.numpy(), helpers[f"{key}_src_index_probe"])


@pytest.mark.parametrize("variant,key", [("4.1-stable", "vol_out_41stable"), ("4.1-latest", "vol_out_41latest")])
def test_loudness(helpers, variant, key):
    out = frame_loudness(torch.from_numpy(helpers["vol_audio"]), 512, variant).numpy()
    expected = helpers[key]
    assert out.shape == expected.shape
    assert float(np.abs(out - expected).max() / np.abs(expected).max()) <= 1e-6

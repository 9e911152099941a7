"""The live polyphase resampler: exact sample positions, small fixed release delay, alias
rejection, and chunking that does not change the output."""

from __future__ import annotations

import numpy as np
import pytest

from rtsvc.engine.resampling import StreamResampler, stream_lag

PAIRS = [(48000, 44100), (44100, 48000), (48000, 16000), (44100, 32000), (16000, 44100)]


def two_tones(rate: int, n: int, f1: float, f2: float) -> np.ndarray:
    t = np.arange(n) / rate
    return 0.5 * np.sin(2 * np.pi * f1 * t) + 0.3 * np.sin(2 * np.pi * f2 * t)


@pytest.mark.parametrize("rate_in,rate_out", PAIRS)
def test_output_sample_j_is_the_input_at_time_j_over_rate_out(rate_in, rate_out):
    f2 = 0.3 * min(rate_in, rate_out)  # well inside the passband
    x = two_tones(rate_in, rate_in // 2, 1000.0, f2).astype(np.float32)
    rs = StreamResampler(rate_in, rate_out)
    y = np.concatenate([rs.process(x[i : i + 960]) for i in range(0, len(x), 960)])
    missing = len(x) * rate_out / rate_in - len(y)  # held back: the release delay
    assert 0 <= missing <= rs.delay_samples_in * rate_out / rate_in + 1
    ref = two_tones(rate_out, len(y), 1000.0, f2)
    err = y[200:] - ref[200:]  # after the start-up transient (zeros before the stream)
    assert 10 * np.log10(np.mean(err**2) / np.mean(ref[200:] ** 2)) < -60


@pytest.mark.parametrize("rate_in,rate_out", PAIRS)
def test_release_delay_is_small_and_fixed(rate_in, rate_out):
    lag = stream_lag(rate_in, rate_out, 480)
    rs = StreamResampler(rate_in, rate_out)
    assert lag < 0.0015  # soxr released output up to 10-18 ms late
    assert lag == pytest.approx(rs.delay_samples_in / rate_in, abs=1.0 / rate_out)
    assert stream_lag(rate_in, rate_out, 333) == pytest.approx(lag, abs=1.0 / rate_out)


@pytest.mark.parametrize("rate_in,rate_out", [(48000, 44100), (48000, 16000)])
def test_tones_above_the_output_nyquist_are_rejected(rate_in, rate_out):
    t = np.arange(rate_in // 2) / rate_in
    x = (0.5 * np.sin(2 * np.pi * 0.52 * rate_out * t)).astype(np.float32)
    y = StreamResampler(rate_in, rate_out).process(x)
    assert 20 * np.log10(np.std(y[500:]) / (0.5 / np.sqrt(2))) < -60


def test_chunking_does_not_change_the_output_and_equal_rates_copy():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(20000).astype(np.float32)
    whole = StreamResampler(48000, 44100).process(x)
    rs = StreamResampler(48000, 44100)
    cuts = np.sort(rng.integers(0, len(x), 40))
    parts = [rs.process(p) for p in np.split(x, cuts)]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)
    same = StreamResampler(44100, 44100)
    y = same.process(x)
    np.testing.assert_array_equal(y, x)
    assert y is not x and same.delay_samples_in == 0.0

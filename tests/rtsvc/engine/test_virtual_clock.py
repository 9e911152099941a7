"""The whole engine on the virtual clock: streamed output vs offline, seams, latency, timeline.

Measures: SNR = 10 log10(sum ref^2 / sum (ref - stream)^2) over "voiced" samples (where the
offline render's 10 ms RMS envelope is within 30 dB of its maximum), after aligning the stream by
the reported algorithmic latency (no search). Seam detector: the largest sample-to-sample step
of the aligned stream must not exceed the input's own largest step by more than 5% (resampler
ripple), on a sine sweep.
"""

from __future__ import annotations

import numpy as np
import pytest

from rtsvc.audio_io import resample
from rtsvc.engine.controller import Controller
from rtsvc.engine.drivers import VirtualClockDriver
from rtsvc.engine.params import LiveParams
from rtsvc.params import VoiceParams

SNR_MIN_DB = 25.0
SEAM_TOLERANCE = 1.05


def speechlike(rate: int, seconds: float = 2.0) -> np.ndarray:
    """Harmonic tone with gliding pitch, broken into syllables by pauses."""
    t = np.arange(round(seconds * rate)) / rate
    f = 160 + 50 * np.sin(2 * np.pi * 0.7 * t)
    ph = 2 * np.pi * np.cumsum(f) / rate
    x = sum(0.25 / k * np.sin(k * ph) for k in range(1, 8))
    env = (np.sin(2 * np.pi * 2.0 * t) > -0.3).astype(float)
    env = np.convolve(env, np.hanning(round(0.01 * rate)) / (0.005 * rate), mode="same")
    return (x * env).astype(np.float32)


def run_stream(voice, audio, rate, estimator, out_rate=None, period=256, **changes):
    drv = VirtualClockDriver(audio, rate, output_rate=out_rate, period=period)
    params = LiveParams(threshold_db=-120.0, **changes)
    ctl = Controller(driver=drv, params=params, voice=voice, estimator=estimator)
    ctl.start()
    out = drv.run()
    st = ctl.status()
    ctl.stop()
    lag = round(st.latency["algorithmic_ms"] * (out_rate or rate) / 1000.0)
    return out, lag, st


def offline(voice, audio, rate, out_rate=None):
    y = voice.convert(resample(audio, rate, voice.sample_rate), VoiceParams())
    return resample(y, voice.sample_rate, out_rate or rate)


def voiced_snr(ref, stream, rate):
    n = min(len(ref), len(stream))
    ref, stream = ref[:n], stream[:n]
    win = round(0.01 * rate)
    env = np.sqrt(np.convolve(ref.astype(np.float64) ** 2, np.ones(win) / win, mode="same"))
    voiced = env > env.max() * 10 ** (-30 / 20)
    voiced[: round(0.1 * rate)] = False  # the stream starts from silence
    err = ref[voiced] - stream[voiced]
    return 10 * np.log10(np.sum(ref[voiced] ** 2) / np.sum(err**2))


@pytest.mark.parametrize("rate,out_rate", [(44100, None), (48000, None), (48000, 32000)])
def test_stream_matches_offline_render(voices, estimator, rate, out_rate):
    voice = voices["filter"]()
    x = speechlike(rate)
    out, lag, st = run_stream(voice, x, rate, estimator, out_rate=out_rate)
    assert st.blocks > 50 and st.late_blocks == 0 and st.output_underflows == 0
    ref = offline(voice, x, rate, out_rate)
    snr = voiced_snr(ref, out[lag:], out_rate or rate)
    assert snr >= SNR_MIN_DB, f"SNR {snr:.1f} dB"
    # the alignment is exact: one sample off is visibly worse at 44.1 kHz without resampling
    if rate == 44100:
        assert snr > 60 and voiced_snr(ref, out[lag + 1 :], rate) < snr - 10


@pytest.mark.parametrize("voice_name", ["identity", "jitter"])
def test_no_clicks_at_block_seams_on_a_sweep(voices, estimator, make_sweep, voice_name):
    rate = 48000
    voice = voices["identity"]() if voice_name == "identity" else voices["jitter"](max_shift=100)
    x = make_sweep(rate, 2.0, 100.0, 3000.0)
    out, lag, st = run_stream(voice, x, rate, estimator, block_ms=20, sola_search_ms=4, crossfade_ms=4)
    y = out[lag + rate // 10 : lag + len(x) - rate // 20]
    assert st.blocks > 80
    assert np.max(np.abs(y)) > 0.45  # the sweep is there
    step_in = np.max(np.abs(np.diff(x)))
    step_out = np.max(np.abs(np.diff(y)))
    assert step_out <= SEAM_TOLERANCE * step_in, f"largest step {step_out:.4f} vs input {step_in:.4f}"


def test_stalls_never_shift_the_timeline(voices, estimator):
    """The worker stalls twice (5 and 20 periods): the output runs dry, blocks arrive late and the
    long stall drops input, yet afterwards every sample sits exactly at the reported latency."""
    rate = 44100
    voice = voices["filter"]()
    x = speechlike(rate)
    drv = VirtualClockDriver(x, rate, period=256, stalls={60: 5, 150: 20})
    ctl = Controller(driver=drv, params=LiveParams(threshold_db=-120.0, fallback="dry"), voice=voice, estimator=estimator)
    ctl.start()
    out = drv.run()
    st = ctl.status()
    lag = round(st.latency["algorithmic_ms"] * rate / 1000.0)
    assert st.output_underflows >= 2 and st.late_blocks >= 2 and st.dropped_blocks >= 1
    assert st.queue_age_max_ms <= 2 * st.latency["block_ms"] + st.latency["period_ms"] + 25  # + resampler FIFO
    after = 170 * 256 + rate // 2 + rate // 10  # after the stall and the fallback (0.5 s)
    ref = offline(voice, x, rate)
    assert voiced_snr(ref[after:], out[lag + after :], rate) >= SNR_MIN_DB


def test_voice_gets_16k_audio_when_it_needs_it(voices, estimator):
    rate = 48000
    voice = voices["identity"](needs_16k=True)
    voice.keep_windows = True
    x = speechlike(rate, 1.0)
    run_stream(voice, x, rate, estimator)
    w = voice.windows[len(voice.windows) // 3]  # inside the signal
    assert len(w.audio_16k) == round(len(w.audio) * 16000 / 44100)
    # Same span: the 16 kHz window ends where the audio window ends (to within one 16 kHz
    # sample, since the span's ends fall between 16 kHz samples).
    ref16 = resample(w.audio, 44100, 16000)
    n = len(w.audio_16k)
    errs = {lag: np.sum((ref16[100 + lag : n - 100 + lag] - w.audio_16k[100 : n - 100]) ** 2)
            / np.sum(ref16[100 + lag : n - 100 + lag] ** 2) for lag in (-1, 0, 1)}
    assert min(errs.values()) < 0.01, errs
    assert len(w.f0) == len(w.audio) // 220 and w.skip_tail == 0


def test_stall_longer_than_the_input_ring_keeps_the_timeline(voices, estimator):
    """A 2.3 s stall overflows the 2 s input ring: the lost input is accounted like dropped input
    and the end of the stream is still at the reported latency."""
    rate = 44100
    voice = voices["filter"]()
    x = speechlike(rate, 4.0)
    drv = VirtualClockDriver(x, rate, period=256, stalls={40: 400})
    ctl = Controller(driver=drv, params=LiveParams(threshold_db=-120.0), voice=voice, estimator=estimator)
    ctl.start()
    out = drv.run()
    st = ctl.status()
    assert st.input_overflow_samples > 0 and st.dropped_blocks >= 1
    lag = round(st.latency["algorithmic_ms"] * rate / 1000.0)
    after = 440 * 256 + rate // 2 + rate // 10
    ref = offline(voice, x, rate)
    assert voiced_snr(ref[after:], out[lag + after :], rate) >= SNR_MIN_DB

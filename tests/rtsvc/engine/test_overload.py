"""Overload on the wall clock: a voice slower than real time, then recovery.

The virtual-clock driver runs in real time (callbacks paced by the wall clock, the worker in its
own thread), exactly as with a sound card. No timing is asserted: only counters and the audio.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from rtsvc.engine.controller import Controller
from rtsvc.engine.drivers import VirtualClockDriver
from rtsvc.engine.params import LiveParams

RATE = 44100
SLOW_SECONDS = 1.2


def assert_input_at_reported_latency(out, x, st, start_s: float, end_s: float) -> int:
    """The identity voice's output over [start_s, end_s) of the input is the input at the
    reported algorithmic latency: the best-matching lag is exactly that one, and most 50 ms pieces
    match closely (a wall-clock stall of the test machine may still leave a gap in one of them).
    Returns the lag in samples."""
    lag = round(st.latency["algorithmic_ms"] * RATE / 1000)
    a, b = int(start_s * RATE), int(end_s * RATE)
    best = max(range(lag - 200, lag + 201), key=lambda d: float(np.dot(out[a + d : b + d], x[a:b])))
    assert best == lag, f"the output matches the input best {best - lag} samples away from the reported latency"
    piece = int(0.05 * RATE)
    snrs = [10 * np.log10(np.sum(x[i : i + piece] ** 2) / max(1e-12, np.sum((out[i + lag : i + lag + piece] - x[i : i + piece]) ** 2)))
            for i in range(a, b - piece + 1, piece)]
    assert np.median(snrs) >= 25.0, f"SNR per 50 ms: {np.round(snrs, 1)} dB"
    return lag


def test_sleeping_voice_bounds_queue_age_counts_late_blocks_falls_back_and_recovers(voices, estimator, make_sweep):
    voice = voices["sleepy"](0.06)  # 60 ms per 20 ms block while slow
    x = make_sweep(RATE, 3.0, 200.0, 800.0, level=0.4)
    drv = VirtualClockDriver(x, RATE, period=256, realtime=True, tail_seconds=0.3)
    params = LiveParams(threshold_db=-120.0, block_ms=20.0, fallback="dry")
    ctl = Controller(driver=drv, params=params, voice=voice, estimator=estimator)
    ctl.start()
    timer = threading.Timer(SLOW_SECONDS, lambda: setattr(voice, "slow", False))
    timer.start()
    try:
        assert drv.wait(20), "the virtual clock did not finish"
        st = ctl.status()
    finally:
        timer.cancel()
        ctl.stop()
    block_ms = st.latency["block_ms"]
    assert st.late_blocks > 0 and st.fallback_blocks > 0 and st.slow_blocks > 0
    # queue age bounded: two blocks + one period in the ring, at most one block in the FIFO
    assert st.queue_age_max_ms <= 3 * block_ms + st.latency["period_ms"] + 1.0, st.queue_age_max_ms
    # recovered: the voice runs again once the load is gone ...
    calls_after = voice.calls
    assert calls_after > 40 and st.voice_blocks > 40
    # ... and the end of the stream is the input at the reported latency
    out = drv.output
    lag = assert_input_at_reported_latency(out, x, st, 2.3, 2.9)
    # the fallback kept sound going during the overload (dry input, not silence)
    overload = out[int(0.3 * RATE) + lag : int(1.0 * RATE) + lag]
    assert np.mean(np.abs(overload) > 0.05) > 0.5


def test_one_late_block_is_counted_without_falling_back(voices, estimator, make_sweep):
    """A single scheduling spike (one block late) costs a short gap, not half a second of dry voice."""
    voice = voices["sleepy"](0.0)
    spiky = voice.convert_window

    def once_slow(window, params):
        # One block takes 40 ms: late (20 ms block, 15 ms allowance), not dropped (input is
        # dropped after two blocks and a period, ~46 ms). The 15 ms allowance keeps the other
        # blocks clear of the ~10 ms scheduling stalls of a busy CI machine.
        if voice.calls == 30:
            time.sleep(0.04)
        return spiky(window, params)

    voice.convert_window = once_slow
    x = make_sweep(RATE, 1.5, 200.0, 800.0, level=0.4)
    drv = VirtualClockDriver(x, RATE, period=256, realtime=True, tail_seconds=0.2)
    ctl = Controller(driver=drv, params=LiveParams(threshold_db=-120.0, block_ms=20.0, prefill_ms=15.0, fallback="dry"),
                     voice=voice, estimator=estimator)
    ctl.start()
    try:
        assert drv.wait(20), "the virtual clock did not finish"
        st = ctl.status()
    finally:
        ctl.stop()
    assert st.late_blocks >= 1 and st.dropped_blocks == 0 and st.over_allowance_blocks >= 1
    assert st.fallback_blocks == 0 and st.voice_blocks == st.blocks


def test_blocks_over_the_processing_allowance_are_counted_on_the_stepped_clock(voices, estimator, make_sweep):
    """Stepped runs cannot be late; the counter says which blocks would have risked it."""
    voice = voices["sleepy"](0.0)
    plain = voice.convert_window

    def two_slow(window, params):
        if voice.calls in (10, 20):
            time.sleep(0.03)  # over the 15 ms allowance
        return plain(window, params)

    voice.convert_window = two_slow
    drv = VirtualClockDriver(make_sweep(RATE, 1.0, 200.0, 800.0, level=0.4), RATE, period=256)
    ctl = Controller(driver=drv, params=LiveParams(threshold_db=-120.0, block_ms=20.0, prefill_ms=15.0),
                     voice=voice, estimator=estimator)
    ctl.start()
    drv.run()
    st = ctl.status()
    ctl.stop()
    assert st.late_blocks == 0 and st.blocks >= 45
    assert 2 <= st.over_allowance_blocks < st.blocks // 2  # the two sleeps, not the ~1 ms blocks


def test_realtime_clock_reports_how_far_it_fell_behind_and_when():
    """A held-up clock thread (here: one callback that takes 100 ms) is what a paused process
    looks like to a sound card; the virtual clock reports its worst lag and the stream time."""
    period, rate = 256, 44100

    class Callbacks:
        monitor_ring = None
        ticks = 0

        def input_callback(self, indata, frames, time_info, status):
            self.ticks += 1
            if self.ticks == 21:
                time.sleep(0.1)

        def output_callback(self, outdata, frames, time_info, status):
            outdata[:] = 0.0

    drv = VirtualClockDriver(np.zeros(rate // 2, np.float32), rate, period=period, realtime=True, tail_seconds=0.0)
    drv.open(None, Callbacks(), lambda: 0)
    drv.start()
    assert drv.wait(10.0)
    assert drv.worst_lateness_s >= 0.08
    assert drv.worst_lateness_at_s >= 21 * period / rate - 1e-9


def test_a_paused_process_drops_the_piled_up_input_and_keeps_the_latency(voices, estimator, make_sweep):
    """The whole process held up for 0.3 s (here: the clock thread, which the worker waits on),
    as an operating system can do to any program: afterwards the callbacks catch up at once, so
    the input piles up and the output runs dry. The engine drops the stale input (never plays it
    late), counts it and goes on converting at exactly the reported latency: the worker keeps up,
    so half a second of the dry voice would only be heard, not help. The clock reports the pause
    as its lag, which tells it apart from a slow voice."""
    x = make_sweep(RATE, 3.0, 200.0, 800.0, level=0.4)
    drv = VirtualClockDriver(x, RATE, period=256, realtime=True, tail_seconds=0.3)
    # fallback "silence": a fallback would be heard as a gap (the dry input equals this voice)
    ctl = Controller(driver=drv, params=LiveParams(threshold_db=-120.0, block_ms=20.0, fallback="silence"),
                     voice=voices["identity"](), estimator=estimator)
    ctl.start()
    cb, ticks = drv._cb, [0]
    real_input = cb.input_callback

    def pausing_input(indata, frames, time_info, status):
        ticks[0] += 1
        if ticks[0] == round(0.8 * RATE / 256):
            time.sleep(0.3)
        real_input(indata, frames, time_info, status)

    cb.input_callback = pausing_input
    try:
        assert drv.wait(20), "the virtual clock did not finish"
        st = ctl.status()
    finally:
        ctl.stop()
    assert drv.worst_lateness_s >= 0.25
    assert st.dropped_blocks >= 5 and st.late_blocks >= 1
    assert st.fallback_blocks == 0 and st.voice_blocks == st.blocks
    lag = assert_input_at_reported_latency(drv.output, x, st, 1.2, 2.9)
    # right after the pause: the voice (identity), not a fallback, at the reported latency
    np.testing.assert_allclose(drv.output[int(1.25 * RATE) + lag : int(1.5 * RATE) + lag],
                               x[int(1.25 * RATE) : int(1.5 * RATE)], atol=1e-4)


def test_recent_mean_of_block_times_wraps_around_the_history():
    from rtsvc.engine.stats import TIME_HISTORY, BlockTimes

    times = BlockTimes()
    assert times.recent_mean(4) == 0.0
    times.add(0.5)
    assert times.recent_mean(4) == 0.5
    for i in range(TIME_HISTORY + 2):
        times.add(float(i))
    last = TIME_HISTORY + 1
    assert times.recent_mean(4) == (last + (last - 1) + (last - 2) + (last - 3)) / 4

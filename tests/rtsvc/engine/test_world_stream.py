"""The built-in WORLD voice through the live engine (virtual clock, dio pitch).

WORLD re-synthesises each window with its own pulse phases, so the stream is not sample-equal to
the offline render; what must hold: the pitch shift (median f0 ratio of output to input within
1% of 2^(5/12)) and no seam clicks (the stream's largest sample step at most 25% above the
offline render's own largest step).
"""

from __future__ import annotations

import numpy as np

from rtsvc._pyworld import import_pyworld
from rtsvc.engine.controller import Controller
from rtsvc.engine.drivers import VirtualClockDriver
from rtsvc.engine.params import LiveParams
from rtsvc.params import VoiceParams
from rtsvc.world_voice import WorldVoice

RATE = 44100
SEMITONES = 5


def test_world_voice_streams_with_the_right_pitch_and_no_seam_clicks():
    pw = import_pyworld()
    t = np.arange(int(RATE * 1.2)) / RATE
    ph = 2 * np.pi * np.cumsum(150 + 30 * np.sin(2 * np.pi * t)) / RATE
    x = (0.3 * np.sin(ph) + 0.15 * np.sin(2 * ph) + 0.05 * np.sin(3 * ph)).astype(np.float32)
    voice = WorldVoice()
    drv = VirtualClockDriver(x, RATE)
    params = LiveParams(threshold_db=-120.0, f0_method="dio", transpose=SEMITONES, block_ms=50, extra_context_ms=30)
    ctl = Controller(driver=drv, params=params, voice=voice)
    ctl.start()
    out = drv.run()
    st = ctl.status()
    assert st.voice_blocks == st.blocks and st.last_error is None
    lag = round(st.latency["algorithmic_ms"] * RATE / 1000)
    y = out[lag : lag + len(x)].astype(np.float64)
    f_out, _ = pw.dio(y, RATE, frame_period=10)
    f_in, _ = pw.dio(x.astype(np.float64), RATE, frame_period=10)
    voiced = (f_out > 0) & (f_in > 0)
    voiced[:20] = False
    assert voiced.mean() > 0.6
    assert abs(np.median(f_out[voiced] / f_in[voiced]) / 2 ** (SEMITONES / 12) - 1) < 0.01
    offline = voice.convert(x, VoiceParams(transpose=SEMITONES, f0_method="dio"))
    core = slice(RATE // 10, -RATE // 10)
    assert np.max(np.abs(np.diff(y[core]))) <= 1.25 * np.max(np.abs(np.diff(offline[core])))

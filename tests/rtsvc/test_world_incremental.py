"""The WORLD voice's incremental live path (``convert_window`` with ``start_frame``).

Checks: frames it calls final carry the offline analysis (CheapTrick equal, D4C within 0.5 dB:
D4C's safeguard noise depends on which frames share a call; on the 10 ms aperiodicity grid: odd
voiced frames after a voiced frame hold that frame's aperiodicity); each block analyses only
about a block of new frames (half of them with D4C); without ``start_frame`` it is the old whole-window conversion; a restarted
or different stream starts from a clean cache; the engine streams it at 20 ms blocks with the
right pitch and no seam clicks (largest sample step within 25% of the offline render's). At 20 ms
blocks SOLA's splices bias dio's reading of the output pitch by ~1.3% on this signal (the
whole-window path measured the same before the incremental one existed), so the pitch check
allows 2%; a wrong transpose is off by 6% per semitone.
"""

from __future__ import annotations

import numpy as np
import pytest
from signals import sung_vowel

from rtsvc.engine.controller import Controller
from rtsvc.engine.drivers import VirtualClockDriver
from rtsvc.engine.params import LiveParams
from rtsvc.params import VoiceParams
from rtsvc.pitch import estimate_f0
from rtsvc.voice import StreamWindow
from rtsvc.world_voice import D4C_THRESHOLD, WorldVoice

SR = 44100
HOP = 220
WINDOW_FRAMES = 26
BLOCK_FRAMES = 4
OUT = BLOCK_FRAMES * HOP + 2 * 176  # block + SOLA search + crossfade at 4 ms each


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, np.ndarray]:
    x = sung_vowel(f0=180.0, seconds=1.0, sr=SR)
    x = x[: len(x) // HOP * HOP]
    return x, estimate_f0(x, SR, HOP, "dio")


def windows(x: np.ndarray, f0: np.ndarray, first_end: int = WINDOW_FRAMES, with_start: bool = True):
    """Live windows of WINDOW_FRAMES frames moving by BLOCK_FRAMES, as the engine builds them."""
    for end in range(first_end, len(x) // HOP + 1, BLOCK_FRAMES):
        s = end - WINDOW_FRAMES
        yield StreamWindow(x[s * HOP : end * HOP], np.zeros(0, np.float32), f0[s:end], OUT, 0,
                           start_frame=s if with_start else None)


class CountingWorld:
    """Wraps pyworld and records the frame count of each CheapTrick / D4C call."""

    def __init__(self, pw) -> None:
        self.pw = pw
        self.frames: dict[str, list[int]] = {"cheaptrick": [], "d4c": []}

    def __getattr__(self, name):
        fn = getattr(self.pw, name)
        if name not in self.frames:
            return fn

        def counted(x, f0, *args, **kwargs):
            self.frames[name].append(len(f0))
            return fn(x, f0, *args, **kwargs)
        return counted


def test_final_frames_carry_the_offline_analysis(clip):
    x, f0 = clip
    voice = WorldVoice()
    pw = voice.pw
    frames = len(x) // HOP + 1
    f0_full = np.concatenate([f0, [f0[-1]]]).astype(np.float64)
    t = np.arange(frames) * HOP / SR
    sp_ref = pw.cheaptrick(x.astype(np.float64), f0_full, t, SR, fft_size=voice.fft_size)
    ap_ref = pw.d4c(x.astype(np.float64), f0_full, t, SR, threshold=D4C_THRESHOLD, fft_size=voice.fft_size)
    voiced = f0_full > 0
    for k in range(1, frames):  # the 10 ms aperiodicity grid, written out frame by frame
        if k % 2 == 1 and voiced[k] and voiced[k - 1]:
            ap_ref[k] = ap_ref[k - 1]
    checked = 0
    for w in windows(x, f0):
        voice.convert_window(w, VoiceParams(transpose=3))
        st = voice._stream
        rows = np.flatnonzero(st.final)
        frames_abs = st.first + rows
        assert np.all(st.f0[rows] == f0_full[frames_abs])
        sp, ref = st.sp[rows], sp_ref[frames_abs]
        audible = ref > 1e-8 * ref.max()
        assert np.max(np.abs(np.log(sp[audible] / ref[audible]))) < 1e-4
        assert np.max(np.abs(20 * np.log10(st.ap[rows] / ap_ref[frames_abs]))) < 0.5
        checked += len(rows)
    assert checked > 500


def test_each_block_analyses_about_one_block_of_frames(clip):
    x, f0 = clip
    voice = WorldVoice()
    spy = CountingWorld(voice.pw)
    voice.pw = spy
    for w in windows(x, f0):
        voice.convert_window(w, VoiceParams())
    d4c, ct = spy.frames["d4c"][1:], spy.frames["cheaptrick"][1:]  # the first window is analysed whole
    assert spy.frames["d4c"][0] >= (WINDOW_FRAMES - 8) // 2
    # steady voiced input: D4C sees the new complete frames on the 10 ms grid only (provisional
    # ones hold the newest final aperiodicity); CheapTrick also re-reads the frames still incomplete
    assert np.median(d4c) == BLOCK_FRAMES // 2 and max(d4c) <= BLOCK_FRAMES // 2 + 2, d4c
    assert max(ct) <= BLOCK_FRAMES + 8 < WINDOW_FRAMES, ct


def test_offline_analysis_runs_d4c_on_the_10_ms_grid_only(clip):
    x, f0 = clip
    voice = WorldVoice()
    spy = CountingWorld(voice.pw)
    voice.pw = spy
    voice.convert(x, VoiceParams(), f0=f0)
    frames = len(x) // HOP + 1
    assert spy.frames["cheaptrick"] == [frames]
    # the clip is voiced throughout: frame 0 and every even frame
    assert spy.frames["d4c"] == [(frames + 1) // 2]


def test_without_start_frame_the_whole_window_is_converted(clip):
    x, f0 = clip
    voice = WorldVoice()
    w = next(windows(x, f0, first_end=60, with_start=False))
    y = voice.convert_window(w, VoiceParams(transpose=2, formant=1))
    full = voice.convert(w.audio, VoiceParams(transpose=2, formant=1), f0=w.f0)
    assert voice._stream is None
    np.testing.assert_array_equal(y, full[len(full) - OUT :])


def test_a_restarted_or_different_stream_starts_clean(clip):
    x, f0 = clip
    voice = WorldVoice()
    params = VoiceParams(transpose=-2)
    stream = list(windows(x, f0))
    for w in stream[:10]:
        voice.convert_window(w, params)
    # restart: numbering starts over
    fresh = WorldVoice().convert_window(stream[0], params)
    np.testing.assert_array_equal(voice.convert_window(stream[0], params), fresh)
    # a window that continues the numbering but not the audio (another stream)
    voice.convert_window(stream[1], params)
    other = stream[2]
    moved = StreamWindow(np.roll(other.audio, 37), other.audio_16k, other.f0, OUT, 0, start_frame=other.start_frame)
    np.testing.assert_array_equal(voice.convert_window(moved, params), WorldVoice().convert_window(moved, params))
    voice.reset_stream()
    assert voice._stream is None


def test_engine_streams_world_at_20_ms_blocks_with_the_right_pitch_and_no_seam_clicks():
    semitones = 5
    t = np.arange(int(SR * 1.2)) / SR
    ph = 2 * np.pi * np.cumsum(150 + 30 * np.sin(2 * np.pi * t)) / SR
    x = (0.3 * np.sin(ph) + 0.15 * np.sin(2 * ph) + 0.05 * np.sin(3 * ph)).astype(np.float32)
    voice = WorldVoice()
    drv = VirtualClockDriver(x, SR)
    params = LiveParams(threshold_db=-120.0, f0_method="dio", transpose=semitones, formant=2, block_ms=20,
                        extra_context_ms=30)
    ctl = Controller(driver=drv, params=params, voice=voice)
    ctl.start()
    out = drv.run()
    st = ctl.status()
    ctl.stop()
    assert st.blocks > 50 and st.voice_blocks == st.blocks and st.last_error is None
    assert voice._stream is not None and voice._stream.final.any()  # the incremental path ran
    lag = round(st.latency["algorithmic_ms"] * SR / 1000)
    y = out[lag : lag + len(x)].astype(np.float64)
    pw = voice.pw
    f_out, _ = pw.dio(y, SR, frame_period=10)
    f_in, _ = pw.dio(x.astype(np.float64), SR, frame_period=10)
    voiced = (f_out > 0) & (f_in > 0)
    voiced[:20] = False
    assert voiced.mean() > 0.6
    assert abs(np.median(f_out[voiced] / f_in[voiced]) / 2 ** (semitones / 12) - 1) < 0.02
    offline = voice.convert(x, VoiceParams(transpose=semitones, formant=2, f0_method="dio"))
    core = slice(SR // 10, -SR // 10)
    assert np.max(np.abs(np.diff(y[core]))) <= 1.25 * np.max(np.abs(np.diff(offline[core])))


def test_a_voicing_onset_costs_one_extra_d4c_frame_and_final_frames_still_match():
    vowel = sung_vowel(f0=200.0, seconds=0.6, sr=SR)
    x = np.concatenate([np.zeros(round(0.3 * SR), np.float32), vowel])
    x = x[: len(x) // HOP * HOP]
    f0 = estimate_f0(x, SR, HOP, "dio")
    assert (f0[:50] == 0).all() and (f0[80:] > 0).mean() > 0.9  # silence, then voiced
    voice = WorldVoice()
    spy = CountingWorld(voice.pw)
    voice.pw = spy
    for w in windows(x, f0):
        voice.convert_window(w, VoiceParams())
    d4c = spy.frames["d4c"][1:]
    assert max(d4c) <= BLOCK_FRAMES // 2 + 2, d4c  # no burst of D4C calls at the onset
    # final rows after the onset carry the offline analysis on the 10 ms grid
    st = voice._stream
    frames = len(x) // HOP + 1
    f0_full = np.concatenate([f0, [f0[-1]]]).astype(np.float64)
    t = np.arange(frames) * HOP / SR
    ap_ref = voice.pw.d4c(x.astype(np.float64), f0_full, t, SR, threshold=D4C_THRESHOLD, fft_size=voice.fft_size)
    voiced = f0_full > 0
    for k in range(1, frames):
        if k % 2 == 1 and voiced[k] and voiced[k - 1]:
            ap_ref[k] = ap_ref[k - 1]
    rows = np.flatnonzero(st.final & (st.f0 > 0))
    assert len(rows) > 10
    err_db = np.abs(20 * np.log10(st.ap[rows] / ap_ref[st.first + rows]))
    assert np.max(err_db) < 0.5

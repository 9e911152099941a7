"""The controller on the virtual clock: gate, bypass, gains, voice swap, updates, presets,
recording, status subscription and the latency probe."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from rtsvc.engine.controller import Controller
from rtsvc.engine.drivers import VirtualClockDriver
from rtsvc.engine.measure import analyse, arm_probe
from rtsvc.engine.params import LiveParams
from rtsvc.engine.voices import VoiceSpec, parse_voice_spec
from rtsvc.errors import ModelFileError, ParameterError, RtsvcError

RATE = 44100


def tone(seconds, level=0.3, f=220.0, rate=RATE):
    t = np.arange(round(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * f * t)).astype(np.float32)


def make(voice, audio, estimator, **params):
    drv = VirtualClockDriver(audio, RATE)
    ctl = Controller(driver=drv, params=LiveParams(**params), voice=voice, estimator=estimator)
    return ctl, drv


def test_noise_gate_skips_inference_and_holds_after_loud_blocks(voices, estimator):
    voice = voices["sleepy"](0.0)
    x = np.concatenate([np.zeros(RATE // 2, np.float32), tone(0.5), np.zeros(RATE, np.float32)])
    ctl, drv = make(voice, x, estimator, threshold_db=-40.0, gate_hold_ms=200.0, block_ms=20)
    ctl.start()
    drv.run()
    st = ctl.status()
    block_s = st.latency["block_ms"] / 1000
    loud_blocks = round(0.5 / block_s)
    hold_blocks = round(0.2 / block_s)
    assert st.gated_blocks > 0 and st.gated_blocks + st.voice_blocks == st.blocks
    # the voice ran for the loud part plus the hold, not for the silence
    assert loud_blocks + hold_blocks - 2 <= voice.calls <= loud_blocks + hold_blocks + 2
    out = drv.output
    lag = round(st.latency["algorithmic_ms"] * RATE / 1000)
    assert np.max(np.abs(out[: lag + RATE // 2 - 2000])) < 1e-6  # gated silence is silence


def test_bypass_plays_the_dry_input_at_the_same_latency_without_calling_the_voice(voices, estimator):
    voice = voices["sleepy"](0.0)
    x = tone(1.0)
    ctl, drv = make(voice, x, estimator, bypass=True, threshold_db=-120.0)
    ctl.start()
    out = drv.run()
    lag = round(ctl.status().latency["algorithmic_ms"] * RATE / 1000)
    assert voice.calls == 0
    seg = slice(RATE // 10, RATE - RATE // 10)
    assert np.max(np.abs(out[lag:][seg] - x[seg])) < 1e-4


def test_failing_voice_falls_back_and_reports_the_error(voices, estimator):
    ctl, drv = make(voices["failing"](), tone(1.0), estimator, threshold_db=-120.0, fallback="dry")
    ctl.start()
    out = drv.run()
    st = ctl.status()
    assert "boom" in st.last_error and st.fallback_blocks > 0
    assert np.max(np.abs(out)) > 0.25  # the dry input kept playing


def test_hot_update_applies_at_the_next_block_with_a_ramp(voices, estimator):
    voice = voices["identity"]()
    x = tone(1.0, level=0.5)
    ctl, drv = make(voice, x, estimator, threshold_db=-120.0)
    ctl.start()
    worker = ctl._worker
    seen = []

    def on_block():
        seen.append(worker.counters.out_level_db)
        if worker.counters.blocks == 25:
            ctl.update(output_gain_db=-6.0)

    worker.on_block = on_block
    out = drv.run()
    assert ctl.params.output_gain_db == -6.0 and worker.params is ctl.params
    late = out[int(0.8 * RATE) : int(0.9 * RATE)]
    assert np.max(np.abs(late)) == pytest.approx(0.5 * 10 ** (-6 / 20), rel=0.02)
    assert np.max(np.abs(np.diff(out))) <= 1.05 * np.max(np.abs(np.diff(x)))  # ramp, no click


def test_update_validates_and_refuses_unknown_names(voices, estimator):
    ctl, _ = make(voices["identity"](), tone(0.1), estimator)
    with pytest.raises(ParameterError, match="transpose"):
        ctl.update(transpose=100)
    with pytest.raises(ParameterError, match="unknown live parameter"):
        ctl.update(pitch_shift=3)
    assert ctl.params == LiveParams()


def test_stream_field_change_restarts_with_new_block(voices, estimator):
    ctl, drv = make(voices["identity"](), tone(0.5), estimator, threshold_db=-120.0)
    ctl.start()
    old_worker = ctl._worker
    ctl.update(block_ms=40)
    assert ctl.running and ctl._worker is not old_worker
    assert ctl.status().latency["block_ms"] == pytest.approx(40, abs=3)
    ctl.update(transpose=2)  # hot: same worker
    assert ctl._worker.params.transpose == 2


def test_voice_swap_loads_off_thread_and_switches_at_a_block(voices, estimator):
    first, second = voices["identity"](), voices["filter"]()
    gate = threading.Event()

    def loader(spec):
        assert spec == VoiceSpec("sovits", "m.pth", "c.json")
        gate.wait(5)
        return second

    x = tone(2.0)
    drv = VirtualClockDriver(x, RATE)
    ctl = Controller(driver=drv, params=LiveParams(threshold_db=-120.0), voice=first, voice_loader=loader, estimator=estimator)
    ctl.start()
    fut = ctl.load_voice(("m.pth", "c.json"))
    assert ctl.status().loading and ctl.voice is first
    gate.set()
    assert fut.result(5) is second
    assert ctl._worker.pending_pipeline is not None
    out = drv.run()
    assert ctl.voice is second and ctl._worker.pipeline.voice is second
    assert np.max(np.abs(np.diff(out))) < 0.1  # no click at the switch
    assert np.max(np.abs(out[RATE : RATE + 4410])) > 0.1


def test_voice_specs_and_loader_errors(voices, estimator, tmp_path):
    assert parse_voice_spec("world") == VoiceSpec("world")
    assert parse_voice_spec({"model_path": "a", "config_path": "b"}).kind == "sovits"
    with pytest.raises(ParameterError):
        parse_voice_spec(42)
    with pytest.raises(ParameterError, match="unknown voice spec"):
        parse_voice_spec({"model": "a"})
    ctl = Controller(driver=VirtualClockDriver(tone(0.1), RATE), voice=voices["identity"](), estimator=estimator)
    fut = ctl.load_voice((str(tmp_path / "missing.pth"), str(tmp_path / "c.json")))
    with pytest.raises(ModelFileError, match="not found"):
        fut.result(5)
    assert "not found" in ctl.status().last_error


def test_recording_is_finalized_atomically(voices, estimator, tmp_path):
    ctl, drv = make(voices["identity"](), tone(1.0), estimator, threshold_db=-120.0)
    with pytest.raises(RtsvcError, match="not running"):
        ctl.start_recording(tmp_path / "x.wav")
    ctl.start()
    target = tmp_path / "take.wav"
    ctl.start_recording(target)
    assert not target.exists()
    drv.run()
    assert ctl.status().recording == str(target)
    assert ctl.stop_recording() == target
    data, sr = sf.read(target)
    prefill = ctl._worker.pipeline.layout.prefill_out  # the output stream starts with the prefill
    played = len(drv.output) - prefill  # the worker is ahead of the player by the ring's content
    assert sr == RATE and played <= len(data) <= played + prefill
    assert np.allclose(data[:played], drv.output[prefill:], atol=1e-6) and np.max(np.abs(data)) > 0.25
    assert not list(tmp_path.glob(".*.part"))
    with pytest.raises(RtsvcError, match=".mp3"):
        ctl.start_recording(tmp_path / "x.mp3")


def test_monitor_gets_its_own_gain(voices, estimator):
    x = tone(1.0, level=0.5)
    ctl, drv = make(voices["identity"](), x, estimator, threshold_db=-120.0, monitor_device="virtual", monitor_gain_db=-20.0)
    ctl.start()
    drv.run()
    seg = slice(RATE // 2, RATE)
    assert np.max(np.abs(drv.monitor[seg])) == pytest.approx(0.05, rel=0.03)
    assert np.max(np.abs(drv.output[seg])) == pytest.approx(0.5, rel=0.03)


def test_presets_save_load_list_rename_delete(voices, estimator):
    ctl, _ = make(voices["identity"](), tone(0.1), estimator)
    ctl.update(transpose=4, formant=1.5, speaker_mix=(("a", 1.0),))
    ctl.save_preset("alto")
    ctl.update(transpose=0)
    assert ctl.list_presets() == ["alto"]
    assert ctl.load_preset("alto").transpose == 4 and ctl.params.speaker_mix == (("a", 1.0),)
    ctl.rename_preset("alto", "alto 2")
    assert ctl.list_presets() == ["alto 2"]
    with pytest.raises(ParameterError, match="saved presets: alto 2"):
        ctl.load_preset("alto")
    with pytest.raises(ParameterError, match="not allowed"):
        ctl.save_preset("../evil")
    ctl.delete_preset("alto 2")
    assert ctl.list_presets() == []


def test_subscribe_delivers_status_at_the_rate_and_unsubscribes(voices, estimator):
    ctl, _ = make(voices["identity"](), tone(0.1), estimator)
    got = []
    ev = threading.Event()

    def cb(st):
        got.append(st)
        if len(got) >= 3:
            ev.set()

    unsub = ctl.subscribe(cb, rate_hz=50)
    assert ev.wait(5)
    unsub()
    n = len(got)
    threading.Event().wait(0.2)
    assert len(got) <= n + 1 and got[0].running is False
    with pytest.raises(ParameterError, match="rate_hz"):
        ctl.subscribe(cb, rate_hz=1000)
    ctl.close()


def test_probe_measures_a_virtual_loopback(voices, estimator):
    """Output routed back to the input with a 1000-sample cable: the chirp comes back after the
    cable delay (device round trip) and again after the engine's latency (chain)."""
    loop = 1000
    drv = VirtualClockDriver(np.zeros(RATE, np.float32), RATE, loopback=loop)
    params = LiveParams(bypass=True, threshold_db=-120.0, output_gain_db=-6.0)
    ctl = Controller(driver=drv, params=params, voice=voices["identity"](), estimator=estimator)
    ctl.start()
    worker = ctl._worker
    probe = arm_probe(worker, RATE)
    drv.run()
    lat = ctl.status().latency
    m = analyse(worker, probe, RATE, RATE, lat["algorithmic_ms"], 0.0)
    assert m.device_round_trip_ms == pytest.approx(1000 * loop / RATE, abs=0.1)
    assert m.chain_ms == pytest.approx(lat["algorithmic_ms"] + 1000 * loop / RATE, abs=0.1)


def test_failing_pitch_estimator_falls_back_instead_of_losing_blocks(voices):
    def broken(audio, sample_rate, hop, method, threshold):
        raise RtsvcError("fcpe weights not found.")

    ctl, drv = make(voices["identity"](), tone(1.0), broken, threshold_db=-120.0, fallback="dry")
    ctl.start()
    out = drv.run()
    st = ctl.status()
    assert "fcpe weights not found" in st.last_error and st.late_blocks == 0
    assert st.blocks > 40 and np.max(np.abs(out)) > 0.25


def test_pitch_estimator_is_warmed_up_before_the_stream_and_on_a_method_change(voices):
    calls = []

    def counting(audio, sample_rate, hop, method, threshold):
        calls.append((len(audio), method, threading.current_thread().name))
        return np.zeros(len(audio) // hop, np.float32)

    ctl, drv = make(voices["identity"](), tone(0.2), counting, threshold_db=-120.0, f0_method="dio")
    ctl.start()  # warm-up call in this thread, before any block was converted
    assert calls and calls[0][1] == "dio" and ctl.status().blocks == 0
    assert calls[0][2] == threading.current_thread().name
    ctl.update(f0_method="harvest")
    assert calls[-1][1] == "harvest" and ctl.status().blocks == 0
    drv.run()
    assert ctl.status().blocks > 5
    ctl.stop()


def test_worker_start_freezes_the_heap_so_full_collections_stay_short(voices, estimator):
    import gc

    gc.unfreeze()
    ctl = Controller(driver=VirtualClockDriver(tone(0.1), RATE, realtime=True), params=LiveParams(),
                     voice=voices["identity"](), estimator=estimator)
    ctl.start()
    try:
        assert gc.get_freeze_count() > 1000  # torch, numpy and the voice are out of the collector's way
    finally:
        ctl.stop()


def test_voice_and_pitch_warm_up_use_the_stream_shapes_off_the_worker(voices):
    """Before the first block (and, for a swap, in the loader thread) the voice converts a
    silent window of the live layout's size and the estimator sees the live segment length, so
    GPU kernels and CUDA graphs are ready when audio flows."""
    from rtsvc.engine.pipeline import PITCH_WARM_UP_RUNS

    seen = []

    def recording(audio, sample_rate, hop, method, threshold):
        seen.append((len(audio), threading.current_thread().name))
        return np.zeros(len(audio) // hop, np.float32)

    class WarmedVoice(voices["identity"]):
        def __init__(self):
            super().__init__()
            self.warm = []

        def warm_up(self, window_samples, out_samples, skip_tail=0):
            self.warm.append((window_samples, out_samples, skip_tail, threading.current_thread().name))

    first, second = WarmedVoice(), WarmedVoice()
    drv = VirtualClockDriver(tone(1.0), RATE)
    ctl = Controller(driver=drv, params=LiveParams(threshold_db=-120.0, f0_method="dio"), voice=first,
                     voice_loader=lambda spec: second, estimator=recording)
    ctl.start()
    layout = ctl._worker.pipeline.layout
    me = threading.current_thread().name
    assert first.warm == [(layout.window_v, layout.needed_v, layout.right_v, me)]
    warm_lengths = {n for n, _ in seen}
    assert len(seen) == PITCH_WARM_UP_RUNS and all(name == me for _, name in seen) and ctl.status().blocks == 0
    drv.run()
    block_lengths = {n for n, name in seen[PITCH_WARM_UP_RUNS:]}
    assert block_lengths == warm_lengths  # the warm-up used the segment every block uses
    ctl.load_voice(("m.pth", "c.json")).result(5)
    assert len(second.warm) == 1 and second.warm[0][3] == "rtsvc-voice-loader"
    assert ctl._worker.pending_pipeline is not None and ctl._worker.pending_pipeline.voice is second
    ctl.stop()


def test_status_reports_the_worst_block_since_the_start(voices, estimator):
    ctl, drv = make(voices["identity"](), tone(0.5), estimator, threshold_db=-120.0)
    ctl.start()
    drv.run()
    st = ctl.status()
    ctl.stop()
    assert st.worker_ms_worst >= st.worker_ms_max > 0


def test_each_window_gets_what_begin_window_started_for_its_audio_before_pitch(voices):
    """The engine starts a voice's early work (a GPU voice's content encoder) before it
    estimates the window's pitch and hands the result to that window's convert_window."""
    events = []

    def recording(audio, sample_rate, hop, method, threshold):
        events.append(("pitch",))
        return np.zeros(len(audio) // hop, np.float32)

    class EarlyVoice(voices["identity"]):
        def __init__(self):
            super().__init__(needs_16k=True)
            self.mismatched = 0

        def begin_window(self, audio, audio_16k):
            events.append(("begin", len(audio_16k)))
            return audio.copy(), audio_16k.copy()

        def convert_window(self, window, params):
            audio, audio_16k = window.early
            self.mismatched += not (np.array_equal(audio, window.audio) and np.array_equal(audio_16k, window.audio_16k))
            events.append(("convert",))
            return super().convert_window(window, params)

    voice = EarlyVoice()
    ctl, drv = make(voice, tone(1.0), recording, threshold_db=-120.0, f0_method="dio")
    ctl.start()
    events.clear()  # the pitch warm-up
    drv.run()
    blocks = ctl.status().blocks
    ctl.stop()
    assert blocks > 20 and voice.mismatched == 0
    assert events[:3 * blocks] == [("begin", events[0][1]), ("pitch",), ("convert",)] * blocks
    assert events[0][1] > 0

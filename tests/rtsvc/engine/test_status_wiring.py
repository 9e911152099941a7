"""Controller status additions: pitch for the panel, latency preview while stopped, errors that
clear once the voice works again, the subscription schedule, and voice specs."""

from __future__ import annotations

import numpy as np
import pytest

from rtsvc.engine.controller import Controller
from rtsvc.engine.drivers import VirtualClockDriver
from rtsvc.engine.params import LiveParams
from rtsvc.engine.status import ErrorLog, next_due
from rtsvc.engine.voices import VoiceSpec, parse_voice_spec
from rtsvc.errors import ParameterError

RATE = 44100


def tone(seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_status_reports_the_workers_pitch_for_the_panel(voices, estimator):
    ctl = Controller(driver=VirtualClockDriver(tone(0.2), RATE), params=LiveParams(threshold_db=-120.0),
                     voice=voices["identity"](), estimator=estimator)
    stopped = ctl.status()
    assert stopped.extra["input_f0_hz"] == 0.0 and stopped.extra["output_f0_hz"] == 0.0
    ctl.start()
    worker = ctl._worker
    worker.last_input_f0_hz, worker.last_output_f0_hz = 220.0, 293.66  # as the worker sets them per block
    st = ctl.status()
    assert st.extra == {"input_f0_hz": 220.0, "output_f0_hz": 293.66}
    assert st.to_dict()["extra"]["output_f0_hz"] == 293.66


def test_latency_preview_while_stopped_matches_the_running_latency(voices, estimator):
    drv = VirtualClockDriver(tone(0.3), RATE, period=256)
    ctl = Controller(driver=drv, params=LiveParams(threshold_db=-120.0, block_ms=40), voice=voices["identity"](),
                     estimator=estimator)
    assert ctl.status().latency_preview["block_ms"] == pytest.approx(40, abs=3)
    ctl.update(block_ms=80)
    preview = ctl.status().latency_preview
    assert preview["block_ms"] == pytest.approx(80, abs=3) and preview["device_input_ms"] == 0.0
    assert "latency" in ctl.status().line()
    ctl.start()
    running = ctl.status()
    assert running.latency_preview is None
    # the same layout; the running stream adds one device period (256 frames) of input granularity
    assert preview["algorithmic_ms"] + running.latency["period_ms"] == pytest.approx(running.latency["algorithmic_ms"], abs=0.05)
    ctl.stop()
    assert ctl.status().latency_preview == preview


def test_latency_preview_for_the_builtin_voice_and_unknown_for_an_unloaded_sovits_voice():
    ctl = Controller(driver=VirtualClockDriver(tone(0.1), RATE))  # nothing loaded: start() loads "world"
    assert ctl.voice_spec == VoiceSpec("world") and ctl.status().latency_preview["algorithmic_ms"] > 20
    never = Controller(driver=VirtualClockDriver(tone(0.1), RATE), voice_loader=lambda spec: None)
    never._voice_spec = VoiceSpec("sovits", "m.pth", "c.json")  # as after a load that is still running
    assert never.status().latency_preview is None


def test_last_error_clears_once_a_later_block_succeeds_and_errors_are_counted(voices, estimator):
    class FlakyVoice(voices["identity"]):
        """Identity voice whose first two windows raise."""

        calls = 0

        def convert_window(self, window, params):
            self.calls += 1
            if self.calls <= 2:
                raise RuntimeError(f"glitch {self.calls}")
            return super().convert_window(window, params)

    voice = FlakyVoice()
    drv = VirtualClockDriver(tone(2.5), RATE)
    ctl = Controller(driver=drv, params=LiveParams(threshold_db=-120.0, fallback="dry"), voice=voice, estimator=estimator)
    ctl.start()
    seen = []
    worker = ctl._worker
    hook = worker.on_block

    def on_block():
        hook()
        seen.append(ctl.status().last_error)

    worker.on_block = on_block
    drv.run()
    st = ctl.status()
    assert "RuntimeError: glitch 1" in seen and "RuntimeError: glitch 2" in seen  # shown while the voice was failing
    assert st.last_error is None and st.error_count == 2 and st.last_error_time is not None
    assert seen[-1] is None and st.voice_blocks > 0


def test_error_log_keeps_an_error_until_a_voice_block_succeeds():
    class FakeWorker:
        def __init__(self):
            self.last_error = None
            self.counters = type("C", (), {"voice_blocks": 0})()

    log, w = ErrorLog(), FakeWorker()
    log.observe(w)
    w.last_error = "boom"
    log.observe(w)
    assert log.current == "boom" and log.count == 1 and w.last_error is None
    log.observe(w)  # a fallback block: no voice block yet
    assert log.current == "boom"
    w.counters.voice_blocks += 1
    log.observe(w)
    assert log.current is None and log.count == 1
    log.record("load failed")  # stopped: stays until a voice block succeeds on the next stream
    w2 = FakeWorker()
    log.observe(w2)
    assert log.current == "load failed"
    w2.counters.voice_blocks = 1
    log.observe(w2)
    assert log.current is None and log.count == 2


def count_pushes(rate_hz: float, seconds: float, schedule, stall_at: float | None = None) -> int:
    """Simulate the status thread: polls every 10 ms plus 0-6 ms of scheduling jitter."""
    rng = np.random.default_rng(0)
    now, due, pushes = 0.0, None, 0
    while now < seconds:
        if due is None or now >= due:
            due = schedule(due, now, rate_hz)
            pushes += 1
        now += 0.01 + rng.uniform(0, 0.006)
        if stall_at is not None and now >= stall_at:
            now, stall_at = now + 1.0, None  # the thread was stalled for a second
    return pushes


@pytest.mark.parametrize("rate_hz", [0.5, 10.0, 15.0, 20.0, 60.0])
def test_subscription_schedule_keeps_the_exact_rate(rate_hz):
    seconds = 100.0
    assert abs(count_pushes(rate_hz, seconds, next_due) - rate_hz * seconds) <= 1

    def drifting(due, now, rate):  # the old schedule: next = now + period
        return now + 1.0 / rate

    if rate_hz >= 10:
        assert count_pushes(rate_hz, seconds, drifting) < 0.95 * rate_hz * seconds  # what the fix removes


def test_subscription_schedule_skips_missed_pushes_after_a_stall():
    normal = count_pushes(20.0, 10.0, next_due)
    stalled = count_pushes(20.0, 10.0, next_due, stall_at=5.0)
    assert normal - 21 <= stalled <= normal - 18  # about 20 pushes lost in the stall, no burst after it


def test_voice_spec_forms_and_refusals(tmp_path):
    spec = parse_voice_spec({"model_path": "m.pth", "config_path": "c.json", "backend": "onnxruntime", "threads": 2,
                             "encoder_path": "e.pt", "cluster_path": "k.pt", "onnx_path": "m.onnx"}, device="cuda")
    assert spec.kind == "sovits" and spec.device == "cuda" and spec.backend == "onnxruntime" and spec.threads == 2
    assert parse_voice_spec(spec.to_dict()) == spec
    assert parse_voice_spec(("m.pth", tmp_path / "c.json")).config_path == str(tmp_path / "c.json")
    assert VoiceSpec("sovits", "m", "c", encoder_path=tmp_path).encoder_path == str(tmp_path)
    for bad, message in (({"model_path": "m", "config_path": "c", "backend": "tensorrt"}, "backend must be one of"),
                         ({"model_path": "m", "config_path": "c", "threads": -1}, "threads must be an integer"),
                         ({"model_path": "m", "config_path": "c", "threads": True}, "threads must be an integer"),
                         ({"model_path": "m"}, "needs both model_path and config_path"),
                         ({"model_path": "m", "config_path": "c", "feature_retrieval": "yes"}, "feature_retrieval"),
                         ({"model_path": "m", "config_path": "c", "onnx": "x"}, "unknown voice spec key"),
                         ({"kind": "rvc"}, "voice kind must be one of")):
        with pytest.raises(ParameterError, match=message):
            parse_voice_spec(bad)

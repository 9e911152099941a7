"""End to end through a real audio server: JACK (dummy backend) started by the test itself.

    player (sounddevice OutputStream) --> engine input      (rtsvc Controller, SoundDeviceDriver,
              \\                          engine output     built-in WORLD voice, +5 semitones)
               \\--> recorder ch0 (ref)        \\--> recorder ch1 (converted)

All streams live in this process (one PortAudio JACK client; ports wired with jack_connect).
Checks: the pitch shift; no late or dropped blocks after the first second; the measured delay
between the reference and the converted channel (best match of their 10 ms RMS envelopes over
five tone bursts) equals the reported latency (algorithmic + device input + device output)
within LATENCY_MARGIN_MS.

The JACK server gets a unique name (JACK_DEFAULT_SERVER) and is stopped afterwards. If it
cannot start the test skips with the reason - unless RTSVC_REQUIRE_JACK=1 (CI), where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
import uuid

import numpy as np
import pytest

from rtsvc._pyworld import import_pyworld
from rtsvc.engine.controller import Controller
from rtsvc.engine.params import LiveParams
from rtsvc.engine.sd_driver import SoundDeviceDriver

RATE = 48000
PERIOD = 256
SEMITONES = 5
#: A block this 2-core machine sustains with the WORLD voice even when busy, and a generous
#: processing allowance (latency is not what this test is about).
BLOCK_MS = 200.0
PREFILL_MS = 400.0
#: Measured vs reported latency: one JACK period each way for the in-process feedback
#: connections, plus onset detection (envelope shapes of input and converted voice differ a
#: little) and SOLA (<= search window).
LATENCY_MARGIN_MS = 2 * 1000 * PERIOD / RATE + 6.0
#: Envelope rate for the latency measurement (Hz).
ENVELOPE_RATE = 2000


def _skip_or_fail(msg: str) -> None:
    if os.environ.get("RTSVC_REQUIRE_JACK") == "1":
        pytest.fail(f"{msg} (RTSVC_REQUIRE_JACK=1: JACK is required here)")
    pytest.skip(msg)


def _ports(env: dict) -> set[str]:
    res = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True, timeout=10)
    return set(res.stdout.split()) if res.returncode == 0 else set()


def _connect(env: dict, src: str, dst: str) -> None:
    subprocess.run(["jack_connect", src, dst], env=env, check=True, timeout=10)


@pytest.fixture
def jack(monkeypatch):
    """A private jackd (dummy backend); yields the environment for jack_* tools."""
    for tool in ("jackd", "jack_lsp", "jack_connect"):
        if shutil.which(tool) is None:
            _skip_or_fail(f"{tool} is not installed (Debian: apt install jackd2)")
    name = f"rtsvc_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    proc = subprocess.Popen(["jackd", "--no-realtime", "-d", "dummy", "-r", str(RATE), "-p", str(PERIOD)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 10
    while "system:playback_1" not in _ports(env):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0].decode(errors="replace")[-500:]
            _skip_or_fail(f"jackd could not start: {out.strip()}")
        time.sleep(0.1)
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    import sounddevice as sd

    sd._terminate()  # re-scan host APIs now that the server runs
    sd._initialize()
    try:
        yield env
    finally:
        sd._terminate()
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        os.environ.pop("JACK_DEFAULT_SERVER", None)
        sd._initialize()


def bursts(rate: int) -> np.ndarray:
    """0.5 s silence, five 0.7 s harmonic bursts (200 Hz) with 0.3 s gaps, 0.5 s silence."""
    n = int(6.0 * rate)
    t = np.arange(n) / rate
    ph = 2 * np.pi * 200 * t
    tone = 0.25 * np.sin(ph) + 0.12 * np.sin(2 * ph) + 0.06 * np.sin(3 * ph)
    env = np.zeros(n)
    for k in range(5):
        a = int((0.5 + k) * rate)
        env[a : a + int(0.7 * rate)] = 1.0
    ramp = np.hanning(int(0.004 * rate))
    env = np.convolve(env, ramp / ramp.sum(), mode="same")
    return (tone * env).astype(np.float32)


def envelope(x: np.ndarray, rate: int) -> np.ndarray:
    """10 ms RMS envelope at 2 kHz (0.5 ms steps); the window spans pitch periods, so it does
    not ripple with the waveform."""
    win = int(0.01 * rate)
    env = np.sqrt(np.convolve(x.astype(np.float64) ** 2, np.ones(win) / win, mode="same"))
    return env[:: rate // ENVELOPE_RATE]


def envelope_lag_ms(ref: np.ndarray, out: np.ndarray, rate: int, max_ms: float) -> float:
    """Delay of ``out`` behind ``ref`` (ms) where their burst envelopes correlate best, searched
    in [0, max_ms]. Onset-shape differences (WORLD needs a few frames to call a burst voiced)
    average out over the five bursts."""
    er, eo = envelope(ref, rate), envelope(out, rate)
    er, eo = er - er.mean(), eo - eo.mean()
    lags = range(0, int(max_ms * ENVELOPE_RATE / 1000))
    n = len(er) - len(lags)
    best = max(lags, key=lambda k: float(np.dot(er[:n], eo[k : k + n])))
    return 1000.0 * best / ENVELOPE_RATE


@pytest.mark.timeout(180, method="thread")
def test_live_engine_through_jack(jack):
    import sounddevice as sd

    apis = [a["name"] for a in sd.query_hostapis()]
    assert any("JACK" in a for a in apis), f"PortAudio does not list JACK: {apis}"
    signal = bursts(RATE)
    rec = np.zeros((len(signal) + 2 * RATE, 2), np.float32)
    pos = {"play": 0, "rec": 0}

    def play_cb(outdata, frames, t, status):
        i = pos["play"]
        chunk = signal[i : i + frames]
        outdata[: len(chunk), 0] = chunk
        outdata[len(chunk) :, 0] = 0.0
        pos["play"] = i + frames

    def rec_cb(indata, frames, t, status):
        i = pos["rec"]
        n = min(frames, len(rec) - i)
        rec[i : i + n] = indata[:n]
        pos["rec"] = i + n

    before = _ports(jack)
    recorder = sd.InputStream(device=None, channels=2, samplerate=RATE, dtype="float32", callback=rec_cb)
    rec_ports = sorted(_ports(jack) - before)
    params = LiveParams(host_api="JACK", transpose=SEMITONES, f0_method="dio", threshold_db=-120.0,
                        block_ms=BLOCK_MS, extra_context_ms=30.0, prefill_ms=PREFILL_MS, sample_rate=RATE)
    ctl = Controller(driver=SoundDeviceDriver(), params=params)
    player = None
    before = _ports(jack)
    ctl.start()
    try:
        engine_ports = sorted(_ports(jack) - before)
        before = _ports(jack)
        player = sd.OutputStream(device=None, channels=1, samplerate=RATE, dtype="float32", callback=play_cb)
        player_ports = sorted(_ports(jack) - before)
        assert len(rec_ports) == 2 and len(player_ports) == 1, (rec_ports, engine_ports, player_ports)
        engine_in = [p for p in engine_ports if ":in" in p]
        engine_out = [p for p in engine_ports if ":out" in p]
        assert len(engine_in) == 1 and engine_out, engine_ports
        _connect(jack, player_ports[0], engine_in[0])
        _connect(jack, player_ports[0], rec_ports[0])
        _connect(jack, engine_out[0], rec_ports[1])
        recorder.start()
        player.start()
        time.sleep(1.0)
        early = ctl.status()
        latency_s = early.latency["total_ms"] / 1000
        time.sleep(len(signal) / RATE - 1.0 + latency_s + 0.3)
        player.stop()
        recorder.stop()
        st = ctl.status()
    finally:
        ctl.close()
        recorder.close()
        if player is not None:
            player.close()
    assert st.late_blocks == early.late_blocks and st.dropped_blocks == early.dropped_blocks, (
        f"late/dropped blocks after the first second: {early.late_blocks}->{st.late_blocks}, "
        f"{early.dropped_blocks}->{st.dropped_blocks} (worker p95 {st.worker_ms_p95:.0f} ms per {BLOCK_MS:.0f} ms block)")
    assert st.voice_blocks > 10 and st.last_error is None
    ref, out = rec[: pos["rec"], 0], rec[: pos["rec"], 1]
    assert np.max(np.abs(ref)) > 0.2 and np.max(np.abs(out)) > 0.05, "signal did not flow through JACK"
    # latency: where the burst envelopes of the converted and the reference channel line up
    reported = st.latency["total_ms"]
    measured = envelope_lag_ms(ref, out, RATE, max_ms=2 * reported + 200)
    assert abs(measured - reported) <= LATENCY_MARGIN_MS, f"measured {measured:.1f} ms vs reported {reported:.1f} ms"
    # pitch: +5 semitones on the bursts
    pw = import_pyworld()
    lag = round(measured * RATE / 1000)
    f_ref, _ = pw.dio(ref[: len(ref) - lag].astype(np.float64), RATE, frame_period=10)
    f_out, _ = pw.dio(out[lag:].astype(np.float64), RATE, frame_period=10)
    n = min(len(f_ref), len(f_out))
    voiced = (f_ref[:n] > 0) & (f_out[:n] > 0)
    assert voiced.sum() > 100
    ratio = float(np.median(f_out[:n][voiced] / f_ref[:n][voiced]))
    assert abs(ratio / 2 ** (SEMITONES / 12) - 1) < 0.02, f"f0 ratio {ratio:.3f}"


def _wire_loopback_when_engine_appears(env: dict, before: set[str], done: threading.Event) -> None:
    """Connect the engine's first output port to its input port once they exist."""
    while not done.is_set():
        new = sorted(_ports(env) - before)
        ins = [p for p in new if ":in" in p]
        outs = [p for p in new if ":out" in p]
        if ins and outs:
            _connect(env, outs[0], ins[0])
            return
        time.sleep(0.05)


@pytest.mark.timeout(120, method="thread")
def test_cli_devices_live_and_latency_through_jack(jack, tmp_path, capsys):
    from rtsvc import cli

    assert cli.main(["devices"]) == 0
    assert "JACK Audio Connection Kit / system" in capsys.readouterr().out
    take = tmp_path / "take.wav"
    assert cli.main(["live", "--host-api", "JACK", "--f0-method", "dio", "--block-ms", "100", "--prefill-ms", "200",
                     "--duration", "1.5", "--record", str(take)]) == 0
    err = capsys.readouterr().err
    assert "latency: algorithmic" in err and f"recorded {take}" in err
    assert take.is_file() and not list(tmp_path.glob(".*.part"))
    # rtsvc latency with the engine's output wired back to its input
    done = threading.Event()
    wire = threading.Thread(target=_wire_loopback_when_engine_appears, args=(jack, _ports(jack), done), daemon=True)
    wire.start()
    try:
        rc = cli.main(["latency", "--host-api", "JACK", "--block-ms", "20", "--prefill-ms", "30", "--listen", "1.5"])
    finally:
        done.set()
        wire.join(5)
    out = capsys.readouterr()
    assert rc == 0, out.err
    reported = float(re.search(r"= ([\d.]+) ms", out.out).group(1))
    measured = float(re.search(r"measured: chain ([\d.]+) ms", out.out).group(1))
    assert abs(measured - reported) <= LATENCY_MARGIN_MS, out.out

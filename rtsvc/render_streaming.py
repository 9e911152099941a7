"""``render --streaming``: a file through the live engine, clocked virtually (what live mode plays).

The file is fed to :class:`rtsvc.engine.controller.Controller` by
:class:`rtsvc.engine.drivers.VirtualClockDriver` in callback-sized periods, with the live
parameters (a saved preset, or the live defaults) plus the voice settings given on the command
line. The engine's output is shifted back by its algorithmic latency so that it lines up with the
input, then trimmed to the input's length::

    output[j] = engine_out[j + latency]      j = 0 .. ceil(n * out_rate / in_rate) - 1

The input is held in memory (the engine's own buffers are small); the output is written like any
other render (atomically, wav/flac).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtsvc.engine.params import LiveParams
from rtsvc.params import VoiceParams
from rtsvc.render import RenderResult
from rtsvc.render_io import AtomicWriter, open_source
from rtsvc.voice import Voice

#: Silence fed after the file so the engine's latency drains (plus 4 blocks).
TAIL_SECONDS = 1.0
#: Voice fields copied from the command line into the live parameters.
VOICE_FIELDS = ("transpose", "formant", "speaker", "speaker_mix", "cluster_ratio", "noise_scale", "auto_f0",
                "f0_method", "f0_threshold", "deterministic")


def live_params_for(params: VoiceParams, base: LiveParams | None = None) -> LiveParams:
    """The live settings (``base``, default LiveParams()) with the render's voice settings."""
    return (base or LiveParams()).with_changes(**{name: getattr(params, name) for name in VOICE_FIELDS})


def stream_convert(voice: Voice, audio: np.ndarray, sample_rate: int, live: LiveParams,
                   out_rate: int | None = None, estimator=None) -> np.ndarray:
    """Run (n,) float32 mono at ``sample_rate`` through the engine; returns the aligned output,
    (ceil(n * out_rate / sample_rate),) float32 at ``out_rate`` (default: the voice's rate).
    estimator: the engine's f0 estimator (default: the live default, rtsvc.pitch)."""
    from rtsvc.engine.controller import Controller
    from rtsvc.engine.drivers import VirtualClockDriver

    rate_out = int(out_rate or voice.sample_rate)
    driver = VirtualClockDriver(audio, sample_rate, output_rate=rate_out,
                                tail_seconds=TAIL_SECONDS + 4 * live.block_ms / 1000.0)
    ctl = Controller(driver=driver, params=live, voice=voice, estimator=estimator)
    ctl.start()
    try:
        out = driver.run()
        status = ctl.status()
    finally:
        ctl.stop()
    lag = round(status.latency["algorithmic_ms"] * rate_out / 1000.0) if status.latency else 0
    n = -(-len(audio) * rate_out // sample_rate)
    y = np.zeros(n, dtype=np.float32)
    seg = out[lag : lag + n]
    y[: len(seg)] = seg
    return y


def render_file_streaming(voice: Voice, source: Path, output: Path, params: VoiceParams,
                          live: LiveParams | None = None, out_rate: int | None = None,
                          estimator=None) -> RenderResult:
    """Convert ``source`` through the live engine and write ``output`` atomically."""
    import time

    t0 = time.perf_counter()
    src = open_source(source, long_file_seconds=float("inf"))
    try:
        audio = src.read(0, src.n_samples)
    finally:
        src.close()
    result = RenderResult(Path(source), None, src.duration, notes=list(src.notes) + ["streamed through the live engine"])
    rate = int(out_rate or voice.sample_rate)
    y = stream_convert(voice, audio, src.sample_rate, live_params_for(params, live), rate, estimator)
    with AtomicWriter(output, rate, rate) as writer:
        writer.write(y)
    result.output = Path(output)
    result.wall_seconds = time.perf_counter() - t0
    return result

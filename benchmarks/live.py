"""Live-engine benchmark: worker time per block, RTF, latency, smallest sustainable block.

For each voice and block size the engine runs on the virtual clock in stepped mode over a
speech-like test signal (so worker times are measured without a sound card), then the smallest
block whose p95 worker time fits in the block is re-run on the wall clock to confirm that it
produces no late blocks. Prints a table; asserts nothing.

    python benchmarks/live.py                        # built-in voice (dio, fcpe) + full-size SoVITS rows
    python benchmarks/live.py --voices world --blocks 20 50 --f0 dio
    python benchmarks/live.py --voices sovits --sovits-blocks 100 200 --threads 2
    python benchmarks/live.py -m model.pth -c config.json --device cuda
    python benchmarks/live.py --voices world --target-latency-ms 40 --period 256   # the #4 target

Target check (``--target-latency-ms``): for each small block (10, 15, 20 ms) and pitch estimator,
the SOLA search and crossfade are set to 2 and 3 ms and the processing allowance to whatever
brings the algorithmic latency to the target; the engine then runs ``--target-seconds`` on the
wall clock and the late/dropped blocks after the warm-up are counted (0 and 0 = sustained).

SoVITS rows (``--voices sovits``): a full-size random-weight so-vits-svc 4.1 voice (template
sizes: hidden 192, filter 768, 6 layers, upsampling 8-8-2-2-2 from 512 channels, ssl_dim 768,
loudness embedding, 44.1 kHz / hop 512), a full-size ContentVec-shaped encoder (vec768l12) and a
full-size FCPE network, built by benchmarks/onnx.py and fullsize.py; on the CPU once with every
network in torch and once in ONNX Runtime (FCPE's mel front end stays torch in both), with
``--device cuda`` in torch fp32 / fp16, eager / CUDA graphs and onnxruntime when it has the CUDA
provider, side by side per block size (``--variants``: build only these rows). The random FCPE
gives random pitch: this measures speed only. ``--sovits-target-ms 50``: the SoVITS target check (:func:`sovits_target_check`).

Columns: worker p50/p95/max (ms per block; the engine's status keeps the last 512 blocks for
these, while "worst" and the blocks over the allowance cover the whole run), RTF (p50 / block), algorithmic latency (ms) with a
10 ms processing allowance, and the split of one block's time into pitch estimation and the
voice's convert_window (measured separately). The wall-clock check sets the allowance to 1.25 x the
worst worker time and counts late/dropped blocks after a 1 s warm-up; it also reports the audio
callback's worst-case time (Python callback body) and, to tell a slow worker from a held-up machine,
when late/dropped blocks appeared, the hypervisor's steal time, involuntary context switches and the
clock thread's own lag (:func:`wall_notes`).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

# Run as a script, this file's folder is sys.path[0] and benchmarks/onnx.py would shadow the
# `onnx` package that the ONNX exporter imports; drop the folder from the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != _HERE]

import numpy as np  # noqa: E402

from rtsvc.engine.controller import Controller  # noqa: E402
from rtsvc.engine.drivers import VirtualClockDriver  # noqa: E402
from rtsvc.engine.params import LiveParams  # noqa: E402
from rtsvc.engine.voices import default_voice_loader, parse_voice_spec  # noqa: E402

DEVICE_RATE = 48000
DEFAULT_BLOCKS_MS = (10, 20, 50, 100, 200, 500)
SOVITS_BLOCKS_MS = (100, 200, 300, 400, 500)
WARMUP_SECONDS = 1.0


def test_signal(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    ph = 2 * np.pi * np.cumsum(170 + 40 * np.sin(2 * np.pi * 0.8 * t)) / rate
    env = (np.sin(2 * np.pi * 1.5 * t) > -0.4).astype(np.float64)
    return (env * sum(0.2 / k * np.sin(k * ph) for k in range(1, 9))).astype(np.float32)


def run(voice, f0: str, block_ms: float, seconds: float, realtime: bool, prefill_ms: float, estimator=None,
        period: int = 256, wall: dict | None = None, **settings):
    """The engine over ``seconds`` of the test signal; returns its final status. Realtime runs
    count late / dropped blocks after the warm-up only and, given a ``wall`` dict, fill it with
    what :func:`wall_notes` prints (when late / dropped blocks happened, the clock's worst lag)."""
    x = test_signal(DEVICE_RATE, seconds)
    drv = VirtualClockDriver(x, DEVICE_RATE, realtime=realtime, tail_seconds=0.2, period=period)
    settings.setdefault("extra_context_ms", max(30.0, min(100.0, block_ms)))
    params = LiveParams(threshold_db=-120.0, f0_method=f0, transpose=4.0, block_ms=block_ms, prefill_ms=prefill_ms,
                        **settings)
    ctl = Controller(driver=drv, params=params, voice=voice, estimator=estimator)
    ctl.start()
    warm = None
    if realtime:
        time.sleep(WARMUP_SECONDS)  # first blocks pay one-off costs (FFT plans, caches)
        warm = ctl.status()
        events, last, t0 = [], warm, time.perf_counter()
        machine, steal_worst = machine_sample(), 0.0
        while not drv.wait(1.0) and time.perf_counter() - t0 < seconds * 3 + 10:
            now, m = ctl.status(), machine_sample()  # once a second: when did blocks go late or get dropped?
            steal, switches = m[0] - machine[0], m[1] - machine[1]
            steal_worst, machine = max(steal_worst, steal), m
            if (now.late_blocks, now.dropped_blocks) != (last.late_blocks, last.dropped_blocks):
                events.append((WARMUP_SECONDS + time.perf_counter() - t0, now.late_blocks - last.late_blocks,
                               now.dropped_blocks - last.dropped_blocks, now.worker_ms_worst, steal, switches))
            last = now
        if wall is not None:
            wall.update(events=events, lag_ms=1000 * drv.worst_lateness_s, lag_at_s=drv.worst_lateness_at_s,
                        steal_worst_ms=steal_worst)
    else:
        drv.run()
    st = ctl.status()
    ctl.stop()
    if warm is not None:  # count late/dropped blocks after the warm-up only
        st.late_blocks -= warm.late_blocks
        st.dropped_blocks -= warm.dropped_blocks
    return st


def machine_sample() -> tuple[float, int]:
    """(CPU time stolen from this machine by its hypervisor so far, in ms summed over all cores, from
    /proc/stat; this process's involuntary context switches so far). (0, 0) where unavailable."""
    steal = 0.0
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()  # cpu user nice system idle iowait irq softirq steal ...
        steal = 1000.0 * int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        pass
    try:
        import resource
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
    except (ImportError, OSError):
        switches = 0
    return steal, switches


def wall_notes(wall: dict) -> str:
    """One line on a wall-clock run: when (s after the start, to the second) late / dropped blocks
    appeared, with the worst block time so far, the CPU time the hypervisor stole and this process's
    involuntary context switches in that second, and the clock thread's worst lag behind the wall
    clock. A lag as long as the gap means the process itself was held up, not the worker."""
    events = "; ".join(f"{t:.0f} s: +{late} late, +{drop} dropped (worst block so far {worst:.1f} ms, "
                       f"steal {steal:.0f} ms, {switches} involuntary switches)"
                       for t, late, drop, worst, steal, switches in wall.get("events", [])[:8])
    return (f"    clock thread worst lag {wall.get('lag_ms', 0.0):.1f} ms (at {wall.get('lag_at_s', 0.0):.0f} s), "
            f"worst steal in one second {wall.get('steal_worst_ms', 0.0):.0f} ms"
            + (f"; late/dropped at {events}" if events else ""))


def split_times(voice, f0: str, block_ms: float) -> tuple[float, float]:
    """(pitch ms, voice ms) for one block of this size, measured directly (median of 10)."""
    from rtsvc.engine.pitch_cache import default_estimator
    from rtsvc.params import VoiceParams
    from rtsvc.voice import StreamWindow

    rate, hop = voice.sample_rate, voice.hop_length
    block = max(1, round(block_ms * rate / 1000 / hop)) * hop
    window = (block + 2 * hop * 4 + round(0.03 * rate) // hop * hop)
    x = test_signal(rate, 1.0)[: max(window, round(0.2 * rate) // hop * hop)]
    p_times, v_times = [], []
    for _ in range(10):
        t0 = time.perf_counter()
        f = default_estimator(x, rate, hop, f0, 0.05)
        t1 = time.perf_counter()
        w = StreamWindow(x[-window:], np.zeros(0, np.float32), f[-(window // hop):], out_samples=block, skip_tail=0)
        voice.convert_window(w, VoiceParams(transpose=4.0))
        t2 = time.perf_counter()
        p_times.append(t1 - t0)
        v_times.append(t2 - t1)
    return 1000 * float(np.median(p_times)), 1000 * float(np.median(v_times))


def wall_clock_check(voice, f0: str, results, seconds: float, estimator=None, label: str = ""):
    """Re-run, smallest block first, the blocks whose stepped p95 fits in the block on the wall
    clock with a processing allowance of 1.25 x the worst stepped worker time (a user's prefill);
    returns the smallest block (ms) with no late and no dropped blocks after the warm-up, or None."""
    for block, st in results:
        if st.worker_ms_p95 >= st.latency["block_ms"]:
            continue
        allowance = max(5.0, 1.25 * st.worker_ms_max)
        wall = {}
        rt = run(voice, f0, block, seconds, realtime=True, prefill_ms=allowance, estimator=estimator, wall=wall)
        ok = rt.late_blocks == 0 and rt.dropped_blocks == 0
        print(f"{label}wall clock at {rt.latency['block_ms']:.1f} ms block, prefill {allowance:.0f} ms: late {rt.late_blocks}, "
              f"dropped {rt.dropped_blocks}, algorithmic latency {rt.latency['algorithmic_ms']:.1f} ms, "
              f"callback worst {rt.callback_worst_ms:.3f} ms -> {'sustained' if ok else 'NOT sustained'}\n"
              f"{wall_notes(wall)}", flush=True)
        if ok:
            return rt.latency["block_ms"]
    return None


#: SOLA settings of the target check (small blocks): search and crossfade, ms.
LOW_LATENCY_SOLA = {"sola_search_ms": 2.0, "crossfade_ms": 3.0}
#: Block sizes the target check tries, ms.
TARGET_BLOCKS_MS = (10.0, 15.0, 20.0)


def allowance_for(voice, target_ms: float, block: float, period: int, **settings) -> float:
    """The processing allowance (ms) that brings the algorithmic latency of ``block`` with
    ``settings`` to ``target_ms`` (below 1 ms: no room)."""
    from rtsvc.engine.layout import make_layout

    base = LiveParams(block_ms=block, prefill_ms=0.0, **settings)
    lay = make_layout(base, voice.sample_rate, voice.hop_length, DEVICE_RATE, DEVICE_RATE, period, voice.needs_16k)
    return target_ms - 1000.0 * lay.algorithmic_seconds() - 0.05


def target_check(voice, f0_methods, target_ms: float, seconds: float, period: int) -> None:
    """Wall-clock runs at an algorithmic latency of ``target_ms`` (see the module docstring)."""
    print(f"\n== target: algorithmic latency <= {target_ms:g} ms (device period {period} frames at {DEVICE_RATE} Hz, "
          f"SOLA search {LOW_LATENCY_SOLA['sola_search_ms']:g} ms, crossfade {LOW_LATENCY_SOLA['crossfade_ms']:g} ms, "
          f"{seconds:g} s on the wall clock after a {WARMUP_SECONDS:g} s warm-up)")
    for f0 in f0_methods:
        for block in TARGET_BLOCKS_MS:
            allowance = allowance_for(voice, target_ms, block, period, extra_context_ms=max(30.0, min(100.0, block)),
                                      **LOW_LATENCY_SOLA)
            if allowance < 1.0:
                print(f"{f0:>6} block {block:4.1f} ms: no room for a processing allowance")
                continue
            st = run(voice, f0, block, seconds, realtime=True, prefill_ms=allowance, period=period, **LOW_LATENCY_SOLA)
            ok = st.late_blocks == 0 and st.dropped_blocks == 0
            print(f"{f0:>6} block {st.latency['block_ms']:4.1f} ms, allowance {allowance:4.1f} ms -> algorithmic "
                  f"{st.latency['algorithmic_ms']:.1f} ms: worker p50 {st.worker_ms_p50:.1f} p95 {st.worker_ms_p95:.1f} "
                  f"max {st.worker_ms_max:.1f} ms; late {st.late_blocks}, dropped {st.dropped_blocks} of {st.blocks} "
                  f"blocks -> {'sustained' if ok else 'NOT sustained'}", flush=True)


def bench_voice(voice, f0_methods, blocks, seconds: float) -> None:
    """The built-in voice (or a -m/-c model): one table per pitch estimator."""
    print(f"voice {voice.name} ({type(voice).__name__}, {voice.sample_rate} Hz, hop {voice.hop_length}); "
          f"device rate {DEVICE_RATE} Hz")
    for f0 in f0_methods:
        print(f"\n== f0 method {f0}")
        print(f"{'block':>7} {'p50':>8} {'p95':>8} {'max':>8} {'RTF':>6} {'algo ms':>8} {'pitch':>6} {'voice':>6}")
        results = []
        for block in sorted(blocks):
            t0 = time.perf_counter()
            st = run(voice, f0, block, seconds, realtime=False, prefill_ms=10.0)
            lat = st.latency["algorithmic_ms"]
            results.append((block, st))
            pitch_ms, voice_ms = split_times(voice, f0, block)
            print(f"{st.latency['block_ms']:7.1f} {st.worker_ms_p50:8.1f} {st.worker_ms_p95:8.1f} {st.worker_ms_max:8.1f} "
                  f"{st.rtf:6.2f} {lat:8.1f} {pitch_ms:6.1f} {voice_ms:6.1f}   ({time.perf_counter() - t0:.1f} s)", flush=True)
        smallest = wall_clock_check(voice, f0, results, seconds)
        print(f"smallest sustainable block with {f0}: {smallest:.1f} ms" if smallest is not None
              else f"no block size tried is sustainable with {f0} on this machine")


# -- full-size SoVITS rows -------------------------------------------------------------------
def benchmark_module(name: str):
    """benchmarks/<name>.py, imported by path (the builders of the full-size networks live in
    fullsize.py and onnx.py)."""
    module_name = f"rtsvc_bench_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, _HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def fcpe_estimator(f0_of_16k, device: str = "cpu", stream=None):
    """An engine pitch estimator from ``f0_of_16k``: (1, n16) float32 tensor at 16 kHz (on
    ``device``) -> f0 at 10 ms frames; stretched onto the voice's frame grid by nearest
    neighbour (as rtsvc.pitch). stream: the CUDA stream it runs on with its copies
    (GraphedFcpe.stream, as rtsvc.pitch runs it), None = the current one."""
    import torch

    from rtsvc.audio_io import resample

    def estimate(audio, sample_rate, hop, method, threshold):
        frames = len(audio) // hop
        x16 = torch.from_numpy(np.ascontiguousarray(resample(audio, sample_rate, 16000), dtype=np.float32))[None]
        with torch.cuda.stream(stream):
            f0 = torch.as_tensor(f0_of_16k(x16.to(device))).reshape(1, 1, -1).float().cpu()
        return torch.nn.functional.interpolate(f0, size=frames, mode="nearest").reshape(-1).numpy()

    return estimate


def sovits_variants(device: str) -> list[tuple[str, str, bool, bool]]:
    """(label, backend, fp16, CUDA graphs) rows to compare: torch vs onnxruntime on the CPU;
    torch fp32 / fp16, eager / CUDA graphs and (with onnxruntime-gpu) onnxruntime on a GPU."""
    from rtsvc.backends import PROVIDERS, available_providers

    if device == "cpu":
        return [("torch", "torch", False, False), ("onnxruntime", "onnxruntime", False, False)]
    rows = [("fp32 eager", "torch", False, False), ("fp16 eager", "torch", True, False),
            ("fp32 graphs", "torch", False, True), ("fp16 graphs", "torch", True, True)]
    if PROVIDERS["cuda"] in available_providers():
        rows.append(("onnxruntime", "onnxruntime", False, False))
    return rows


def full_size_sovits_voices(threads: int, layout: Path, device: str = "cpu", only: tuple[str, ...] = ()):
    """{label: (voice, estimator)} of one random-weight full-size 4.1 model (benchmarks/onnx.py
    builds the networks, fullsize.py gives the config), its encoder and FCPE, per
    :func:`sovits_variants` (``only``: just these labels)."""
    import copy

    from rtsvc.backends import apply_backend, choose_backend
    from rtsvc.encoders import TorchContentEncoder
    from rtsvc.sovits_config import parse_sovits_config
    from rtsvc.sovits_voice import SovitsVoice

    benchmark_module("fullsize").use_benchmark_cache()  # random-weight graphs stay out of the user's cache
    bench = benchmark_module("onnx")
    synth, encoder, fcpe = bench.full_size_synthesizer(), bench.full_size_encoder(layout), bench.full_size_fcpe()
    config = parse_sovits_config(benchmark_module("fullsize").full_size_config(), where="full-size benchmark config")
    on_gpu = device != "cpu"
    gpu_fcpe = copy.deepcopy(fcpe).to(device) if on_gpu else None
    voices = {}
    for label, name, fp16, graphs in sovits_variants(device):
        if only and label not in only:
            continue
        choice = choose_backend(name, device=device, fp16=fp16, threads=threads, cuda_graphs=graphs)
        model, enc = synth, encoder
        if name == "torch" and on_gpu:
            model = copy.deepcopy(synth).to(device)
            model = model.half() if fp16 else model
            enc = TorchContentEncoder(encoder.spec, copy.deepcopy(encoder.model), device, encoder.path)
        model, enc = apply_backend(model, enc, choice, speakers=tuple(config.speakers),
                                   speech_encoder=config.speech_encoder, unit_interpolate_mode=config.data.unit_interpolate_mode)
        if on_gpu:
            from rtsvc.cuda_graphs import GraphedFcpe

            network = GraphedFcpe(gpu_fcpe) if graphs else gpu_fcpe
            pitch = lambda x16, network=network: network(x16, 0.05)  # noqa: E731
            stream = getattr(network, "stream", None)
        else:
            pitch = (lambda x16: fcpe(x16, 0.05)) if name == "torch" else bench.OrtFcpeNetwork(fcpe, choice)
        voice = SovitsVoice(model, config, enc, name=f"full-size 4.1 random ({label})", device=device, backend=choice)
        voices[label] = (voice, fcpe_estimator(pitch, device, stream if on_gpu else None))
    return voices


def bench_sovits(voices, blocks, seconds: float, device: str) -> None:
    import torch

    print(f"\n== full-size SoVITS 4.1 (random weights) + ContentVec-shaped encoder + FCPE on {device}, "
          f"{' vs '.join(voices)} (torch {torch.__version__}, {torch.get_num_threads()} threads); "
          f"device rate {DEVICE_RATE} Hz, 44.1 kHz / hop 512, left context <= 100 ms, prefill 10 ms")
    for name, (voice, _) in voices.items():
        facts = voice.describe()
        print(f"  {name}: synthesizer {facts['synthesizer_provider']}, encoder {facts['encoder_provider']}, "
              f"precision {facts['precision']}, threads {facts['threads']}, CUDA graphs {facts['cuda_graphs']}")
    head = f"{'block':>7} {'algo ms':>8} | " + " | ".join(f"{name + ' p50':>16} {'p95':>6} {'max':>6} {'RTF':>5}" for name in voices)
    print(head + "\n" + "-" * len(head))
    results: dict[str, list] = {name: [] for name in voices}
    for block in sorted(blocks):
        row = []
        for name, (voice, estimator) in voices.items():
            st = run(voice, "fcpe", block, seconds, realtime=False, prefill_ms=10.0, estimator=estimator)
            results[name].append((block, st))
            row.append(f"{st.worker_ms_p50:16.1f} {st.worker_ms_p95:6.1f} {st.worker_ms_max:6.1f} {st.rtf:5.2f}")
        st = results[next(iter(voices))][-1][1]
        print(f"{st.latency['block_ms']:7.1f} {st.latency['algorithmic_ms']:8.1f} | " + " | ".join(row), flush=True)
    for name, (voice, estimator) in voices.items():
        smallest = wall_clock_check(voice, "fcpe", results[name], seconds, estimator, label=f"{name}: ")
        print(f"{name}: smallest block without late blocks: {smallest:.1f} ms" if smallest is not None
              else f"{name}: no block size tried runs without late blocks on this machine", flush=True)


#: Block sizes the SoVITS target check tries, ms (2, 3 and 4 hops of 512 at 44.1 kHz).
SOVITS_TARGET_BLOCKS_MS = (23.2, 34.8, 46.4)


def sovits_target_check(voices, target_ms: float, seconds: float, long_seconds: float, period: int,
                        context_ms: float, short_seconds: float = 20.0) -> None:
    """For each variant and small block: the processing allowance that brings the algorithmic
    latency to ``target_ms`` (SOLA search 2 ms, crossfade 3 ms, ``context_ms`` left context),
    then ``short_seconds`` of audio stepped (worker p50/p95/worst; a block slower than its
    allowance would be late). The configuration with the lowest RTF among those whose worst
    block fits is then run for ``long_seconds`` stepped and ``seconds`` on the wall clock
    (late / dropped blocks counted after the warm-up)."""
    settings = dict(LOW_LATENCY_SOLA, extra_context_ms=context_ms)
    print(f"\n== SoVITS target: algorithmic latency <= {target_ms:g} ms (device period {period} frames at "
          f"{DEVICE_RATE} Hz, SOLA search {LOW_LATENCY_SOLA['sola_search_ms']:g} ms, crossfade "
          f"{LOW_LATENCY_SOLA['crossfade_ms']:g} ms, left context {context_ms:g} ms); {short_seconds:g} s stepped each")
    fits = []
    for name, (voice, estimator) in voices.items():
        for block in SOVITS_TARGET_BLOCKS_MS:
            allowance = allowance_for(voice, target_ms, block, period, **settings)
            if allowance < 1.0:
                print(f"{name}: block {block:.1f} ms: no room for a processing allowance")
                continue
            st = run(voice, "fcpe", block, short_seconds, False, allowance, estimator, period, **settings)
            ok = st.worker_ms_worst <= allowance and st.worker_ms_p95 < st.latency["block_ms"]
            print(f"{name}: block {st.latency['block_ms']:.1f} ms, allowance {allowance:.1f} ms -> algorithmic "
                  f"{st.latency['algorithmic_ms']:.1f} ms; worker p50 {st.worker_ms_p50:.2f} p95 {st.worker_ms_p95:.2f} "
                  f"worst {st.worker_ms_worst:.2f} ms, RTF {st.rtf:.3f} -> "
                  f"{'fits' if ok else 'does not fit (worst over the allowance or p95 over the block)'}", flush=True)
            if ok:
                fits.append((st.rtf, name, block, allowance))
    if not fits:
        print("no configuration fits the target on this machine")
        return
    _, name, block, allowance = min(fits)
    voice, estimator = voices[name]
    t0 = time.perf_counter()
    st = run(voice, "fcpe", block, long_seconds, False, allowance, estimator, period, **settings)
    over = st.over_allowance_blocks
    print(f"{name}, block {block:.1f} ms, allowance {allowance:.1f} ms: {long_seconds:g} s stepped ({st.blocks} blocks, "
          f"{time.perf_counter() - t0:.0f} s): worker p50 {st.worker_ms_p50:.2f} p95 {st.worker_ms_p95:.2f} worst "
          f"{st.worker_ms_worst:.2f} ms, RTF {st.rtf:.3f}, algorithmic {st.latency['algorithmic_ms']:.1f} ms -> "
          f"{f'{over} block(s) over the allowance' if over else 'no block over its allowance'}", flush=True)
    if seconds > 0:
        wall = {}
        rt = run(voice, "fcpe", block, seconds, True, allowance, estimator, period, wall=wall, **settings)
        ok = rt.late_blocks == 0 and rt.dropped_blocks == 0
        print(f"{name}, same settings, {seconds:g} s on the wall clock: late {rt.late_blocks}, dropped "
              f"{rt.dropped_blocks} of {rt.blocks} blocks after the warm-up ({rt.over_allowance_blocks} over the "
              f"allowance in all), worker p50 {rt.worker_ms_p50:.2f} worst "
              f"{rt.worker_ms_worst:.2f} ms, RTF {rt.rtf:.3f}, callback worst {rt.callback_worst_ms:.3f} ms -> "
              f"{'sustained' if ok else 'NOT sustained'}\n{wall_notes(wall)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--voices", nargs="+", choices=("world", "sovits"), default=["world", "sovits"],
                    help="which rows: the built-in voice (or -m/-c) and/or the full-size SoVITS voice")
    ap.add_argument("--blocks", type=float, nargs="*", default=list(DEFAULT_BLOCKS_MS),
                    help="block sizes, ms (none: skip the table, e.g. for a target check only)")
    ap.add_argument("--sovits-blocks", type=float, nargs="*", default=list(SOVITS_BLOCKS_MS),
                    help="block sizes for the full-size SoVITS rows, ms")
    ap.add_argument("--f0", nargs="+", default=["dio", "fcpe"], help="pitch estimators to try (built-in voice rows)")
    ap.add_argument("--seconds", type=float, default=4.0, help="test signal length, s")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads of the SoVITS rows (0 = default)")
    ap.add_argument("--layout", type=Path, default=None, help="contentvec layout_base.json (default: shared fixtures)")
    ap.add_argument("-m", "--model", help="SoVITS model .pth (with -c) instead of the built-in voice")
    ap.add_argument("-c", "--config")
    ap.add_argument("--device", default="cpu", help="torch device of the voices (cpu, cuda)")
    ap.add_argument("--variants", nargs="*", default=None,
                    help="SoVITS rows to build, by label (default all: see sovits_variants)")
    ap.add_argument("--sovits-target-ms", type=float, default=None,
                    help="also run the SoVITS target check at this algorithmic latency (e.g. 50 on a GPU)")
    ap.add_argument("--long-seconds", type=float, default=600.0,
                    help="audio stepped through each SoVITS target configuration, s (default 10 minutes)")
    ap.add_argument("--context-ms", type=float, default=100.0, help="left context of the SoVITS target check, ms")
    ap.add_argument("--short-seconds", type=float, default=20.0,
                    help="audio stepped through each SoVITS target configuration before the long run, s")
    ap.add_argument("--target-latency-ms", type=float, default=None,
                    help="also run the target check at this algorithmic latency (built-in voice rows)")
    ap.add_argument("--target-seconds", type=float, default=20.0, help="wall-clock length of each target run, s")
    ap.add_argument("--period", type=int, default=256, help="device callback period of the target runs, frames")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"CPU: {os.cpu_count()} cores; load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if "world" in args.voices:
        spec = parse_voice_spec((args.model, args.config) if args.model else "world", args.device)
        voice = default_voice_loader(spec)
        if args.blocks:
            bench_voice(voice, args.f0, args.blocks, args.seconds)
        if args.target_latency_ms is not None:
            target_check(voice, args.f0, args.target_latency_ms, args.target_seconds, args.period)
    if "sovits" in args.voices:
        root = os.environ.get("RTSVC_FIXTURES")
        base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "fixtures"
        t0 = time.perf_counter()
        voices = full_size_sovits_voices(args.threads, args.layout or base / "contentvec" / "layout_base.json",
                                         args.device, tuple(args.variants or ()))
        print(f"\nfull-size SoVITS voices built in {time.perf_counter() - t0:.0f} s")
        if args.sovits_blocks:
            bench_sovits(voices, args.sovits_blocks, args.seconds, args.device)
        if args.sovits_target_ms is not None:
            sovits_target_check(voices, args.sovits_target_ms, args.target_seconds, args.long_seconds, args.period,
                                args.context_ms, args.short_seconds)
    load = os.getloadavg()
    print(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (on {os.cpu_count()} cores; above "
          f"{os.cpu_count()} means other processes competed for the CPU)")


if __name__ == "__main__":
    main()

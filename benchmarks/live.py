"""Live-engine benchmark: worker time per block, RTF, latency, smallest sustainable block.

For each voice and block size the engine runs on the virtual clock in stepped mode over a
speech-like test signal (so worker times are measured without a sound card), then the smallest
block whose p95 worker time fits in the block is re-run on the wall clock to confirm that it
produces no late blocks. Prints a table; asserts nothing.

    python benchmarks/live.py                        # built-in voice, dio and fcpe pitch
    python benchmarks/live.py --blocks 20 50 --f0 dio
    python benchmarks/live.py -m model.pth -c config.json --device cuda

Columns: worker p50/p95/max (ms per block), RTF (p50 / block), algorithmic latency (ms) with a
10 ms processing allowance, and the split of one block's time into pitch estimation and the
voice's convert_window (measured separately). The wall-clock check sets the allowance to 1.25 x the
worst worker time and counts late/dropped blocks after a 1 s warm-up; it also reports the audio
callback's worst-case time (Python callback body).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rtsvc.engine.controller import Controller
from rtsvc.engine.drivers import VirtualClockDriver
from rtsvc.engine.params import LiveParams
from rtsvc.engine.voices import default_voice_loader, parse_voice_spec

DEVICE_RATE = 48000
DEFAULT_BLOCKS_MS = (10, 20, 50, 100, 200, 500)
WARMUP_SECONDS = 1.0


def test_signal(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    ph = 2 * np.pi * np.cumsum(170 + 40 * np.sin(2 * np.pi * 0.8 * t)) / rate
    env = (np.sin(2 * np.pi * 1.5 * t) > -0.4).astype(np.float64)
    return (env * sum(0.2 / k * np.sin(k * ph) for k in range(1, 9))).astype(np.float32)


def run(voice, f0: str, block_ms: float, seconds: float, realtime: bool, prefill_ms: float):
    x = test_signal(DEVICE_RATE, seconds)
    drv = VirtualClockDriver(x, DEVICE_RATE, realtime=realtime, tail_seconds=0.2)
    params = LiveParams(threshold_db=-120.0, f0_method=f0, transpose=4.0, block_ms=block_ms,
                        extra_context_ms=max(30.0, min(100.0, block_ms)), prefill_ms=prefill_ms)
    ctl = Controller(driver=drv, params=params, voice=voice)
    ctl.start()
    warm = None
    if realtime:
        time.sleep(WARMUP_SECONDS)  # first blocks pay one-off costs (FFT plans, caches)
        warm = ctl.status()
        drv.wait(seconds * 3 + 10)
    else:
        drv.run()
    st = ctl.status()
    ctl.stop()
    if warm is not None:  # count late/dropped blocks after the warm-up only
        st.late_blocks -= warm.late_blocks
        st.dropped_blocks -= warm.dropped_blocks
    return st


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", type=float, nargs="+", default=list(DEFAULT_BLOCKS_MS), help="block sizes, ms")
    ap.add_argument("--f0", nargs="+", default=["dio", "fcpe"], help="pitch estimators to try")
    ap.add_argument("--seconds", type=float, default=4.0, help="test signal length, s")
    ap.add_argument("-m", "--model", help="SoVITS model .pth (with -c) instead of the built-in voice")
    ap.add_argument("-c", "--config")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    spec = parse_voice_spec((args.model, args.config) if args.model else "world", args.device)
    voice = default_voice_loader(spec)
    print(f"voice {voice.name} ({type(voice).__name__}, {voice.sample_rate} Hz, hop {voice.hop_length}); "
          f"device rate {DEVICE_RATE} Hz")
    for f0 in args.f0:
        print(f"\n== f0 method {f0}")
        print(f"{'block':>7} {'p50':>8} {'p95':>8} {'max':>8} {'RTF':>6} {'algo ms':>8} {'pitch':>6} {'voice':>6}")
        results = []
        for block in sorted(args.blocks):
            t0 = time.perf_counter()
            st = run(voice, f0, block, args.seconds, realtime=False, prefill_ms=10.0)
            lat = st.latency["algorithmic_ms"]
            results.append((block, st))
            pitch_ms, voice_ms = split_times(voice, f0, block)
            print(f"{st.latency['block_ms']:7.1f} {st.worker_ms_p50:8.1f} {st.worker_ms_p95:8.1f} {st.worker_ms_max:8.1f} "
                  f"{st.rtf:6.2f} {lat:8.1f} {pitch_ms:6.1f} {voice_ms:6.1f}   ({time.perf_counter() - t0:.1f} s)", flush=True)
        for block, st in results:
            if st.worker_ms_p95 >= st.latency["block_ms"]:
                continue
            # wall-clock check: allowance = 1.25 x the worst stepped worker time (a user's prefill)
            allowance = max(5.0, 1.25 * st.worker_ms_max)
            rt = run(voice, f0, block, args.seconds, realtime=True, prefill_ms=allowance)
            ok = rt.late_blocks == 0 and rt.dropped_blocks == 0
            print(f"wall clock at {rt.latency['block_ms']:.1f} ms block, prefill {allowance:.0f} ms: late {rt.late_blocks}, "
                  f"dropped {rt.dropped_blocks}, algorithmic latency {rt.latency['algorithmic_ms']:.1f} ms, "
                  f"callback worst {rt.callback_worst_ms:.3f} ms -> {'sustained' if ok else 'NOT sustained'}", flush=True)
            if ok:
                print(f"smallest sustainable block with {f0}: {rt.latency['block_ms']:.1f} ms")
                break
        else:
            print(f"no block size tried is sustainable with {f0} on this machine")


if __name__ == "__main__":
    main()

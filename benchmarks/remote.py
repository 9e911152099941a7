"""Remote-control benchmark: control round trip and status delivery with 1 and 20 clients.

Runs the real server and controller in this process (server on its own thread and loop, as in
``rtsvc serve``); the clients are asyncio websockets clients on 127.0.0.1 in a separate process
(as real clients are), so they do not compete with the engine for this process's GIL. The
engine runs on the virtual-clock driver (no sound card) with the built-in WORLD voice when
--running is given, and its late/dropped counters are shown with and without client traffic;
else it stays stopped (pure protocol + controller cost). Prints figures; asserts nothing.

    python benchmarks/remote.py [--requests 300] [--seconds 3] [--rate 10] [--running]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from websockets.asyncio.client import connect

# The engine and server are imported in main(): the client process (spawned) stays light.

#: Client counts measured.
CLIENT_COUNTS = (1, 20)
#: Virtual input played while --running (seconds of a quiet sine).
INPUT_SECONDS = 600
INPUT_RATE = 44100


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def _client(url: str):
    ws = await connect(url, compression=None, max_size=None)
    json.loads(await ws.recv())  # hello
    return ws


async def round_trips(url: str, clients: int, requests: int) -> list[float]:
    """Each client sends `requests` sequential set requests; returns all round trips (ms)."""
    conns = [await _client(url) for _ in range(clients)]

    async def one(ws, k: int) -> list[float]:
        times = []
        for i in range(requests):
            t0 = time.perf_counter()
            await ws.send(json.dumps({"id": i, "op": "set", "params": {"transpose": (i + k) % 12}}))
            while True:  # skip pushes from the other clients' changes
                msg = json.loads(await ws.recv())
                if msg["type"] == "reply" and msg["id"] == i:
                    break
            assert msg["ok"], msg
            times.append((time.perf_counter() - t0) * 1000)
        return times

    results = await asyncio.gather(*(one(ws, k) for k, ws in enumerate(conns)))
    for ws in conns:
        await ws.close()
    return [t for r in results for t in r]


async def status_delivery(url: str, clients: int, seconds: float, rate: float) -> dict[str, float]:
    """Subscribe `clients` at `rate` Hz for `seconds`; per-client rate, gap jitter and lag."""
    conns = [await _client(url) for _ in range(clients)]

    async def one(ws) -> tuple[int, list[float], list[float]]:
        await ws.send(json.dumps({"id": 1, "op": "subscribe", "rate_hz": rate}))
        arrivals, lags = [], []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = json.loads(await ws.recv())
            if msg["type"] == "status":
                arrivals.append(time.monotonic())
                lags.append((time.time() - msg["time"]) * 1000)
        return len(arrivals), list(np.diff(arrivals) * 1000), lags

    results = await asyncio.gather(*(one(ws) for ws in conns))
    for ws in conns:
        await ws.close()
    gaps = [g for _, gs, _ in results for g in gs]
    lags = [x for _, _, ls in results for x in ls]
    return {"rate_hz_min": min(n for n, _, _ in results) / seconds, "rate_hz_mean": statistics.mean(n for n, _, _ in results) / seconds,
            "gap_p50": pct(gaps, 50), "gap_p99": pct(gaps, 99), "lag_p50": pct(lags, 50), "lag_p99": pct(lags, 99)}


def client_job(kind: str, url: str, clients: int, amount: float, rate: float):
    """Runs in the client process: "rtt" (amount = requests) or "status" (amount = seconds)."""
    if kind == "rtt":
        return asyncio.run(round_trips(url, clients, int(amount)))
    return asyncio.run(status_delivery(url, clients, amount, rate))


def _engine_counters(controller) -> tuple[float, int, int, int]:
    st = controller.status()
    return time.monotonic(), st.late_blocks, st.dropped_blocks, st.xruns


def _engine_delta(controller, before: tuple[float, int, int, int]) -> str:
    t, late, dropped, xruns = _engine_counters(controller)
    st = controller.status()
    return (f"late +{late - before[1]} dropped +{dropped - before[2]} xruns +{xruns - before[3]} in "
            f"{t - before[0]:.1f} s (worker p95 {st.worker_ms_p95:.1f} ms, rtf {st.rtf:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=300, help="set requests per client (default 300)")
    ap.add_argument("--seconds", type=float, default=3.0, help="status measurement time (default 3 s)")
    ap.add_argument("--rate", type=float, default=10.0, help="status rate per client, Hz (default 10)")
    ap.add_argument("--running", action="store_true", help="run the engine (WORLD voice, virtual clock) meanwhile")
    args = ap.parse_args()

    from rtsvc.engine.controller import Controller
    from rtsvc.engine.drivers import VirtualClockDriver
    from rtsvc.presets import PresetStore
    from rtsvc.remote.server import RemoteServer, ServerConfig
    from rtsvc.remote.voices import VoiceLibrary

    tmp = Path(tempfile.mkdtemp(prefix="rtsvc-bench-"))
    t = np.arange(INPUT_SECONDS * INPUT_RATE, dtype=np.float32) / INPUT_RATE
    driver = VirtualClockDriver((0.1 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), INPUT_RATE, realtime=True)
    controller = Controller(driver=driver, presets=PresetStore(tmp / "presets"))
    if args.running:
        controller.update(f0_method="dio")
        controller.start()
    server = RemoteServer(controller, ServerConfig(port=0, rate_per_s=1e6, rate_burst=10**6, max_connections=64),
                          VoiceLibrary([])).start()
    print(f"engine {'running (WORLD voice, virtual clock)' if args.running else 'stopped'}; server {server.url}")
    pool = multiprocessing.get_context("spawn").Pool(1)
    pool.apply(time.sleep, (0,))  # start the client process before measuring
    try:
        if args.running:  # the same time with no clients, to compare the engine's counters against
            before = _engine_counters(controller)
            time.sleep(args.seconds)
            print(f"engine, {args.seconds:g} s with no clients: {_engine_delta(controller, before)}")
        before = _engine_counters(controller)
        for n in CLIENT_COUNTS:
            rtt = pool.apply(client_job, ("rtt", server.url, n, args.requests, args.rate))
            print(f"control round trip, {n:2d} client(s) x {args.requests} sets: p50 {pct(rtt, 50):6.2f} ms  "
                  f"p99 {pct(rtt, 99):6.2f} ms  max {max(rtt):6.2f} ms")
        for n in CLIENT_COUNTS:
            s = pool.apply(client_job, ("status", server.url, n, args.seconds, args.rate))
            print(f"status at {args.rate:g} Hz, {n:2d} client(s): delivered {s['rate_hz_mean']:5.2f} Hz/client "
                  f"(min {s['rate_hz_min']:5.2f})  gap p50 {s['gap_p50']:6.1f} p99 {s['gap_p99']:6.1f} ms  "
                  f"lag p50 {s['lag_p50']:5.2f} p99 {s['lag_p99']:5.2f} ms")
        if args.running:
            print(f"engine during the client phases: {_engine_delta(controller, before)}")
    finally:
        pool.close()
        server.stop()
        controller.close()


if __name__ == "__main__":
    main()

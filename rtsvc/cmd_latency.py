"""``rtsvc latency``: measure the real round trip with a chirp, compare with the reported latency."""

from __future__ import annotations

import argparse

from rtsvc.cmd_live import add_engine_arguments, collect_changes


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "latency",
        help="measure the real latency (route the output back to the input first)",
        description="Play a chirp through the live engine (in bypass, so the dry signal takes the same path and "
        "latency as the voice) with the OUTPUT ROUTED BACK TO THE INPUT (a loopback cable, a virtual cable, or "
        "jack_connect). Prints the measured chain latency (input sound -> output sound) next to the reported "
        "one (algorithmic + the device latency PortAudio reports), and the measured device round trip.",
    )
    add_engine_arguments(p)
    p.add_argument("--listen", type=float, default=1.5, help="seconds to listen for the returning chirp (default 1.5)")
    return p


def run(args: argparse.Namespace) -> int:
    from rtsvc.engine.controller import Controller
    from rtsvc.errors import RtsvcError

    ctl = Controller()
    ctl.update(**collect_changes(args))
    ctl.start()
    try:
        m = ctl.measure_latency(listen_seconds=args.listen)
    finally:
        ctl.close()
    print(f"reported: algorithmic {m.reported_algorithmic_ms:.1f} ms + device {m.reported_device_ms:.1f} ms "
          f"= {m.reported_chain_ms:.1f} ms")
    if m.chain_ms is None:
        raise RtsvcError("the chirp did not come back twice on the input.",
                         "route the output to the input (loopback cable, virtual cable, jack_connect) and raise the levels.")
    print(f"measured: chain {m.chain_ms:.1f} ms (difference {m.chain_ms - m.reported_chain_ms:+.1f} ms)")
    if m.device_round_trip_ms is not None:
        print(f"measured: device round trip {m.device_round_trip_ms:.1f} ms (reported {m.reported_device_ms:.1f} ms)")
    return 0

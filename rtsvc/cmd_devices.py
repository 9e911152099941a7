"""``rtsvc devices``: list host APIs and audio devices (what --input/--output/--host-api accept)."""

from __future__ import annotations

import argparse
import json

from rtsvc.engine.devices import list_devices


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "devices",
        help="list audio host APIs and input/output devices",
        description="List PortAudio host APIs and devices. Pass a device's index or part of its name to "
        "'rtsvc live --input/--output/--monitor', and a host API name to --host-api.",
    )
    p.add_argument("--json", action="store_true", help="print the listing as JSON")
    return p


def format_listing(listing: dict) -> str:
    """Human-readable listing; says clearly when there is no device at all."""
    apis = listing["host_apis"]
    devs = listing["devices"]
    lines = ["Host APIs: " + (", ".join(a["name"] for a in apis) if apis else "none")]
    if not devs:
        lines.append(
            "No audio devices found. Connect a sound card or start an audio server "
            "(PipeWire/PulseAudio, or JACK: 'jackd -d alsa'; with no hardware: 'jackd -d dummy'), then run this again."
        )
        return "\n".join(lines)
    defaults = {a["default_input"] for a in apis} | {a["default_output"] for a in apis}
    lines.append(f"{'idx':>4}  {'in':>3} {'out':>3}  {'rate':>7}  host API / name")
    for d in devs:
        mark = "*" if d["index"] in defaults else " "
        lines.append(f"{d['index']:>3}{mark}  {d['inputs']:>3} {d['outputs']:>3}  {d['default_samplerate']:>7.0f}  "
                     f"{d['host_api']} / {d['name']}")
    lines.append("(* = a host API's default device; in/out = channels)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    listing = list_devices()
    print(json.dumps(listing, indent=2) if args.json else format_listing(listing))
    return 0

"""``rtsvc remote``: control a running ``rtsvc serve`` from a shell or script (docs/remote.md)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from rtsvc.errors import RtsvcError

#: action -> (protocol op, help, takes a NAME argument)
NAMED_ACTIONS = {
    "load-voice": ("load_voice", "load a voice by name (see 'voices'); waits until it is loaded"),
    "save-preset": ("save_preset", "save the current parameters as a preset"),
    "load-preset": ("load_preset", "apply a saved preset"),
    "delete-preset": ("delete_preset", "delete a saved preset"),
}
PLAIN_ACTIONS = {
    "start": ("start", "start the audio"),
    "stop": ("stop", "stop the audio"),
    "devices": ("devices", "list audio devices on the server"),
    "voices": ("voices", "list voices in the server's voice folders"),
    "presets": ("presets", "list saved presets"),
}


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "remote",
        help="control a running `rtsvc serve`",
        description="Control a running `rtsvc serve` over websockets, e.g. `rtsvc remote set pitch=5`, "
        "`rtsvc remote status --watch`. The token (needed when the server is not on 127.0.0.1) comes from "
        "--token-file, $RTSVC_TOKEN, or the server's token file in the rtsvc config folder when that exists.",
    )
    p.add_argument("--url", default=None, help="server address (default ws://127.0.0.1:8765)")
    p.add_argument("--token-file", type=Path, metavar="FILE", help="file holding the token")
    p.add_argument("--cafile", type=Path, metavar="PEM", help="CA or self-signed certificate to trust for wss://")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds to wait for an answer (default 10)")
    p.add_argument("--json", action="store_true", help="print the server's JSON results as they are")
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    g = acts.add_parser("get", help="print live parameters", description="Print all live parameters, or the named ones.")
    g.add_argument("names", nargs="*", metavar="NAME")
    s = acts.add_parser("set", help="change live parameters, e.g. pitch=5 mix=0.5",
                        description="Change live parameters: NAME=VALUE ... (pitch = transpose, mix = cluster_ratio). "
                        "Values are JSON when they parse (5, -3.5, true, null), else text.")
    s.add_argument("assignments", nargs="+", metavar="NAME=VALUE")
    st = acts.add_parser("status", help="print the engine status (--watch to follow it)")
    st.add_argument("--watch", action="store_true", help="keep printing status pushes until Ctrl-C")
    st.add_argument("--rate", type=float, default=10.0, metavar="HZ", help="push rate for --watch (default 10)")
    st.add_argument("--count", type=int, default=0, metavar="N", help="with --watch: stop after N statuses (0 = never)")
    for action, (_, text) in PLAIN_ACTIONS.items():
        acts.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
    for action, (_, text) in NAMED_ACTIONS.items():
        a = acts.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        a.add_argument("name", metavar="NAME")
    return p


def _token(args: argparse.Namespace) -> str | None:
    from rtsvc.remote.auth import default_token_path, read_token

    if args.token_file is not None:
        return read_token(args.token_file)
    if os.environ.get("RTSVC_TOKEN"):
        return os.environ["RTSVC_TOKEN"].strip()
    path = default_token_path()
    return read_token(path) if path.is_file() else None


def _print(args: argparse.Namespace, result: Any, text: str) -> None:
    print(json.dumps(result, indent=2, sort_keys=True) if args.json else text)


def _status_line(status: dict[str, Any]) -> str:
    from rtsvc.engine.status import EngineStatus

    try:
        return EngineStatus(**status).line()
    except TypeError:  # a server of another version: show what it sent
        return json.dumps(status, sort_keys=True)


def run(args: argparse.Namespace) -> int:
    from rtsvc.remote.client import DEFAULT_URL, RemoteClient, parse_assignments

    url = args.url or DEFAULT_URL
    with RemoteClient(url, token=_token(args), cafile=args.cafile, timeout=args.timeout) as rc:
        if args.action == "get":
            result = rc.request("get")
            params = result["params"]
            unknown = [n for n in args.names if n not in params]
            if unknown:
                raise RtsvcError(f"unknown parameter(s): {', '.join(unknown)}.", fix=f"known: {', '.join(params)}")
            shown = {n: params[n] for n in (args.names or params)}
            _print(args, shown, "\n".join(f"{k} = {json.dumps(v)}" for k, v in shown.items()))
        elif args.action == "set":
            changes = parse_assignments(args.assignments)
            params = rc.request("set", params=changes)["params"]
            _print(args, params, "\n".join(f"{k} = {json.dumps(params[k])}" for k in changes))
        elif args.action == "status":
            if not args.watch:
                status = rc.request("status")["status"]
                _print(args, status, _status_line(status))
                return 0
            for n, status in enumerate(rc.watch_status(args.rate), 1):
                print(json.dumps(status, sort_keys=True) if args.json else _status_line(status), flush=True)
                if args.count and n >= args.count:
                    break
        elif args.action in PLAIN_ACTIONS:
            result = rc.request(PLAIN_ACTIONS[args.action][0])
            _print(args, result, _plain_text(args.action, result))
        else:
            op = NAMED_ACTIONS[args.action][0]
            result = rc.request(op, name=args.name)
            _print(args, result, f"{args.action} {args.name}: ok")
    return 0


def _plain_text(action: str, result: dict[str, Any]) -> str:
    if action in ("start", "stop"):
        return "running" if result.get("running") else "stopped"
    if action == "voices":
        return "\n".join(result.get("voices", []))
    if action == "presets":
        return "\n".join(result.get("presets", [])) or "(no presets)"
    devices = result.get("devices", {})
    lines = [f"{d.get('index', '?')}: {d.get('name', d)}" if isinstance(d, dict) else str(d)
             for d in devices.get("devices", [])] if isinstance(devices, dict) else [str(devices)]
    return "\n".join(lines) or "(no devices)"

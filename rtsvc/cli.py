"""The ``rtsvc`` command line.

Each subcommand lives in its own module ``rtsvc.cmd_<name>`` exposing
``add_parser(subparsers) -> argparse.ArgumentParser`` and ``run(args) -> int``. Only commands that
do something are listed. Errors caused by the user (:class:`rtsvc.errors.RtsvcError`) print one
line and exit 2; nothing else is swallowed.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rtsvc import __version__
from rtsvc.errors import RtsvcError

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("render", "live", "latency", "devices", "info", "serve", "remote", "gui", "train", "export_onnx")


def _available_commands() -> list:
    mods = []
    for name in COMMANDS:
        try:
            mods.append(importlib.import_module(f"rtsvc.cmd_{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"rtsvc.cmd_{name}":
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtsvc",
        description="Real-time singing and speech voice changer for So-VITS-SVC 4.x voices "
        "(and a built-in WORLD voice that needs no downloaded weights).",
    )
    parser.add_argument("--version", action="version", version=f"rtsvc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _available_commands():
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except RtsvcError as exc:
        print(f"rtsvc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rtsvc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

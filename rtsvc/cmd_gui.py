"""``rtsvc gui``: the Qt control panel (needs the `gui` extra: PySide6)."""

from __future__ import annotations

import argparse
import importlib.util

from rtsvc.cli_options import add_backend_options, voice_options
from rtsvc.errors import RtsvcError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "gui",
        help="open the control panel (Qt)",
        description="Open the desktop control panel: pick audio devices and a voice (the built-in voice or a "
        "SoVITS model folder), start/stop live conversion, set pitch and timing, save presets, turn on "
        "remote control, and render files. Needs PySide6 (pip install 'rtsvc[gui]'). Settings are "
        "remembered in the rtsvc config folder ($RTSVC_CONFIG_DIR overrides).",
    )
    p.add_argument("voice", nargs="?", metavar="MODEL",
                   help="a SoVITS model folder (config.json + G_*.pth) or G_*.pth file to load at start "
                   "(default: the voice used last time, else the built-in voice)")
    g = p.add_argument_group("how SoVITS voices run")
    g.add_argument("--device", default="cpu", help="torch device for SoVITS models (cpu, cuda, ...)")
    add_backend_options(g)
    return p


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("PySide6") is None:
        raise RtsvcError("the control panel needs PySide6, which is not installed.",
                         "install the gui extra: pip install 'rtsvc[gui]' (or pip install PySide6-Essentials).")
    from rtsvc.engine.controller import Controller
    from rtsvc.gui.app import run_panel

    controller = Controller()
    try:
        return run_panel(controller, voice=args.voice, voice_options=voice_options(args))
    finally:
        controller.close()

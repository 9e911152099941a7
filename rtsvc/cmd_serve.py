"""``rtsvc serve``: run the live engine headless, controlled over websockets (docs/remote.md)."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from rtsvc.cli_options import add_backend_options, voice_options
from rtsvc.errors import RtsvcError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve",
        help="run the live engine headless with a websocket remote control",
        description="Run the live engine without a window and control it over websockets: from "
        "`rtsvc remote`, a script, or the browser page served on the same port. Binds to 127.0.0.1 "
        "by default (no token). Any other --host needs a token: it is created on first use, stored "
        "with mode 0600 in the rtsvc config folder and printed once. See docs/remote.md.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need the token)")
    p.add_argument("--port", type=int, default=8765, help="port for websockets and the page (default 8765; 0 = any free)")
    p.add_argument("--require-token", action="store_true", help="require the token on 127.0.0.1 too")
    p.add_argument("--token-file", type=Path, metavar="FILE",
                   help="token file (default: remote_token in the rtsvc config folder; created if missing)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="browser origin allowed besides the server's own page, e.g. http://mybox.lan:8765 "
                   "(repeatable; needed for the page when binding to 0.0.0.0)")
    p.add_argument("--tls-cert", type=Path, metavar="PEM", help="TLS certificate (serve wss:// and https://)")
    p.add_argument("--tls-key", type=Path, metavar="PEM", help="TLS private key for --tls-cert")
    p.add_argument("--voice-dir", action="append", type=Path, default=[], metavar="DIR",
                   help="folder whose subfolders (config.json + G_*.pth) are the voices clients may load by "
                   "name (repeatable; default: 'voices' in the rtsvc config folder)")
    p.add_argument("--voice", default="world", metavar="NAME", help="voice to use, by name from the voice folders (default: world, the built-in voice)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="assignments",
                   help="initial live parameter, e.g. --set input_device=USB --set pitch=5 (repeatable)")
    p.add_argument("--start", action="store_true", help="start the audio right away (else a client starts it)")
    g = p.add_argument_group("how SoVITS voices run")
    g.add_argument("--device", default="cpu", help="torch device for SoVITS voices (default cpu)")
    add_backend_options(g, onnx=False)
    p.add_argument("--virtual-input", type=Path, metavar="AUDIO",
                   help="play this audio file through the engine on a virtual clock instead of a sound card "
                   "(to try the server on a machine without audio devices)")
    return p


def _controller(args: argparse.Namespace):
    from rtsvc.engine.controller import Controller

    if args.virtual_input is None:
        return Controller()
    from rtsvc.audio_io import read_audio
    from rtsvc.engine.drivers import VirtualClockDriver

    loaded = read_audio(args.virtual_input)
    driver = VirtualClockDriver(loaded.audio, loaded.sample_rate, tail_seconds=0.5, realtime=True)
    return Controller(driver=driver)


def run(args: argparse.Namespace) -> int:
    from rtsvc.remote.auth import (check_origin, default_token_path, load_or_create_token, needs_token,
                                   server_ssl_context, user_config_dir)
    from rtsvc.remote.client import parse_assignments
    from rtsvc.remote.protocol import RemoteError
    from rtsvc.remote.server import RemoteServer, ServerConfig
    from rtsvc.remote.voices import BUILTIN_VOICE, VoiceLibrary

    if (args.tls_cert is None) != (args.tls_key is None):
        raise RtsvcError("--tls-cert and --tls-key go together.", fix="give both PEM files, or neither.")
    origins = tuple(check_origin(o) for o in args.allow_origin)
    ssl_context = server_ssl_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    token = None
    if needs_token(args.host) or args.require_token:
        token_path = args.token_file or default_token_path()
        token, created = load_or_create_token(token_path)
        if created:
            print(f"new remote token (shown once; saved with mode 0600 in {token_path}):\n  {token}")
        else:
            print(f"clients need the token in {token_path}")
    options = voice_options(args)
    from rtsvc.backends import choose_backend

    # Refuse impossible backend options now (e.g. --fp16 on the CPU), not at a client's first load.
    choose_backend(options["backend"], device=options["device"], fp16=options["fp16"], threads=options["threads"],
                   cuda_graphs=options["cuda_graphs"])
    voices = VoiceLibrary(args.voice_dir or [user_config_dir() / "voices"])
    changes = parse_assignments(args.assignments)
    config = ServerConfig(host=args.host, port=args.port, token=token, allow_origins=origins, ssl_context=ssl_context)

    controller = _controller(args)
    try:
        if changes:
            controller.update(**changes)
        if args.voice != BUILTIN_VOICE:
            try:
                entry = voices.resolve(args.voice)
            except RemoteError as exc:
                raise RtsvcError(f"--voice: {exc.message}") from None
            spec = {"model_path": str(entry.model_path), "config_path": str(entry.config_path), **options}
            controller.load_voice(spec, device=args.device).result()
        if args.start:
            controller.start()
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        server = RemoteServer(controller, config, voices, voice_options=options).start()
        print(f"serving {server.url} (page: {server.page_url}/); voices from "
              f"{', '.join(str(f) for f in voices.folders)}; Ctrl-C stops", flush=True)
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        server.stop()
    finally:
        controller.close()
    print("stopped")
    return 0

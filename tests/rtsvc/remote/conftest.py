"""Fixtures for the remote-control tests.

The engine is the real :class:`rtsvc.engine.controller.Controller` on the virtual-clock driver
(realtime, wall-clock paced) with a pass-through voice and a constant pitch estimator, so the
tests exercise the engine's threads without spending the 2 CPU cores on synthesis. The server is
the real :class:`RemoteServer` on 127.0.0.1 (port 0), and clients are real websockets clients.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from websockets.sync.client import ClientConnection, connect

from pathlib import Path

import numpy as np

from rtsvc.engine.controller import Controller
from rtsvc.engine.drivers import VirtualClockDriver
from rtsvc.engine.voices import VoiceSpec
from rtsvc.params import VoiceParams
from rtsvc.presets import PresetStore
from rtsvc.voice import StreamWindow, Voice

#: Rate of the pass-through voice and the virtual devices (Hz).
TEST_RATE = 16000
#: Seconds of input the virtual clock plays before it stops by itself.
INPUT_SECONDS = 120.0


class PassThroughVoice(Voice):
    """Returns its input (the window's newest samples): cheap, deterministic."""

    def __init__(self, name: str = "world") -> None:
        self.name = name
        self.sample_rate = TEST_RATE
        self.hop_length = 160

    def convert(self, audio: np.ndarray, params: VoiceParams, f0: np.ndarray | None = None) -> np.ndarray:
        return audio.astype(np.float32, copy=True)

    def convert_window(self, window: StreamWindow, params: VoiceParams) -> np.ndarray:
        end = len(window.audio) - window.skip_tail
        return window.audio[end - window.out_samples : end].astype(np.float32, copy=True)


def constant_f0(audio: np.ndarray, sample_rate: int, hop: int, method: str, threshold: float) -> np.ndarray:
    return np.full(len(audio) // hop, 220.0, dtype=np.float32)


def load_test_voice(spec: VoiceSpec) -> Voice:
    """Voice loader: "world" or a SoVITS spec become pass-through voices named after the model."""
    if spec.kind == "world":
        return PassThroughVoice("world")
    return PassThroughVoice(Path(str(spec.model_path)).parent.name)


def make_controller(preset_dir: Path) -> Controller:
    t = np.arange(int(INPUT_SECONDS * TEST_RATE), dtype=np.float32) / TEST_RATE
    audio = (0.3 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    driver = VirtualClockDriver(audio, TEST_RATE, period=320, tail_seconds=0.0, realtime=True)
    return Controller(driver=driver, voice_loader=load_test_voice, estimator=constant_f0,
                      presets=PresetStore(preset_dir))


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[Controller]:
    ctl = make_controller(tmp_path / "presets")
    yield ctl
    ctl.close()


@pytest.fixture
def voice_dir(tmp_path: Path) -> Path:
    """A voice folder with two voices, a broken one (no checkpoint) and a stray file."""
    root = tmp_path / "voices"
    for name, steps in (("alice", (800, 1600)), ("bob", (100,))):
        (root / name).mkdir(parents=True)
        (root / name / "config.json").write_text("{}")
        for step in steps:
            (root / name / f"G_{step}.pth").write_bytes(b"not a real checkpoint")
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text("{}")
    (root / "notes.txt").write_text("not a voice")
    return root


@pytest.fixture
def make_server(controller: Controller, voice_dir: Path):
    """Factory: a started RemoteServer for ``controller`` (config overrides as keywords)."""
    from rtsvc.remote.server import RemoteServer, ServerConfig
    from rtsvc.remote.voices import VoiceLibrary

    servers = []

    def factory(**config: Any) -> RemoteServer:
        config.setdefault("port", 0)
        server = RemoteServer(controller, ServerConfig(**config), VoiceLibrary([voice_dir])).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
        assert not server.serving, "the server thread did not finish within stop()"


@pytest.fixture
def server(make_server):
    return make_server()


class Peer:
    """A raw protocol client for tests: real websockets, JSON in and out, pushes kept aside."""

    def __init__(self, url: str, **connect_args: Any) -> None:
        self.ws: ClientConnection = connect(url, open_timeout=5, max_size=None, compression=None,
                                            **connect_args).__enter__()
        self.pushes: list[dict] = []
        self.hello = self.recv()
        self._id = 0

    def send(self, message: Any) -> None:
        self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    def recv(self, timeout: float = 5.0) -> dict:
        return json.loads(self.ws.recv(timeout=timeout))

    def reply(self, timeout: float = 5.0) -> dict:
        """The next reply (pushes before it go to :attr:`pushes`)."""
        while True:
            msg = self.recv(timeout)
            if msg.get("type") == "reply":
                assert_well_formed_reply(msg)
                return msg
            self.pushes.append(msg)

    def call(self, op: str, **fields: Any) -> dict:
        self._id += 1
        self.send({"id": self._id, "op": op, **fields})
        msg = self.reply()
        assert msg["id"] == self._id
        return msg

    def ok(self, op: str, **fields: Any) -> dict:
        msg = self.call(op, **fields)
        assert msg["ok"], msg
        return msg["result"]

    def error(self, op: str, **fields: Any) -> dict:
        msg = self.call(op, **fields)
        assert not msg["ok"], msg
        return msg["error"]

    def close(self) -> None:
        self.ws.close()


def assert_well_formed_reply(msg: dict) -> None:
    from rtsvc.remote.protocol import ERROR_CODES

    assert msg["type"] == "reply" and isinstance(msg["ok"], bool), msg
    if msg["ok"]:
        assert set(msg) == {"type", "id", "ok", "result"} and isinstance(msg["result"], dict), msg
    else:
        assert set(msg) == {"type", "id", "ok", "error"}, msg
        err = msg["error"]
        assert set(err) == {"code", "message", "field"}, msg
        assert err["code"] in ERROR_CODES and isinstance(err["message"], str) and err["message"], msg
        assert err["field"] is None or isinstance(err["field"], str), msg


@pytest.fixture
def peer(server) -> Iterator[Peer]:
    p = Peer(server.url)
    yield p
    p.close()


@pytest.fixture
def open_peer():
    """Factory: Peer(url, **connect_args), closed at teardown."""
    peers: list[Peer] = []

    def factory(url: str, **connect_args: Any) -> Peer:
        p = Peer(url, **connect_args)
        peers.append(p)
        return p

    yield factory
    for p in peers:
        p.close()

"""A small blocking client for scripts, shells and tests (``rtsvc remote`` uses it).

    with RemoteClient("ws://127.0.0.1:8765") as rc:
        rc.request("set", params={"transpose": 5})
        for status in rc.watch_status(rate_hz=10):
            ...

Pushed messages (``status``, ``params``) that arrive while waiting for a reply are kept in
:attr:`RemoteClient.pushes` (the newest :data:`MAX_KEPT_PUSHES`).
"""

from __future__ import annotations

import collections
import itertools
import json
import ssl
from pathlib import Path
from typing import Any, Iterator

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from rtsvc.errors import RtsvcError
from rtsvc.remote.auth import client_ssl_context
from rtsvc.remote.protocol import MAX_MESSAGE_BYTES, PROTOCOL_VERSION, RemoteError

#: Default server address (``rtsvc serve`` defaults).
DEFAULT_URL = "ws://127.0.0.1:8765"
#: Pushes kept while waiting for replies.
MAX_KEPT_PUSHES = 256


class RemoteClient:
    """Connects, reads the hello, authenticates if the server asks, then sends requests.

    url: ws:// or wss:// address. token: sent when the server requires one. cafile: extra CA (or
    self-signed certificate) for wss://. timeout: seconds to wait for connect and each reply.
    """

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, cafile: Path | None = None,
                 timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self.pushes: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_KEPT_PUSHES)
        self._ids = itertools.count(1)
        ctx: ssl.SSLContext | None = client_ssl_context(cafile) if url.startswith("wss://") else None
        try:
            # __enter__ gives the open connection both with websockets' legacy connect() (returns
            # it) and its newer context-manager form.
            self.ws: ClientConnection = connect(url, ssl=ctx, open_timeout=timeout, max_size=MAX_MESSAGE_BYTES,
                                                compression=None).__enter__()
        except InvalidURI:
            raise RtsvcError(f"{url!r} is not a websocket address.", fix="use ws://HOST:PORT or wss://HOST:PORT.") from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            cause = f" ({type(exc.__cause__).__name__}: {exc.__cause__})" if exc.__cause__ is not None else ""
            raise RtsvcError(f"cannot connect to {url}: {exc}{cause}.",
                             fix="start `rtsvc serve` there, or check --url (and --cafile for wss://).") from None
        self.hello = self._receive()
        if self.hello.get("type") != "hello" or self.hello.get("protocol") != PROTOCOL_VERSION:
            self.close()
            raise RtsvcError(f"{url} speaks protocol {self.hello.get('protocol')!r}, this client speaks "
                             f"{PROTOCOL_VERSION}.", fix="use the same rtsvc version on both sides.")
        if self.hello.get("auth_required"):
            if not token:
                self.close()
                raise RtsvcError(f"{url} requires a token.",
                                 fix="pass --token, --token-file or set RTSVC_TOKEN (the server printed it on first start).")
            self.request("auth", token=token)

    def __enter__(self) -> "RemoteClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.ws.close()

    def _receive(self, timeout: float | None = None) -> dict[str, Any]:
        try:
            raw = self.ws.recv(timeout=self.timeout if timeout is None else timeout)
        except TimeoutError:
            raise RtsvcError(f"{self.url} did not answer within {self.timeout:g} s.") from None
        except ConnectionClosed as exc:
            reason = exc.rcvd.reason if exc.rcvd else "no reason given"
            raise RtsvcError(f"{self.url} closed the connection ({reason}).") from None
        message = json.loads(raw)
        if not isinstance(message, dict):
            raise RtsvcError(f"{self.url} sent something that is not a protocol message.")
        return message

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and return its result; raises :class:`RemoteError` on an error reply."""
        request_id = next(self._ids)
        self.ws.send(json.dumps({"id": request_id, "op": op, **fields}))
        while True:
            message = self._receive()
            if message.get("type") != "reply":
                self.pushes.append(message)
                continue
            if message.get("id") not in (request_id, None):
                continue
            if message.get("ok"):
                return message.get("result", {})
            err = message.get("error") or {}
            raise RemoteError(str(err.get("code")), f"server refused '{op}': {err.get('message')}",
                              err.get("field"), request_id)

    def watch_status(self, rate_hz: float = 10.0) -> Iterator[dict[str, Any]]:
        """Subscribe and yield each pushed status object (forever, until the caller stops)."""
        self.request("subscribe", rate_hz=rate_hz)
        while self.pushes:
            message = self.pushes.popleft()
            if message.get("type") == "status":
                yield message["status"]
        while True:
            message = self._receive(timeout=max(self.timeout, 3.0 / rate_hz))
            if message.get("type") == "status":
                yield message["status"]


#: Friendlier names ``rtsvc remote set`` / ``rtsvc serve --set`` accept (the protocol does not).
PARAM_ALIASES = {"pitch": "transpose", "mix": "cluster_ratio"}


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["pitch=5", "bypass=true", "input_device=USB Mic"]`` -> ``{"transpose": 5, ...}``.

    Values are read as JSON when they parse (numbers, true/false/null, lists), else as strings.
    """
    from rtsvc.remote.protocol import decode_json

    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise RtsvcError(f"{item!r} is not NAME=VALUE.", fix="write e.g. pitch=5 or transpose=-3.5")
        try:
            value: Any = decode_json(text)
        except RemoteError:
            value = text
        out[PARAM_ALIASES.get(name, name)] = value
    return out

"""The websocket server: its own thread and asyncio loop, talking only to the controller.

Threads: the server loop thread (sockets, parsing, status pushes) and one controller thread
that runs :class:`rtsvc.remote.ops.RemoteOps` requests one at a time. Neither is the audio thread
or the engine's worker, so a misbehaving client can cost at most its own connection.

Per connection: a hello first; then, when a token is required, ``auth`` must be the first
request (within ``auth_timeout_s``; a wrong token closes the connection). Every message is
charged to a token bucket (``rate_per_s`` refill, ``rate_burst`` capacity); over the limit the
message is refused with ``rate_limited``. A connection that sends nothing for ``idle_timeout_s``
and has no status subscription is closed (close code 4408). Frames over ``max_message_bytes``
close the connection (1009); binary frames are refused.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest, Response

from rtsvc import __version__
from rtsvc.errors import RtsvcError
from rtsvc.remote.connection import Client, StatusFeed, TokenBucket
from rtsvc.remote.auth import default_origins, http_host, needs_token, token_matches
from rtsvc.remote.ops import PENDING, ControllerLike, RemoteOps
from rtsvc.remote.protocol import (BINARY_NOT_SUPPORTED, CHANGING_OPS, DEFAULT_RATE_HZ, INTERNAL_ERROR,
                                   MAX_MESSAGE_BYTES, MAX_RATE_HZ, MIN_RATE_HZ, PROTOCOL_VERSION, OP_FIELDS,
                                   RATE_LIMITED, UNAUTHORIZED, BAD_VALUE, ENGINE_ERROR, RemoteError, Request,
                                   encode, error_reply, parse_request, reply)
from rtsvc.remote.static_http import is_websocket_upgrade, load_pages, page_response, text_response
from rtsvc.remote.voices import VoiceLibrary

log = logging.getLogger(__name__)

#: Close codes (4000-4999 are application-defined).
CLOSE_UNAUTHORIZED = 4401
CLOSE_IDLE = 4408
#: Seconds a peer gets to finish a closing handshake (or close after an HTTP answer).
CLOSE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ServerConfig:
    """How the server listens and what it allows.

    host/port: bind address (port 0 = any free port). token: required from every client when set;
    mandatory for any host other than 127.0.0.1/::1. allow_origins: extra browser origins beyond
    the server's own page. ssl_context: TLS (wss:// and https://) when set. Limits: message size
    (bytes), per-connection rate (messages/s and burst), idle and auth timeouts (s), connections.
    open_timeout_s: how long the TLS handshake, and then the HTTP upgrade, may each take before the
    server drops the connection (the client then reads "did not receive a valid HTTP response").
    """

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    allow_origins: tuple[str, ...] = ()
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)
    max_message_bytes: int = MAX_MESSAGE_BYTES
    rate_per_s: float = 50.0
    rate_burst: int = 100
    idle_timeout_s: float = 300.0
    auth_timeout_s: float = 10.0
    max_connections: int = 64
    open_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if needs_token(self.host) and not self.token:
            raise RtsvcError(f"binding to {self.host} (not 127.0.0.1) needs an access token.",
                             fix="let `rtsvc serve` create one (it does for any non-default --host) or bind to 127.0.0.1.")
        if not 0 <= self.port <= 65535:
            raise RtsvcError(f"port must be in 0..65535, got {self.port}.", fix="pick a free port such as 8765.")
        for name in ("max_message_bytes", "rate_per_s", "rate_burst", "idle_timeout_s", "auth_timeout_s", "max_connections",
                     "open_timeout_s"):
            if not getattr(self, name) > 0:
                raise RtsvcError(f"{name} must be positive, got {getattr(self, name)!r}.")


class RemoteServer:
    """Serves the protocol (and the browser page) for ``controller`` until :meth:`stop`.
    voices: the only voices clients may load; voice_options: how they run (VoiceSpec fields:
    device, backend, threads, fp16, cuda_graphs)."""

    def __init__(self, controller: ControllerLike, config: ServerConfig, voices: VoiceLibrary,
                 voice_options: dict | None = None) -> None:
        self.config = config
        self.ops = RemoteOps(controller, voices, voice_options)
        self._pages = load_pages()
        self._clients: set[Client] = set()
        self._ctl = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtsvc-remote-ctl")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._origins: frozenset[str] = frozenset()
        self.port = config.port

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "RemoteServer":
        """Bind and serve on a new thread; raises RtsvcError if the address cannot be used."""
        self._thread = threading.Thread(target=self._run, name="rtsvc-remote", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error
        return self

    def stop(self) -> None:
        """Close every connection (1001) and the listening socket; join the thread."""
        if self._loop is not None and self._stopping is not None and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10.0)
        self._ctl.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "RemoteServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        scheme = "wss" if self.config.ssl_context else "ws"
        return f"{scheme}://{http_host(self.config.host)}:{self.port}"

    @property
    def page_url(self) -> str:
        return self.url.replace("ws", "http", 1)

    @property
    def origins(self) -> frozenset[str]:
        return self._origins

    def client_count(self) -> int:
        return len(self._clients)

    @property
    def serving(self) -> bool:
        """True between a successful :meth:`start` and the end of :meth:`stop`."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # bind failures are reported by start(); anything else too
            if not self._ready.is_set():
                self._start_error = exc
        finally:
            self._ready.set()
            loop.close()

    async def _main(self) -> None:
        cfg = self.config
        self._stopping = asyncio.Event()
        try:
            server = await serve(
                self._handle, cfg.host, cfg.port, process_request=self._process_request,
                max_size=cfg.max_message_bytes, compression=None, ssl=cfg.ssl_context,
                ping_interval=20, ping_timeout=20, open_timeout=cfg.open_timeout_s, close_timeout=CLOSE_TIMEOUT_S, logger=log,
            )
        except OSError as exc:
            self._start_error = RtsvcError(
                f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}.",
                fix="pick another --port (or --host), or stop the program that uses it.")
            return
        self.port = server.sockets[0].getsockname()[1]
        self._origins = frozenset(default_origins(cfg.host, self.port, cfg.ssl_context is not None)) | set(cfg.allow_origins)
        self._ready.set()
        await self._stopping.wait()
        server.close()
        await server.wait_closed()

    # -- HTTP -------------------------------------------------------------------------------
    def _process_request(self, conn: ServerConnection, request: HttpRequest) -> Response | None:
        if not is_websocket_upgrade(request.headers):
            return page_response(self._pages, request.path)
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self._origins:
            log.warning("refused a browser connection from origin %r", origin)
            return text_response(http.HTTPStatus.FORBIDDEN, f"Origin {origin} is not allowed (see --allow-origin).\n")
        if len(self._clients) >= self.config.max_connections:
            return text_response(http.HTTPStatus.SERVICE_UNAVAILABLE, "Too many connections.\n")
        return None

    # -- connections ------------------------------------------------------------------------
    def _hello(self, authed: bool) -> dict[str, Any]:
        cfg = self.config
        return {"type": "hello", "protocol": PROTOCOL_VERSION, "server": f"rtsvc {__version__}",
                "auth_required": not authed, "ops": list(OP_FIELDS),
                "limits": {"max_message_bytes": cfg.max_message_bytes, "rate_per_s": cfg.rate_per_s,
                           "rate_burst": cfg.rate_burst, "idle_timeout_s": cfg.idle_timeout_s,
                           "status_rate_hz": [MIN_RATE_HZ, MAX_RATE_HZ]}}

    async def _handle(self, ws: ServerConnection) -> None:
        cfg = self.config
        client = Client(ws, authed=cfg.token is None, bucket=TokenBucket(cfg.rate_per_s, cfg.rate_burst))
        self._clients.add(client)
        try:
            await client.send(self._hello(client.authed))
            while client.close_after is None:
                timeout = cfg.auth_timeout_s if not client.authed else None if client.pump else cfg.idle_timeout_s
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout)
                except asyncio.TimeoutError:  # (not the builtin TimeoutError before Python 3.11)
                    client.close_after = (CLOSE_IDLE, "idle timeout" if client.authed else "no auth in time")
                    break
                answer = await self._answer(client, raw)
                if answer is not None:
                    await client.send(answer)
            if client.close_after is not None:
                await ws.close(*client.close_after)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            client.cancel_tasks()
            await self._unsubscribe(client)

    async def _answer(self, client: Client, raw: str | bytes) -> dict[str, Any] | None:
        """The reply to one frame (never raises for anything the client sent)."""
        if not client.bucket.take():
            return error_reply(None, RATE_LIMITED, f"more than {self.config.rate_per_s:g} messages/s "
                               f"(burst {self.config.rate_burst}); slow down.")
        if isinstance(raw, bytes):
            return error_reply(None, BINARY_NOT_SUPPORTED, "binary frames are not part of the protocol; "
                               "send JSON text frames.")
        request: Request | None = None
        try:
            request = parse_request(raw)
            if request.op == "auth" or not client.authed:
                return self._auth(client, request)
            loop = asyncio.get_running_loop()
            if request.op in ("subscribe", "unsubscribe"):
                return reply(request.id, await self._subscribe(client, request))
            result, event = await loop.run_in_executor(self._ctl, self._run_op, request)
            pending = result.pop(PENDING, None)
            if pending is not None:
                result["description"] = await self._finish_load(pending, request)
                event = await loop.run_in_executor(self._ctl, self.ops.change_event, request.op)
            if event is not None:
                self._broadcast(client, event)
            return reply(request.id, result)
        except RemoteError as exc:
            request_id = exc.request_id if exc.request_id is not None or request is None else request.id
            return error_reply(request_id, exc.code, exc.message, exc.field)
        except Exception:  # a bug: say so to the client, log it, keep serving
            log.exception("remote request failed")
            return error_reply(request.id if request else None, INTERNAL_ERROR, "the server failed on this request (see its log).")

    def _auth(self, client: Client, request: Request) -> dict[str, Any]:
        expected = self.config.token
        if request.op != "auth":
            client.close_after = (CLOSE_UNAUTHORIZED, "unauthorized")
            return error_reply(request.id, UNAUTHORIZED, "this server needs a token: send "
                               "{\"op\": \"auth\", \"token\": ...} first.", "token")
        if expected is not None and not token_matches(expected, request.args["token"]):
            client.close_after = (CLOSE_UNAUTHORIZED, "unauthorized")
            return error_reply(request.id, UNAUTHORIZED, "wrong token; the connection is closed.", "token")
        client.authed = True
        return reply(request.id, {"authenticated": True})

    def _run_op(self, request: Request) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """On the controller thread: the op's result and, for ops that change the engine, the
        push for the other clients (both in one hop)."""
        result = self.ops.run(request)
        changed = request.op in CHANGING_OPS and PENDING not in result
        return result, self.ops.change_event(request.op) if changed else None

    async def _finish_load(self, pending: concurrent.futures.Future, request: Request) -> Any:
        """Wait (on this connection only) for a voice load; its failure becomes an engine_error."""
        try:
            voice = await asyncio.wrap_future(pending)
        except Exception as exc:
            raise RemoteError(ENGINE_ERROR, f"cannot load voice {request.args['name']!r}: {exc}",
                              request_id=request.id) from None
        return voice.describe()

    async def _subscribe(self, client: Client, request: Request) -> dict[str, Any]:
        await self._unsubscribe(client)
        if request.op == "unsubscribe":
            return {"subscribed": False}
        rate = request.args.get("rate_hz", DEFAULT_RATE_HZ)
        if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
            raise RemoteError(BAD_VALUE, f"rate_hz must be in [{MIN_RATE_HZ:g}, {MAX_RATE_HZ:g}], got {rate:g}.", "rate_hz")
        loop = asyncio.get_running_loop()
        feed = StatusFeed(loop)
        feed.unsubscribe = await loop.run_in_executor(self._ctl, self.ops.controller.subscribe, feed.deliver, rate)
        client.feed = feed
        client.pump = loop.create_task(self._pump(client, feed))
        return {"subscribed": True, "rate_hz": rate}

    async def _unsubscribe(self, client: Client) -> None:
        feed, client.feed = client.feed, None
        if client.pump is not None:
            client.pump.cancel()
            client.pump = None
        if feed is not None and feed.unsubscribe is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(self._ctl, feed.unsubscribe)
            except RuntimeError:  # executor already shut down: the server is stopping
                feed.unsubscribe()

    async def _pump(self, client: Client, feed: StatusFeed) -> None:
        """Send each snapshot the controller delivers; a slow client skips to the newest one."""
        seq = 0
        try:
            while True:
                await feed.ready.wait()
                feed.ready.clear()
                seq += 1
                await client.send({"type": "status", "seq": seq, "time": time.time(), "status": feed.latest})
        except (ConnectionClosed, asyncio.CancelledError):
            pass

    def _broadcast(self, origin: Client, message: dict[str, Any]) -> None:
        """Offer ``message`` (encoded once) to every other authenticated client; never blocks."""
        text = encode(message)
        for c in list(self._clients):
            if c is not origin and c.authed:
                c.offer(text)

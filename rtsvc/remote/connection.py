"""Per-connection pieces of the server: rate limit, client state, status feed (loop thread)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from rtsvc.remote.protocol import encode, jsonable

class TokenBucket:
    """Per-connection rate limit: ``rate`` tokens/s refill up to ``burst``; one message = one token."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = float(rate), float(burst)
        self.tokens = float(burst)
        self.last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Client:
    """One connection's state (loop thread only).

    Change pushes are coalesced: while one is being sent, a newer one replaces any waiting one,
    so a slow client (or a burst of changes from many clients) never builds a backlog; the
    client always ends up with the newest parameters.
    """

    def __init__(self, ws: ServerConnection, authed: bool, bucket: TokenBucket) -> None:
        self.ws = ws
        self.authed = authed
        self.bucket = bucket
        self.pump: asyncio.Task | None = None
        self.feed: StatusFeed | None = None
        self.close_after: tuple[int, str] | None = None
        self._offer: str | None = None
        self._offer_task: asyncio.Task | None = None

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(encode(message))

    def offer(self, text: str) -> None:
        """Queue an encoded push, replacing one that is still waiting."""
        self._offer = text
        if self._offer_task is None or self._offer_task.done():
            self._offer_task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._offer is not None:
                text, self._offer = self._offer, None
                await self.ws.send(text)
        except ConnectionClosed:
            pass

    def cancel_tasks(self) -> None:
        for task in (self.pump, self._offer_task):
            if task is not None:
                task.cancel()


class StatusFeed:
    """Bridges controller.subscribe (its status thread) to one connection's pump (the loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ready = asyncio.Event()
        self.latest: dict[str, Any] = {}
        self.unsubscribe: Callable[[], None] | None = None

    def deliver(self, status: Any) -> None:
        """Called by the controller's status thread."""
        data = jsonable(status)
        try:
            self.loop.call_soon_threadsafe(self._set, data)
        except RuntimeError:  # loop closed: the server is gone
            pass

    def _set(self, data: dict[str, Any]) -> None:
        self.latest = data
        self.ready.set()

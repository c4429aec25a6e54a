"""A loopback chat platform on 127.0.0.1, and ``HttpSender``, a Sender that talks to it.

API (JSON):
    POST /messages {"dest": str, "key": str, "payload": {...}} -> 200 {"id": "m1"}
    GET  /messages?dest=D&key=K -> 200 {"messages": [{"id", "dest", "key", "payload"}]}

Faults are programmed on the ``ChatServer`` object from the test (same process):
``rate_limit_once``, ``fail_times``, ``gone``, ``slow``, ``hang_after_store``. Every accepted
post is recorded, duplicates included, so tests can count posts per key.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.delivery import Destination, PermanentSendError, Sent, TransientSendError
from bot.messages import Message, dump_message


@dataclass(frozen=True)
class Posted:
    id: str
    dest: str
    key: str
    payload: dict[str, Any]
    at: float  # loop time when stored


@dataclass
class ChatServer:
    url: str = ""
    posted: list[Posted] = field(default_factory=list)
    attempts: int = 0  # POSTs received, refused ones included
    retry_after_once: float | None = None
    failures_left: int = 0
    failure_status: int = 500
    gone_dests: set[str] = field(default_factory=set)
    delay: float = 0.0
    hang_on_post: int | None = None  # the Nth POST (1-based) is stored, then never answered
    hung: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- programming faults ------------------------------------------------------------

    def rate_limit_once(self, retry_after: float = 1.0) -> None:
        self.retry_after_once = retry_after

    def fail_times(self, n: int, status: int = 500) -> None:
        self.failures_left = n
        self.failure_status = status

    def gone(self, dest: str) -> None:
        self.gone_dests.add(dest)

    def slow(self, seconds: float) -> None:
        self.delay = seconds

    def hang_after_store(self, nth_post: int | None) -> None:
        self.hang_on_post = nth_post

    # -- what arrived --------------------------------------------------------------------

    def count_by_key(self) -> Counter[str]:
        return Counter(p.key for p in self.posted)

    def keys_for(self, dest: str) -> list[str]:
        return [p.key for p in self.posted if p.dest == dest]

    # -- handlers ------------------------------------------------------------------------

    async def post_message(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.json()
        dest, key = str(body["dest"]), str(body["key"])
        if self.delay:
            await asyncio.sleep(self.delay)
        if dest in self.gone_dests:
            return web.json_response({"ok": False, "error": "channel_not_found"}, status=404)
        if self.retry_after_once is not None:
            retry_after, self.retry_after_once = self.retry_after_once, None
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
        if self.failures_left > 0:
            self.failures_left -= 1
            return web.json_response({"ok": False, "error": "internal"}, status=self.failure_status)
        posted = Posted(
            id=f"m{next(self._ids)}",
            dest=dest,
            key=key,
            payload=dict(body.get("payload") or {}),
            at=asyncio.get_running_loop().time(),
        )
        self.posted.append(posted)
        if self.hang_on_post is not None and self.attempts == self.hang_on_post:
            self.hung.set()
            await self._release.wait()  # the client is killed while waiting here
        return web.json_response({"ok": True, "id": posted.id})

    async def find_messages(self, request: web.Request) -> web.Response:
        dest, key = request.query.get("dest", ""), request.query.get("key", "")
        found = [
            {"id": p.id, "dest": p.dest, "key": p.key, "payload": p.payload}
            for p in self.posted
            if p.dest == dest and p.key == key
        ]
        return web.json_response({"ok": True, "messages": found})

    def release(self) -> None:
        self._release.set()


@asynccontextmanager
async def running_chat_server() -> AsyncIterator[ChatServer]:
    server = ChatServer()
    app = web.Application()
    app.router.add_post("/messages", server.post_message)
    app.router.add_get("/messages", server.find_messages)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        server.release()
        await runner.cleanup()


class HttpSender:
    """A Sender over the chat server's HTTP API, mapping its answers as an adapter would."""

    def __init__(self, base_url: str, *, platform: str = "test", timeout: float = 10.0) -> None:
        self.platform = platform
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.finds = 0

    async def send(self, dest: Destination, message: Message, idempotency_key: str) -> Sent:
        body = {"dest": dest.ref, "key": idempotency_key, "payload": dump_message(message)}
        async with aiohttp.ClientSession(timeout=self.timeout) as http:
            try:
                response = await http.post(f"{self.base_url}/messages", json=body)
            except aiohttp.ClientConnectorError as exc:
                # Nothing reached the platform: safe to simply retry.
                raise TransientSendError(f"cannot connect: {exc}") from exc
            async with response:
                data = await response.json()
                return _sent_or_raise(response, data)

    async def find_sent(self, dest: Destination, idempotency_key: str) -> str | None:
        self.finds += 1
        params = {"dest": dest.ref, "key": idempotency_key}
        async with (
            aiohttp.ClientSession(timeout=self.timeout) as http,
            http.get(f"{self.base_url}/messages", params=params) as response,
        ):
            response.raise_for_status()
            data = await response.json()
        messages = data.get("messages") or []
        return str(messages[0]["id"]) if messages else None


def _sent_or_raise(response: aiohttp.ClientResponse, data: dict[str, Any]) -> Sent:
    if response.status == 200:
        return Sent(message_id=str(data["id"]))
    error = str(data.get("error", f"HTTP {response.status}"))
    if response.status == 429:
        retry_after = float(response.headers.get("Retry-After", "1"))
        raise TransientSendError(error, retry_after=retry_after)
    if response.status >= 500:
        raise TransientSendError(f"{error} (HTTP {response.status})")
    raise PermanentSendError(error)

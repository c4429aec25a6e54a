"""A programmable feed server on 127.0.0.1 for tests that cross real HTTP.

Usage in a test module:

    from tests.feedserver import FeedServer, running_feed_server

    @pytest.fixture
    async def server() -> AsyncIterator[FeedServer]:
        async with running_feed_server() as s:
            yield s

or register this module as a plugin (`pytest_plugins = ["tests.feedserver"]` in
conftest) and take the `feed_server` fixture. Routes are exact paths; unknown paths
answer 404. The server records every request and how many were in flight per Host.
"""

from __future__ import annotations

import asyncio
import gzip
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SAMPLE_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>Sample AI desk</title><link>http://example.test/</link>
<description>Loopback test feed</description>
<item><title>Meta ships a new Llama model</title><link>http://example.test/llama</link>
<guid>http://example.test/llama</guid><pubDate>Tue, 23 Jul 2024 15:00:00 GMT</pubDate>
<description>Meta released an open-weights model.</description></item>
</channel></rss>
"""


@dataclass(frozen=True)
class Hit:
    path: str
    host: str
    headers: Mapping[str, str]


@dataclass
class FeedServer:
    host: str = "127.0.0.1"
    port: int = 0
    routes: dict[str, Handler] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    bytes_sent: Counter[str] = field(default_factory=Counter)
    finished: set[str] = field(default_factory=set)
    in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight_total: int = 0

    def url(self, path: str, *, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def hits_for(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    def add(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def static(
        self,
        path: str,
        body: bytes = SAMPLE_RSS,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            if delay:
                await asyncio.sleep(delay)
            return web.Response(body=body, status=status, headers=dict(headers or {}))

        self.add(path, handler)

    def redirect(self, path: str, location: str, *, status: int = 302) -> None:
        self.static(path, b"", status=status, headers={"Location": location})

    def conditional(
        self,
        path: str,
        body: bytes = SAMPLE_RSS,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> None:
        """Answer 304 when the client presents the validator it was given, else 200."""
        validators = {"ETag": etag, "Last-Modified": last_modified}
        headers = {name: value for name, value in validators.items() if value is not None}

        async def handler(request: web.Request) -> web.StreamResponse:
            fresh = (etag is not None and request.headers.get("If-None-Match") == etag) or (
                last_modified is not None
                and request.headers.get("If-Modified-Since") == last_modified
            )
            if fresh:
                return web.Response(status=304, headers=headers)
            return web.Response(body=body, headers=headers)

        self.add(path, handler)

    def stream(self, path: str, total: int, *, chunk: int = 64 * 1024) -> None:
        """Stream `total` bytes without Content-Length, counting what actually went out."""

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
            await response.prepare(request)
            block = b"x" * chunk
            try:
                while self.bytes_sent[path] < total:
                    await response.write(block)
                    self.bytes_sent[path] += len(block)
                await response.write_eof()
            except ConnectionResetError:  # the client hung up: what we want to observe
                return response
            self.finished.add(path)
            return response

        self.add(path, handler)

    def gzip_bomb(self, path: str, inflated: int) -> int:
        """Serve `inflated` zero bytes gzip-compressed; return the compressed size."""
        packed = gzip.compress(b"\0" * inflated, compresslevel=9)
        self.static(path, packed, headers={"Content-Encoding": "gzip"})
        return len(packed)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        host = request.host.rsplit(":", 1)[0]
        self.hits.append(Hit(request.path, host, dict(request.headers)))
        self.in_flight[host] += 1
        self.max_in_flight[host] = max(self.max_in_flight[host], self.in_flight[host])
        self.max_in_flight_total = max(self.max_in_flight_total, sum(self.in_flight.values()))
        try:
            handler = self.routes.get(request.path)
            if handler is None:
                return web.Response(status=404, text="no such route")
            return await handler(request)
        finally:
            self.in_flight[host] -= 1


@asynccontextmanager
async def running_feed_server(host: str = "127.0.0.1") -> AsyncIterator[FeedServer]:
    server = FeedServer(host=host)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server._dispatch)
    # Cancel handlers whose client went away, so slow routes never delay teardown.
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    server.port = runner.addresses[0][1]
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    async with running_feed_server() as server:
        yield server

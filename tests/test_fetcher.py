"""The fetcher against a real loopback HTTP server."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web

from bot import fetcher as fetcher_module
from bot.fetch_policy import USER_AGENT, FetchPolicy
from bot.fetcher import Fetcher, FetchResult
from bot.ssrf import Allowlist, parse_allowlist
from tests.feedserver import SAMPLE_RSS, FeedServer, running_feed_server

MB = 1024 * 1024
LOOPBACK = parse_allowlist("127.0.0.1")
FAST = FetchPolicy(connect_timeout=1.0, read_timeout=0.5, total_timeout=3.0)


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with running_feed_server() as s:
        yield s


class Tracer:
    """Records every connection and request the client's session starts."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.connections = 0
        self.config = aiohttp.TraceConfig()
        self.config.on_request_start.append(self._request)
        self.config.on_connection_create_start.append(self._connection)

    async def _request(self, _s: object, _c: SimpleNamespace, params: object) -> None:
        self.requests.append(str(getattr(params, "url", "")))

    async def _connection(self, _s: object, _c: SimpleNamespace, _p: object) -> None:
        self.connections += 1


async def fetch(
    url: str,
    *,
    policy: FetchPolicy = FAST,
    allowlist: Allowlist = LOOPBACK,
    tracer: Tracer | None = None,
    **validators: str,
) -> FetchResult:
    traces = [tracer.config] if tracer else []
    async with Fetcher(policy, allowlist, trace_configs=traces) as fetcher:
        return await fetcher.fetch(url, **validators)


def error_kind(result: FetchResult) -> str | None:
    return result.error.kind if result.error else None


# -- conditional GET ------------------------------------------------------------------


async def test_etag_round_trip_gives_body_then_not_modified(server: FeedServer) -> None:
    server.conditional("/feed", etag='"v1"')
    async with Fetcher(FAST, LOOPBACK) as fetcher:
        first = await fetcher.fetch(server.url("/feed"))
        second = await fetcher.fetch(server.url("/feed"), etag=first.etag)

    assert (first.status, first.body, first.etag, first.not_modified) == (
        200,
        SAMPLE_RSS,
        '"v1"',
        False,
    )
    assert second.error is None
    assert (second.status, second.not_modified, second.body) == (304, True, None)
    assert server.hits[1].headers["If-None-Match"] == '"v1"'
    assert all(hit.headers["User-Agent"] == USER_AGENT for hit in server.hits)


async def test_last_modified_round_trip(server: FeedServer) -> None:
    stamp = "Tue, 23 Jul 2024 15:00:00 GMT"
    server.conditional("/feed", last_modified=stamp)
    first = await fetch(server.url("/feed"))
    second = await fetch(server.url("/feed"), last_modified=first.last_modified or "")

    assert first.body == SAMPLE_RSS and first.last_modified == stamp
    assert second.not_modified and second.body is None
    assert server.hits[1].headers["If-Modified-Since"] == stamp
    assert "If-Modified-Since" not in server.hits[0].headers


# -- redirects ------------------------------------------------------------------------


async def test_permanent_redirects_are_reported_for_the_stored_url(server: FeedServer) -> None:
    server.redirect("/old", "/older-still", status=301)
    server.redirect("/older-still", server.url("/feed"), status=308)
    server.static("/feed")
    result = await fetch(server.url("/old"))

    assert result.error is None and result.body == SAMPLE_RSS
    assert result.final_url == server.url("/feed")
    assert result.permanent_redirect == server.url("/feed")


async def test_temporary_hop_ends_the_permanent_part(server: FeedServer) -> None:
    server.redirect("/a", "/b", status=301)
    server.redirect("/b", "/feed", status=302)
    server.static("/feed")
    result = await fetch(server.url("/a"))

    assert result.body == SAMPLE_RSS
    assert result.permanent_redirect == server.url("/b")
    temporary = await fetch(server.url("/b"))
    assert temporary.body == SAMPLE_RSS and temporary.permanent_redirect is None


async def test_five_hops_are_followed_six_are_refused(server: FeedServer) -> None:
    server.static("/feed")
    for n in range(1, 7):
        server.redirect(f"/r{n}", "/feed" if n == 1 else f"/r{n - 1}")

    five = await fetch(server.url("/r5"))
    assert five.error is None and five.body == SAMPLE_RSS

    six = await fetch(server.url("/r6"))
    assert error_kind(six) == "too_many_redirects"
    assert six.body is None
    assert len(server.hits_for("/feed")) == 1  # only the five-hop fetch got there


async def test_redirect_loop_is_detected(server: FeedServer) -> None:
    server.redirect("/a", "/b")
    server.redirect("/b", "/a")
    result = await fetch(server.url("/a"))

    assert error_kind(result) == "redirect_loop"
    assert result.error is not None and not result.error.transient
    assert [hit.path for hit in server.hits] == ["/a", "/b"]


async def test_credentials_never_appear_in_error_messages(server: FeedServer) -> None:
    server.redirect("/a", "/a")
    result = await fetch(server.url("/a").replace("http://", "http://reader:s3cret@"))

    assert error_kind(result) == "redirect_loop"
    assert result.error is not None and "s3cret" not in result.error.message


# -- SSRF -----------------------------------------------------------------------------

PRIVATE_TARGETS = [
    "http://10.0.0.1/feed",
    "http://169.254.169.254/latest/meta-data/",
    "http://192.168.1.1:8080/rss",
    "http://[::ffff:10.0.0.1]/feed",
    "http://[fd00::1]/feed",
    "http://0.0.0.0/feed",
]


@pytest.mark.parametrize("target", PRIVATE_TARGETS)
async def test_redirect_to_private_address_is_refused_before_connecting(
    server: FeedServer, target: str
) -> None:
    server.redirect("/feed", target)
    tracer = Tracer()
    result = await fetch(server.url("/feed"), tracer=tracer)

    assert error_kind(result) == "ssrf"
    assert result.body is None
    assert tracer.requests == [server.url("/feed")]  # the private hop was never requested
    assert tracer.connections == 1


@pytest.mark.parametrize("target", PRIVATE_TARGETS)
async def test_private_feed_url_is_refused_outright(target: str) -> None:
    tracer = Tracer()
    result = await fetch(target, tracer=tracer)

    assert error_kind(result) == "ssrf"
    assert tracer.requests == [] and tracer.connections == 0


async def test_localhost_redirect_allowed_only_when_loopback_is_allowlisted(
    server: FeedServer,
) -> None:
    server.static("/feed")
    server.redirect("/to-name", server.url("/feed", host="localhost"))
    server.redirect("/to-ip", server.url("/feed"))

    # Loopback allowlisted (both families, wherever localhost resolves to): followed.
    allowed = await fetch(server.url("/to-name"), allowlist=parse_allowlist("127.0.0.1, ::1"))
    assert allowed.error is None and allowed.body == SAMPLE_RSS
    assert server.hits[-1].host == "localhost"

    # Nothing allowlisted: the name resolves to loopback and is refused.
    refused = await fetch(server.url("/feed", host="localhost"), allowlist=Allowlist.empty())
    assert error_kind(refused) == "ssrf"

    # Allowlisting the name "localhost" does not allowlist 127.0.0.1 itself.
    by_name = parse_allowlist("localhost")
    crossed = await fetch(server.url("/to-ip", host="localhost"), allowlist=by_name)
    assert error_kind(crossed) == "ssrf"
    assert len(server.hits_for("/feed")) == 1


async def test_connect_time_check_stands_even_if_the_first_check_was_fooled(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name looked public when vetted, resolves private on connect."""

    async def fooled(url: object, allowlist: object) -> None:
        return None

    monkeypatch.setattr(fetcher_module, "vet_url", fooled)
    server.static("/feed")
    result = await fetch(server.url("/feed", host="localhost"), allowlist=Allowlist.empty())

    assert error_kind(result) == "ssrf"
    assert server.hits == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/feed.xml",
        "javascript:alert(1)",
        "gopher://127.0.0.1:70/",
        "/relative/feed.xml",
        "http://",
        "",
    ],
)
async def test_non_http_urls_are_refused(url: str) -> None:
    tracer = Tracer()
    result = await fetch(url, tracer=tracer)

    assert error_kind(result) == "bad_url"
    assert result.error is not None and not result.error.transient
    assert tracer.requests == []


# -- statuses and hints ---------------------------------------------------------------


async def test_429_with_retry_after_seconds(server: FeedServer) -> None:
    server.static("/feed", b"slow down", status=429, headers={"Retry-After": "120"})
    result = await fetch(server.url("/feed"))

    assert error_kind(result) == "http_status" and result.status == 429
    assert result.error is not None and result.error.transient
    assert result.hints.retry_after == timedelta(seconds=120)
    assert result.body is None


async def test_503_with_retry_after_http_date(server: FeedServer) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    server.static("/feed", status=503, headers={"Retry-After": later})
    result = await fetch(server.url("/feed"))

    assert result.status == 503 and error_kind(result) == "http_status"
    assert result.hints.retry_after is not None
    assert abs(result.hints.retry_after - timedelta(hours=1)) < timedelta(seconds=5)


async def test_cache_hints_are_captured(server: FeedServer) -> None:
    expires = "Wed, 01 Jan 2031 00:00:00 GMT"
    headers = {"Cache-Control": "public, max-age=900", "Expires": expires}
    server.static("/feed", headers=headers)
    result = await fetch(server.url("/feed"))

    assert result.hints.max_age == timedelta(minutes=15)
    assert result.hints.expires == datetime(2031, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("status", "transient"), [(500, True), (404, False), (410, False)])
async def test_error_statuses(server: FeedServer, status: int, transient: bool) -> None:
    server.static("/feed", b"<html>oops</html>", status=status)
    result = await fetch(server.url("/feed"))

    assert result.error is not None
    assert (result.error.kind, result.error.transient, result.status) == (
        "http_status",
        transient,
        status,
    )
    assert str(status) in result.error.message and result.body is None


# -- time and size --------------------------------------------------------------------


async def test_server_slower_than_read_timeout(server: FeedServer) -> None:
    server.static("/feed", delay=3.0)
    result = await fetch(server.url("/feed"))

    assert error_kind(result) == "timeout"
    assert result.error is not None and result.error.transient
    assert result.elapsed_s < 1.5


async def test_trickling_server_hits_the_total_timeout(server: FeedServer) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(100):  # each byte arrives well inside the read timeout
            await response.write(b"<")
            await asyncio.sleep(0.1)
        return response

    server.add("/feed", trickle)
    policy = FetchPolicy(read_timeout=0.5, total_timeout=1.0)
    started = time.monotonic()
    result = await fetch(server.url("/feed"), policy=policy)

    assert error_kind(result) == "timeout"
    assert time.monotonic() - started < 2.0


async def test_fifty_megabyte_body_is_refused_early(server: FeedServer) -> None:
    server.stream("/big", 50 * MB)
    result = await fetch(server.url("/big"))
    await asyncio.sleep(0.2)  # let the server notice the client hung up

    assert error_kind(result) == "too_large"
    assert result.body is None and "bytes" in (result.error.message if result.error else "")
    assert "/big" not in server.finished
    assert server.bytes_sent["/big"] < 25 * MB
    assert result.elapsed_s < 3.0


async def test_declared_oversize_body_is_refused_without_reading(server: FeedServer) -> None:
    server.static("/big", b"x" * (2 * MB))
    result = await fetch(server.url("/big"), policy=FetchPolicy(max_body_bytes=MB))

    assert error_kind(result) == "too_large"


async def test_gzip_bomb_is_refused(server: FeedServer) -> None:
    compressed = server.gzip_bomb("/bomb", 32 * MB)
    result = await fetch(server.url("/bomb"))

    assert compressed < MB  # small on the wire, so only the inflated count can catch it
    assert error_kind(result) == "too_large"
    assert result.body is None


async def test_gzip_encoded_feed_is_inflated(server: FeedServer) -> None:
    server.static("/feed", gzip.compress(SAMPLE_RSS), headers={"Content-Encoding": "gzip"})
    result = await fetch(server.url("/feed"))

    assert result.error is None and result.body == SAMPLE_RSS


# -- concurrency ----------------------------------------------------------------------


async def test_global_and_per_host_limits_hold(server: FeedServer) -> None:
    server.static("/feed", delay=0.15)
    policy = FetchPolicy(concurrency=3, per_host=2)
    urls = [server.url("/feed", host=h) for h in ("127.0.0.1", "localhost") for _ in range(5)]
    async with Fetcher(policy, parse_allowlist("127.0.0.1,::1")) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(url) for url in urls))

    assert all(r.error is None for r in results)
    assert server.max_in_flight["127.0.0.1"] == 2
    assert server.max_in_flight["localhost"] == 2
    assert server.max_in_flight_total == 3


async def test_one_slow_host_does_not_block_another(server: FeedServer) -> None:
    server.static("/slow", delay=0.4)
    server.static("/fast")
    policy = FetchPolicy(concurrency=4, per_host=1, read_timeout=2.0)
    async with Fetcher(policy, parse_allowlist("127.0.0.1,::1")) as fetcher:
        slow = [
            asyncio.create_task(fetcher.fetch(server.url("/slow", host="localhost")))
            for _ in range(2)
        ]
        await asyncio.sleep(0.05)
        fast = await fetcher.fetch(server.url("/fast"))
        assert fast.error is None and fast.elapsed_s < 0.3
        await asyncio.gather(*slow)


async def test_fetch_outside_the_context_manager_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="context manager"):
        await Fetcher(FAST, LOOPBACK).fetch("http://127.0.0.1:9/feed")

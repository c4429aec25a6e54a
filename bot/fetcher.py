"""Fetch feeds over HTTP as if every server were hostile.

One `Fetcher` owns one aiohttp session. Each fetch is a conditional GET with redirects
followed by hand (every hop re-vetted by the SSRF guard), a body cap counted after
decompression, connect/read/total timeouts and global plus per-host concurrency limits.
`fetch()` never raises for anything a server or URL can cause: the result carries a
typed `FetchError` instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

import aiohttp
from yarl import URL

from bot.fetch_policy import NO_HINTS, FetchHints, FetchPolicy, parse_hints
from bot.ssrf import Allowlist, GuardedResolver, GuardRefusal, vet_url

log = logging.getLogger(__name__)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchError:
    kind: str
    message: str
    transient: bool


@dataclass(frozen=True)
class FetchResult:
    url: str
    final_url: str
    status: int | None
    body: bytes | None
    not_modified: bool
    etag: str | None
    last_modified: str | None
    permanent_redirect: str | None
    hints: FetchHints
    error: FetchError | None
    elapsed_s: float
    content_type: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


class _Failure(Exception):
    def __init__(self, kind: str, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.error = FetchError(kind, message, transient)


@dataclass
class _Progress:
    """What one fetch has learned so far; survives a failure half-way."""

    current: URL
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    hints: FetchHints = NO_HINTS
    permanent_redirect: str | None = None


class Fetcher:
    """Async context manager; use one per process and share it between feeds."""

    def __init__(
        self,
        policy: FetchPolicy,
        allowlist: Allowlist,
        *,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        self._policy = policy
        self._allowlist = allowlist
        self._trace_configs = list(trace_configs)
        self._global = asyncio.Semaphore(policy.concurrency)
        self._per_host: dict[str, asyncio.Semaphore] = {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        policy = self._policy
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self._allowlist),
            use_dns_cache=False,  # every connection re-vets what the name resolves to now
            limit=policy.concurrency,
            limit_per_host=policy.per_host,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=policy.connect_timeout,
                sock_connect=policy.connect_timeout,
                sock_read=policy.read_timeout,
            ),
            headers={"User-Agent": policy.user_agent, "Accept": ACCEPT},
            cookie_jar=aiohttp.DummyCookieJar(),
            trace_configs=self._trace_configs or None,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        if self._session is None:
            raise RuntimeError("use Fetcher as an async context manager")
        started = time.monotonic()
        error: FetchError | None = None
        progress = _Progress(current=URL())
        try:
            progress.current = _parse_url(url)
            await self._follow(progress, _conditional_headers(etag, last_modified))
        except _Failure as failure:
            error = failure.error
        except Exception as exc:  # one broken feed must never take the fetch loop down
            log.exception("unexpected error fetching %s", _redact(progress.current))
            error = FetchError("internal", f"unexpected {type(exc).__name__}", transient=True)
        return _result(url, progress, error, time.monotonic() - started)

    async def _follow(self, progress: _Progress, conditional: dict[str, str]) -> None:
        budget = self._policy.total_timeout
        seen = {_key(progress.current)}
        still_permanent = True
        for hop in range(self._policy.max_redirects + 1):
            budget -= await self._request(progress, conditional, budget)
            if progress.status not in REDIRECTS:
                return
            target = _redirect_target(progress)
            if _key(target) in seen:
                raise _Failure(
                    "redirect_loop", f"redirect loop at {_redact(target)}", transient=False
                )
            if hop == self._policy.max_redirects:
                message = f"more than {self._policy.max_redirects} redirects"
                raise _Failure("too_many_redirects", message, transient=False)
            still_permanent = still_permanent and progress.status in PERMANENT_REDIRECTS
            if still_permanent:
                progress.permanent_redirect = str(target)
            seen.add(_key(target))
            progress.current = target

    async def _request(
        self, progress: _Progress, conditional: dict[str, str], budget: float
    ) -> float:
        """One hop: vet, wait for slots, GET within the remaining budget; return time used."""
        url = progress.current
        await _vet(url, self._allowlist, self._policy.connect_timeout)
        async with self._host_slot(url), self._global:
            started = time.monotonic()
            try:
                async with asyncio.timeout(max(budget, 0.0)):
                    await self._exchange(progress, conditional)
            except TimeoutError as exc:
                raise _Failure("timeout", "the server took too long", transient=True) from exc
            except GuardRefusal as refusal:
                raise _Failure(refusal.kind, refusal.message, transient=False) from refusal
            except aiohttp.ClientConnectorError as exc:
                raise _connector_failure(exc) from exc
            except aiohttp.InvalidURL as exc:
                raise _Failure("bad_url", "the URL is not valid", transient=False) from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise _Failure("network", _describe(exc), transient=True) from exc
            return time.monotonic() - started

    async def _exchange(self, progress: _Progress, conditional: dict[str, str]) -> None:
        assert self._session is not None
        async with self._session.get(
            progress.current, headers=conditional, allow_redirects=False
        ) as response:
            progress.status = response.status
            progress.headers = response.headers
            progress.hints = parse_hints(response.headers, datetime.now(UTC))
            progress.body = None
            if 200 <= response.status < 300:
                progress.body = await _read_capped(response, self._policy.max_body_bytes)
            elif response.status != 304 and response.status not in REDIRECTS:
                raise _Failure(
                    "http_status",
                    f"the server answered HTTP {response.status}",
                    transient=response.status in TRANSIENT_STATUSES,
                )

    def _host_slot(self, url: URL) -> asyncio.Semaphore:
        host = (url.host or "").lower()
        slot = self._per_host.get(host)
        if slot is None:
            slot = self._per_host[host] = asyncio.Semaphore(self._policy.per_host)
        return slot


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """Stream the (decompressed) body and stop as soon as it passes the cap."""
    too_large = _Failure("too_large", f"the feed is larger than {cap} bytes", transient=False)
    if response.content_length is not None and response.content_length > cap:
        response.close()
        raise too_large
    body = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK):
        if len(body) + len(chunk) > cap:
            response.close()  # drop the connection instead of draining the rest
            raise too_large
        body += chunk
    return bytes(body)


async def _vet(url: URL, allowlist: Allowlist, time_limit: float) -> None:
    try:
        async with asyncio.timeout(time_limit):
            await vet_url(url, allowlist)
    except TimeoutError as exc:
        raise _Failure("timeout", f"resolving {url.host} took too long", transient=True) from exc
    except GuardRefusal as refusal:
        raise _Failure(refusal.kind, refusal.message, transient=False) from refusal
    except OSError as exc:
        raise _Failure("network", f"could not resolve {url.host}", transient=True) from exc


def _parse_url(raw: str) -> URL:
    try:
        url = URL(raw.strip())
    except (ValueError, TypeError) as exc:
        raise _Failure("bad_url", "the URL is not valid", transient=False) from exc
    return url.with_fragment(None) if url.is_absolute() else url


def _redirect_target(progress: _Progress) -> URL:
    location = progress.headers.get("Location")
    if not location:
        message = f"HTTP {progress.status} redirect without a Location"
        raise _Failure("http_status", message, transient=False)
    try:
        return progress.current.join(URL(location.strip())).with_fragment(None)
    except (ValueError, TypeError) as exc:
        raise _Failure(
            "bad_url", "the redirect Location is not a valid URL", transient=False
        ) from exc


def _connector_failure(exc: aiohttp.ClientConnectorError) -> _Failure:
    cause = exc.os_error
    if isinstance(cause, GuardRefusal):
        return _Failure(cause.kind, cause.message, transient=False)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return _Failure("network", f"could not resolve {exc.host}", transient=True)
    return _Failure("network", f"could not connect to {exc.host}", transient=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the server sent a broken body"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "the server sent a malformed response"
    return f"network error ({type(exc).__name__})"


def _conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _result(url: str, progress: _Progress, error: FetchError | None, elapsed: float) -> FetchResult:
    headers = progress.headers
    ok = error is None
    return FetchResult(
        url=url,
        final_url=str(progress.current) if progress.current.is_absolute() else url,
        status=progress.status,
        body=progress.body if ok else None,
        not_modified=ok and progress.status == 304,
        etag=headers.get("ETag"),
        last_modified=headers.get("Last-Modified"),
        permanent_redirect=progress.permanent_redirect,
        hints=progress.hints,
        error=error,
        elapsed_s=elapsed,
        content_type=headers.get("Content-Type"),
    )


def _key(url: URL) -> str:
    return str(url.with_fragment(None))


def _redact(url: URL) -> str:
    """A URL safe for logs and messages: no user name or password."""
    try:
        return str(url.with_user(None)) if url.is_absolute() else str(url)
    except ValueError:
        return "<invalid URL>"

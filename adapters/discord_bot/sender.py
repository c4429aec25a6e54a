"""The Discord ``Sender``: posts rendered messages over Discord's REST API, for the outbox.

Each part of a message carries a ``nonce`` derived from the idempotency key with
``enforce_nonce`` (Discord answers a repeat within a few minutes with the message it
already has) and a ``ref`` marker in its last footer, which ``find_sent`` looks for in
the channel's recent messages after a crash. Alerts by direct message open the DM
channel first (POST /users/@me/channels).

Failures map to what the outbox should do: 429 and refused requests (502, 503, no
connection) are ``TransientSendError``; Forbidden, unknown channel or user, DMs closed and
refused payloads are ``PermanentSendError``. Anything where Discord may have stored the
message (500, 504, a dropped connection, a timeout) propagates, so the outbox checks
with ``find_sent`` before sending again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp

from adapters.discord_bot.embeds import marker_id, markers_in, render, with_marker
from bot.delivery import Destination, PermanentSendError, Sent, TransientSendError
from bot.messages import Message

log = logging.getLogger(__name__)
T = TypeVar("T")

PLATFORM = "discord"
DEFAULT_API = "https://discord.com/api/v10"
HISTORY_LIMIT = 50
DMS_CLOSED = 50007
REFUSED_STATUSES = frozenset({502, 503})
PERMANENT_REASONS = {
    10003: "unknown channel",
    10013: "unknown user",
    50001: "the bot has no access to this channel",
    50013: "the bot lacks a permission in this channel (Send Messages, Embed Links?)",
    DMS_CLOSED: "this user does not accept direct messages from the bot "
    "(privacy settings or no shared server)",
}


class DiscordHTTPError(Exception):
    def __init__(self, status: int, code: int, message: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status} (code {code}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class UnclearSend(Exception):
    """Discord answered in a way that does not say whether it stored the message."""


class DiscordRest:
    """The few REST calls the sender makes, with the bot token, on one aiohttp session."""

    def __init__(self, token: str, base_url: str = DEFAULT_API, *, timeout: float = 20.0) -> None:
        self._token = token
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        session = self._session_now()
        headers = {"Authorization": f"Bot {self._token}", "User-Agent": "briefbot (discord.py)"}
        async with session.request(
            method, self.base_url + path, json=json, params=params, headers=headers
        ) as response:
            body: Any = await _body(response)
            if response.status < 300:
                return body
            raise _http_error(response, body)

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _body(response: aiohttp.ClientResponse) -> Any:
    if response.content_type == "application/json":
        return await response.json()
    return await response.text()


def _http_error(response: aiohttp.ClientResponse, body: Any) -> DiscordHTTPError:
    info = body if isinstance(body, dict) else {}
    retry_after: float | None = None
    raw = info.get("retry_after", response.headers.get("Retry-After"))
    try:
        retry_after = float(raw) if raw is not None else None
    except (TypeError, ValueError):
        retry_after = None
    code = info.get("code")
    message = str(info.get("message", ""))[:200]
    return DiscordHTTPError(
        response.status, code if isinstance(code, int) else 0, message, retry_after
    )


def classify(exc: DiscordHTTPError) -> TransientSendError | PermanentSendError | UnclearSend:
    if exc.status == 429:
        return TransientSendError("rate limited", exc.retry_after)
    if exc.status in REFUSED_STATUSES:
        return TransientSendError(f"Discord unavailable (HTTP {exc.status})", exc.retry_after)
    if exc.status >= 500:
        return UnclearSend(str(exc))
    reason = PERMANENT_REASONS.get(exc.code)
    return PermanentSendError(reason or f"Discord refused the message: {exc}")


def nonce(idempotency_key: str, part: int) -> str:
    """At most 25 characters, the same for every attempt at one part of one message."""
    return hashlib.sha256(f"{idempotency_key}#{part}".encode()).hexdigest()[:25]


class DiscordSender:
    platform = PLATFORM

    def __init__(self, rest: DiscordRest) -> None:
        self.rest = rest
        self._dm_channels: dict[str, str] = {}
        self.dms_closed: set[str] = set()  # users whose DMs refused us, for a hint in chat

    async def send(self, dest: Destination, message: Message, idempotency_key: str) -> Sent:
        payloads = render(message)
        channel = await self._call(self._channel_of(dest), dest)
        first: str | None = None
        for part, payload in enumerate(payloads, start=1):
            body = with_marker(payload, idempotency_key, part, len(payloads))
            body.update(nonce=nonce(idempotency_key, part), enforce_nonce=True)
            path = f"/channels/{channel}/messages"
            posted = await self._call(self.rest.request("POST", path, json=body), dest)
            first = first or str(posted["id"])
        if dest.direct:
            self.dms_closed.discard(dest.ref)  # they opened their DMs again
        return Sent(message_id=f"{channel}:{first}")

    async def find_sent(self, dest: Destination, idempotency_key: str) -> str | None:
        """The first message of a completely posted send under this key, if any."""
        try:
            channel = await self._call(self._channel_of(dest), dest)
            recent = await self._call(
                self.rest.request(
                    "GET", f"/channels/{channel}/messages", params={"limit": str(HISTORY_LIMIT)}
                ),
                dest,
            )
        except PermanentSendError:
            return None  # nothing can be found where we cannot look
        return _first_of_complete_send(channel, recent, idempotency_key)

    async def _channel_of(self, dest: Destination) -> str:
        if not dest.direct:
            return dest.ref
        cached = self._dm_channels.get(dest.ref)
        if cached is None:
            opened = await self.rest.request(
                "POST", "/users/@me/channels", json={"recipient_id": dest.ref}
            )
            cached = self._dm_channels[dest.ref] = str(opened["id"])
        return cached

    async def _call(self, pending: Awaitable[T], dest: Destination) -> T:
        try:
            return await pending
        except DiscordHTTPError as exc:
            problem = classify(exc)
            if dest.direct and exc.code == DMS_CLOSED:
                self.dms_closed.add(dest.ref)
                log.info("direct message to a user refused: DMs closed (Discord 50007)")
            raise problem from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransientSendError(f"cannot reach Discord: {type(exc).__name__}") from exc

    async def close(self) -> None:
        await self.rest.close()


def _first_of_complete_send(channel: str, recent: Any, idempotency_key: str) -> str | None:
    """The id of part 1 when every part posted under this key is among ``recent``."""
    wanted = marker_id(idempotency_key)
    parts: dict[int, str] = {}
    count = 0
    for item in recent if isinstance(recent, list) else []:
        for found, part, total in markers_in(item):
            if found == wanted:
                parts[part] = str(item["id"])
                count = total
    if count and all(p in parts for p in range(1, count + 1)):
        return f"{channel}:{parts[1]}"
    return None

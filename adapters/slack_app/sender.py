"""The Slack ``Sender``: posts rendered messages with chat.postMessage, for the outbox.

Each message carries its idempotency key in Slack message metadata so ``find_sent`` can
spot it in conversations.history after a crash. Long messages go out as a parent plus
thread replies, at most one post per second per channel. Slack's own retry handlers
absorb short 429s and 5xx; whatever is left becomes TransientSendError or
PermanentSendError for the outbox to act on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack_app.blocks import Payload, render
from bot.delivery import Destination, PermanentSendError, Sent, TransientSendError
from bot.messages import Message

log = logging.getLogger(__name__)
# slack_sdk logs whole request and response bodies at DEBUG, oauth.v2.access answers
# (tokens) included: the Web API clients log through this logger, never below INFO.
web_log = logging.getLogger("briefbot.slack.web")
web_log.setLevel(logging.INFO)

EVENT_TYPE = "briefbot_message"
HISTORY_LIMIT = 200
TokenLookup = Callable[[str], Awaitable[str | None]]
"""Workspace (team) id -> the bot token to use there, or None if not installed."""

PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "account_inactive",
        "invalid_auth",
        "token_revoked",
        "token_expired",
        "not_authed",
        "missing_scope",
        "no_permission",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "restricted_action",
        "team_access_not_granted",
        "invalid_blocks",
        "invalid_metadata_format",
        "msg_too_long",
        "too_many_attachments",
        "invalid_arguments",
    }
)
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def make_client(base_url: str, token: str | None = None) -> AsyncWebClient:
    """An AsyncWebClient on ``base_url`` that retries connection errors, 429 and 5xx once."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=30,
        logger=web_log,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=1),
            AsyncServerErrorRetryHandler(max_retry_count=1),
        ],
    )


def classify(exc: Exception) -> TransientSendError | PermanentSendError:
    """What a failed Web API call means for the outbox."""
    if not isinstance(exc, SlackApiError):
        return TransientSendError(f"network: {type(exc).__name__}")
    status = exc.response.status_code
    error = str(exc.response.get("error") or f"http_{status}")
    if status == 429 or error == "ratelimited":
        return TransientSendError("ratelimited", _retry_after(exc.response.headers))
    if status >= 500 or error in TRANSIENT_ERRORS:
        return TransientSendError(error)
    if error in PERMANENT_ERRORS:
        return PermanentSendError(error)
    return PermanentSendError(error)


def _retry_after(headers: dict[str, Any]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return float(raw)
            except (TypeError, ValueError):
                return None
    return None


class Pacer:
    """At most one post per ``interval`` seconds per channel."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, channel: str) -> None:
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            delay = self._next.get(channel, 0.0) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next[channel] = time.monotonic() + self.interval


@dataclass
class _Progress:
    """A multi-part message partly posted: where the parent is and how many parts went out."""

    channel: str
    parent_ts: str
    posted: int


class SlackSender:
    platform = "slack"

    def __init__(self, tokens: TokenLookup, base_url: str, *, pace: float = 1.0) -> None:
        self._tokens = tokens
        self._base_url = base_url
        self._clients: dict[str, AsyncWebClient] = {}
        self._pacer = Pacer(pace)
        self._progress: dict[tuple[str, str, str], _Progress] = {}

    async def send(self, dest: Destination, message: Message, idempotency_key: str) -> Sent:
        client = await self._client(dest.workspace)
        payloads = render(message)
        try:
            channel, ts = await self.post(client, dest, payloads, idempotency_key)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise classify(exc) from exc
        return Sent(message_id=f"{channel}:{ts}")

    async def post(
        self, client: AsyncWebClient, dest: Destination, payloads: list[Payload], key: str
    ) -> tuple[str, str]:
        """Post the parent then its thread replies; resumes a send that failed part way."""
        slot = (dest.workspace, dest.ref, key)
        progress = self._progress.get(slot)
        if progress is None:
            channel, ts = await self._post_one(client, dest.ref, payloads[0], key, None)
            progress = self._progress[slot] = _Progress(channel, ts, 1)
        for part in range(progress.posted, len(payloads)):
            await self._post_one(client, progress.channel, payloads[part], key, progress.parent_ts)
            progress.posted = part + 1
        del self._progress[slot]
        return progress.channel, progress.parent_ts

    async def _post_one(
        self,
        client: AsyncWebClient,
        channel: str,
        payload: Payload,
        key: str,
        thread_ts: str | None,
    ) -> tuple[str, str]:
        await self._pacer.wait(channel)
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        response = await client.chat_postMessage(
            channel=channel,
            text=payload["text"],
            blocks=payload["blocks"],
            metadata={"event_type": EVENT_TYPE, "event_payload": {"key": key}},
            unfurl_links=False,
            unfurl_media=False,
            **extra,
        )
        return str(response["channel"]), str(response["ts"])

    async def find_sent(self, dest: Destination, idempotency_key: str) -> str | None:
        client = await self._client(dest.workspace)
        try:
            channel = await self._channel_of(client, dest)
            history = await client.conversations_history(
                channel=channel, limit=HISTORY_LIMIT, include_all_metadata=True
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            problem = classify(exc)
            if isinstance(problem, TransientSendError):
                raise problem from exc
            return None  # nothing can be found where we cannot look
        for item in history.get("messages") or []:
            metadata = item.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == EVENT_TYPE and payload.get("key") == idempotency_key:
                return f"{channel}:{item['ts']}"
        return None

    async def _channel_of(self, client: AsyncWebClient, dest: Destination) -> str:
        if not dest.direct:
            return dest.ref
        opened = await client.conversations_open(users=dest.ref)
        return str(opened["channel"]["id"])

    async def _client(self, workspace: str) -> AsyncWebClient:
        token = await self._tokens(workspace)
        if not token:
            raise PermanentSendError(f"briefbot is not installed in Slack workspace {workspace}")
        client = self._clients.get(token)
        if client is None:
            client = self._clients[token] = make_client(self._base_url, token)
        return client

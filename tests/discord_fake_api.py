"""A loopback fake of Discord's REST API, and interaction payloads as Discord sends them.

The fake answers what the bot calls (login, application info, command sync, interaction
callbacks, follow-ups, DM channels, channel messages), records every call, and checks
every outgoing message against Discord's limits and for ``allowed_mentions`` that parse
nothing. Tests inspect ``violations`` (must stay empty) and can queue failures per route.
It emulates ``enforce_nonce``: a repeated nonce in one channel returns the first message.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

APP_ID = "900000000000000001"
BOT_ID = "900000000000000002"
GUILD_ID = "900000000000000100"
CHANNEL_ID = "900000000000000200"
MANAGE_GUILD = 1 << 5
EVERYDAY = (1 << 10) | (1 << 11)  # View Channel, Send Messages

LIMITS = {
    "content": 2000,
    "title": 256,
    "description": 4096,
    "field_name": 256,
    "field_value": 1024,
    "fields": 25,
    "footer": 2048,
    "author": 256,
    "embeds": 10,
    "total": 6000,
}


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def message_problems(payload: dict[str, Any]) -> list[str]:
    """What Discord would refuse (or what would ping someone) in a message payload."""
    problems: list[str] = []
    if payload.get("allowed_mentions") != {"parse": []}:
        problems.append(f"allowed_mentions is {payload.get('allowed_mentions')!r}")
    content = payload.get("content") or ""
    if units(content) > LIMITS["content"]:
        problems.append(f"content of {units(content)}")
    embeds = payload.get("embeds") or []
    if len(embeds) > LIMITS["embeds"]:
        problems.append(f"{len(embeds)} embeds")
    total = 0
    for embed in embeds:
        sizes = {
            "title": units(embed.get("title", "")),
            "description": units(embed.get("description", "")),
            "footer": units((embed.get("footer") or {}).get("text", "")),
            "author": units((embed.get("author") or {}).get("name", "")),
        }
        fields = embed.get("fields") or []
        if len(fields) > LIMITS["fields"]:
            problems.append(f"{len(fields)} fields")
        for item in fields:
            for part, limit in (("name", "field_name"), ("value", "field_value")):
                size = units(item.get(part, ""))
                if size > LIMITS[limit] or not item.get(part):
                    problems.append(f"field {part} of {size}")
                total += size
        problems += [f"{k} of {v}" for k, v in sizes.items() if v > LIMITS[k]]
        total += sum(sizes.values())
    if total > LIMITS["total"]:
        problems.append(f"embeds total {total}")
    if not content and not embeds:
        problems.append("empty message")
    for row in payload.get("components") or []:
        for button in row.get("components", []):
            if len(button.get("custom_id", "")) > 100 or len(button.get("label", "")) > 80:
                problems.append(f"button {button!r}")
    return problems


@dataclass
class Call:
    method: str
    path: str
    body: Any
    query: dict[str, str]


@dataclass
class Failure:
    status: int
    code: int = 0
    message: str = "failure"
    retry_after: float | None = None


@dataclass
class FakeDiscord:
    application: dict[str, Any] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    channels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(910000000000000000))

    async def start(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_route("*", "/api/v10/{path:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/v10"

    # --- what tests look at ------------------------------------------------------------

    def of(self, method: str, prefix: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.startswith(prefix)]

    def fail(self, method: str, prefix: str, *failures: Failure) -> None:
        self.failures.setdefault(f"{method} {prefix}", []).extend(failures)

    async def wait_for(
        self, method: str, prefix: str, count: int = 1, within: float = 5.0
    ) -> list[Call]:
        deadline = time.monotonic() + within
        while len(self.of(method, prefix)) < count:
            if time.monotonic() > deadline:
                seen = [f"{c.method} {c.path}" for c in self.calls]
                raise AssertionError(f"expected {count} {method} {prefix}, saw {seen}")
            await asyncio.sleep(0.01)
        return self.of(method, prefix)

    def replies(self) -> list[dict[str, Any]]:
        """Follow-up payloads, in order."""
        return [c.body for c in self.of("POST", "/webhooks/")]

    # --- handlers ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        body = await _body(request)
        self.calls.append(Call(request.method, path, body, dict(request.query)))
        for key, queued in self.failures.items():
            method, prefix = key.split(" ", 1)
            if queued and method == request.method and path.startswith(prefix):
                return failure_response(queued.pop(0))
        return self._answer(request.method, path, body, dict(request.query))

    def _answer(self, method: str, path: str, body: Any, query: dict[str, str]) -> web.Response:
        if (method, path) == ("GET", "/users/@me"):
            return _json(_user(BOT_ID, "briefbot", bot=True))
        if (method, path) == ("GET", "/oauth2/applications/@me"):
            return _json(self._application())
        if method == "PUT" and path.startswith(f"/applications/{APP_ID}/"):
            return _json([_registered(c, n) for n, c in enumerate(body or [])])
        if method == "POST" and path.startswith("/interactions/"):
            return self._callback(path, body)
        if method == "POST" and path.startswith(f"/webhooks/{APP_ID}/"):
            self._check("follow-up", body)
            return _json(self._message(body.get("channel_id", CHANNEL_ID), body))
        if (method, path) == ("POST", "/users/@me/channels"):
            return _json({"id": f"7{body['recipient_id']}"[:19], "type": 1})
        if path.startswith("/channels/") and path.endswith("/messages"):
            channel = path.split("/")[2]
            if method == "GET":
                kept = list(reversed(self.channels.get(channel, [])))
                return _json(kept[: int(query.get("limit", "50"))])
            return self._post_message(channel, body)
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _callback(self, path: str, body: dict[str, Any]) -> web.Response:
        kind = body.get("type")
        data = body.get("data") or {}
        if kind == 4:
            self._check("interaction reply", data)
        if kind == 8 and len(data.get("choices", [])) > 25:
            self.violations.append("more than 25 autocomplete choices")
        interaction_id = path.split("/")[2]
        answer = {
            "interaction": {
                "id": interaction_id,
                "type": 2,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool((data.get("flags") or 0) & 64),
            },
            "resource": {"type": kind},
        }
        return _json(answer)

    def _post_message(self, channel: str, body: dict[str, Any]) -> web.Response:
        self._check(f"message in {channel}", body)
        stored = self.channels.setdefault(channel, [])
        if body.get("enforce_nonce") and body.get("nonce"):
            for old in stored:
                if old.get("nonce") == body["nonce"]:
                    return _json(old)
        message = self._message(channel, body)
        stored.append(message)
        return _json(message)

    def _check(self, where: str, payload: dict[str, Any]) -> None:
        self.violations.extend(f"{where}: {p}" for p in message_problems(payload))

    def _message(self, channel: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(next(self._ids)),
            "channel_id": channel,
            "type": 0,
            "content": body.get("content") or "",
            "author": _user(BOT_ID, "briefbot", bot=True),
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "timestamp": "2024-07-23T09:00:00+00:00",
            "edited_timestamp": None,
            "flags": body.get("flags") or 0,
            "nonce": body.get("nonce"),
        }

    def _application(self) -> dict[str, Any]:
        return {
            "id": APP_ID,
            "name": "briefbot",
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": _user("900000000000000003", "owner"),
            "verify_key": "0" * 64,
            "flags": 0,
            **self.application,
        }


def _json(data: Any, status: int = 200) -> web.Response:
    """JSON with Discord's exact content type (discord.py compares it as a whole)."""
    body = json.dumps(data).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})


async def _body(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    if request.content_type == "application/json":
        return await request.json()
    if request.content_type.startswith("multipart/"):
        raise web.HTTPBadRequest(text="the bot sent no files; multipart is unexpected")
    return await request.text()


def failure_response(failure: Failure) -> web.Response:
    body: dict[str, Any] = {"message": failure.message, "code": failure.code}
    if failure.retry_after is not None:
        body["retry_after"] = failure.retry_after
    return _json(body, status=failure.status)


def _registered(command: dict[str, Any], number: int) -> dict[str, Any]:
    return {
        "id": str(920000000000000000 + number),
        "application_id": APP_ID,
        "version": "1",
        "default_member_permissions": None,
        "dm_permission": True,
        "nsfw": False,
        **command,
    }


def _user(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "bot": bot,
    }


# --- interactions as Discord sends them (INTERACTION_CREATE) --------------------------------

_interaction_ids = itertools.count(930000000000000000)


def interaction(
    kind: int,
    data: dict[str, Any],
    *,
    user_id: str = "800000000000000001",
    permissions: int = EVERYDAY,
    guild_id: str | None = GUILD_ID,
    channel_id: str = CHANNEL_ID,
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An interaction payload: 2 application command, 3 component, 4 autocomplete."""
    number = next(_interaction_ids)
    payload: dict[str, Any] = {
        "id": str(number),
        "application_id": APP_ID,
        "type": kind,
        "data": data,
        "token": f"token-{number}",
        "version": 1,
        "channel_id": channel_id,
        "channel": _channel(channel_id, guild_id, permissions),
        "app_permissions": str(EVERYDAY),
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": 8 * 1024 * 1024,
        "authorizing_integration_owners": {"0": guild_id or "0"},
        "context": 0 if guild_id else 1,
    }
    if message is not None:
        payload["message"] = message
    user = _user(user_id, f"user{user_id[-3:]}")
    if guild_id:
        payload["guild_id"] = guild_id
        payload["guild_locale"] = "en-US"
        payload["member"] = {
            "user": user,
            "roles": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str(permissions),
        }
    else:
        payload["user"] = user
    return payload


def _channel(channel_id: str, guild_id: str | None, permissions: int) -> dict[str, Any]:
    if not guild_id:
        return {"id": channel_id, "type": 1, "recipients": [], "last_message_id": None}
    return {
        "id": channel_id,
        "type": 0,
        "guild_id": guild_id,
        "name": "news",
        "position": 0,
        "parent_id": None,
        "topic": None,
        "nsfw": False,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
        "permissions": str(permissions),
    }


def command(
    name: str, *path: str, options: dict[str, Any] | None = None, focused: str | None = None
) -> dict[str, Any]:
    """``data`` of a slash command: ``command("brief", "feeds", "add", options={...})``."""
    leaf = [
        {"name": k, "type": 3, "value": v, **({"focused": True} if k == focused else {})}
        for k, v in (options or {}).items()
    ]
    for part in reversed(path):
        leaf = [{"name": part, "type": 1 if part == path[-1] else 2, "options": leaf}]
    return {"id": "920000000000000000", "name": name, "type": 1, "options": leaf}


def component(custom_id: str) -> dict[str, Any]:
    return {"custom_id": custom_id, "component_type": 2}

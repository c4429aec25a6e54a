"""A loopback fake of the Slack Web API, plus helpers to talk to a Bolt app as Slack does.

The fake answers the methods the bot uses, records every call (Web API and response_url),
checks every outgoing message against Block Kit's limits and against unescaped mrkdwn
control sequences, and can be told to fail the next calls of a method (429, 5xx, errors).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from bot.config import Settings

MESSAGE_METHODS = {"chat.postMessage", "chat.postEphemeral", "response_url"}
_OUR_LINK = re.compile(r"<https?://[^<>|\s]+(?:\|[^<>]*)?>")


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None


@dataclass
class Failure:
    status: int = 200
    error: str | None = None
    retry_after: int | None = None


@dataclass
class FakeSlack:
    team_id: str = "T1"
    bot_user_id: str = "UBOT"
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    installs: dict[str, dict[str, Any]] = field(default_factory=dict)
    socket_acks: list[dict[str, Any]] = field(default_factory=list)
    _socket: web.WebSocketResponse | None = None
    _runner: web.AppRunner | None = None
    _port: int = 0
    _ts: int = 0

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_get("/socket", self._socket_mode)
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
        return f"http://127.0.0.1:{self._port}/api/"

    def response_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._port}/response/{name}"

    # --- what tests look at ----------------------------------------------------------------

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def fail(self, method: str, *failures: Failure) -> None:
        self.failures.setdefault(method, []).extend(failures)

    async def wait_for(self, method: str, count: int = 1, within: float = 5.0) -> list[Call]:
        deadline = time.monotonic() + within
        while len(self.of(method)) < count:
            if time.monotonic() > deadline:
                seen = [c.method for c in self.calls]
                raise AssertionError(f"expected {count} {method} call(s), saw {seen}")
            await asyncio.sleep(0.01)
        return self.of(method)

    async def push(self, envelope: dict[str, Any], within: float = 5.0) -> None:
        """Send a Socket Mode envelope once the bot has connected."""
        deadline = time.monotonic() + within
        while self._socket is None:
            if time.monotonic() > deadline:
                raise AssertionError("the bot never opened a Socket Mode connection")
            await asyncio.sleep(0.01)
        await self._socket.send_json(envelope)

    # --- handlers ------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _read_args(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") or args.get("token")
        queued = self.failures.get(method)
        if queued:
            failure = queued.pop(0)
            self.calls.append(Call(f"{method}!failed", args, token))
            return _failure_response(failure)
        self.calls.append(Call(method, args, token))
        if method in MESSAGE_METHODS:
            self._check_message(method, args)
        if method == "views.publish":
            view = _maybe_json(args.get("view"))
            self.violations.extend(f"views.publish: {p}" for p in block_kit_problems(view, 100))
        return web.json_response(self._answer(method, args))

    async def _response_url(self, request: web.Request) -> web.Response:
        args = await request.json()
        args["_name"] = request.match_info["name"]
        self.calls.append(Call("response_url", args, None))
        self._check_message("response_url", args)
        return web.Response(text="ok")

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}}
        await socket.send_json(hello)
        self._socket = socket
        async for frame in socket:
            if frame.type == WSMsgType.TEXT:
                self.socket_acks.append(json.loads(frame.data))
        return socket

    def _check_message(self, method: str, args: dict[str, Any]) -> None:
        payload = {"text": args.get("text"), "blocks": _maybe_json(args.get("blocks"))}
        self.violations.extend(f"{method}: {p}" for p in block_kit_problems(payload))

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "bot_id": "B1",
                "url": "https://fake.slack.example/",
            }
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/socket"}
        if method == "users.info":
            user = self.users.get(str(args.get("user")))
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": {"id": args["user"], **user}}
        if method == "chat.postMessage":
            return self._post(args)
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args.get("users", "X"))}}
        if method == "conversations.history":
            messages = list(reversed(self.history.get(str(args.get("channel")), [])))
            if str(args.get("include_all_metadata")).lower() not in ("true", "1"):
                messages = [{k: v for k, v in m.items() if k != "metadata"} for m in messages]
            return {"ok": True, "messages": messages[: int(args.get("limit", 100))]}
        if method == "oauth.v2.access":
            install = self.installs.get(str(args.get("code")))
            return install if install else {"ok": False, "error": "invalid_code"}
        return {"ok": True}

    def _post(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args["channel"])
        if channel.startswith("U"):
            channel = "D" + channel
        self._ts += 1
        ts = f"1700000000.{self._ts:06d}"
        message = {"type": "message", "ts": ts, "text": args.get("text")}
        metadata = _maybe_json(args.get("metadata"))
        if metadata:
            message["metadata"] = metadata
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        else:
            self.history.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}


async def _read_args(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    body = await request.read()
    if not body:
        return args
    if request.content_type == "application/json":
        args.update(json.loads(body))
    else:
        args.update(parse_qsl(body.decode()))
    return args


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def _failure_response(failure: Failure) -> web.Response:
    headers = {}
    if failure.retry_after is not None:
        headers["Retry-After"] = str(failure.retry_after)
    body = {"ok": False, "error": failure.error or "failed"}
    return web.json_response(body, status=failure.status, headers=headers)


# --- Block Kit limits -----------------------------------------------------------------------


def block_kit_problems(payload: Any, max_blocks: int = 50) -> list[str]:
    """Everything in a message or view payload that Slack would reject or that could ping."""
    problems: list[str] = []
    if not isinstance(payload, dict):
        return [f"payload is not an object: {payload!r:.80}"]
    text = payload.get("text")
    if "type" not in payload:  # a message, not a view: the fallback text is required
        if not isinstance(text, str) or not text.strip():
            problems.append("missing text fallback")
        else:
            problems.extend(mrkdwn_problems(text))
    blocks = payload.get("blocks") or []
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks > {max_blocks}")
    for index, block in enumerate(blocks):
        problems.extend(f"block {index}: {p}" for p in _block_problems(block))
    return problems


def mrkdwn_problems(text: str) -> list[str]:
    rest = _OUR_LINK.sub("", text)
    if "<" in rest or ">" in rest:
        return [f"unescaped control characters in {text[:120]!r}"]
    return []


def _text_problems(obj: Any, limit: int, kind: str | None = None) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [f"bad text object {obj!r:.80}"]
    problems = []
    if kind and obj.get("type") != kind:
        problems.append(f"text type {obj.get('type')} != {kind}")
    if not obj["text"]:
        problems.append("empty text")
    if len(obj["text"]) > limit:
        problems.append(f"text of {len(obj['text'])} > {limit}")
    if obj.get("type") == "mrkdwn":
        problems.extend(mrkdwn_problems(obj["text"]))
    return problems


def _element_problems(element: dict[str, Any]) -> list[str]:
    problems = []
    if element.get("type") == "button":
        problems += _text_problems(element.get("text"), 75, "plain_text")
        if len(element.get("action_id", "")) > 255:
            problems.append("action_id > 255")
        if len(element.get("value", "")) > 2000:
            problems.append("value > 2000")
    return problems


def _block_problems(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    problems: list[str] = []
    if len(block.get("block_id", "")) > 255:
        problems.append("block_id > 255")
    if kind == "header":
        problems += _text_problems(block.get("text"), 150, "plain_text")
    elif kind == "section":
        problems += _text_problems(block.get("text"), 3000)
        if "accessory" in block:
            problems += _element_problems(block["accessory"])
    elif kind == "context":
        elements = block.get("elements", [])
        if not 1 <= len(elements) <= 10:
            problems.append(f"context with {len(elements)} elements")
        for element in elements:
            problems += _text_problems(element, 3000)
    elif kind == "actions":
        elements = block.get("elements", [])
        if not 1 <= len(elements) <= 25:
            problems.append(f"actions with {len(elements)} elements")
        for element in elements:
            problems += _element_problems(element)
    elif kind != "divider":
        problems.append(f"unexpected block type {kind}")
    return problems


# --- talking to a Bolt app the way Slack does --------------------------------------------------


def signed_headers(
    secret: str, body: str, content_type: str, timestamp: int | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


_SLACK_FIELDS = (
    "slack_bot_token",
    "slack_app_token",
    "slack_signing_secret",
    "slack_client_id",
    "slack_client_secret",
)


def slack_settings(**values: Any) -> Settings:
    """Settings from ``values`` only: no .env file, no SLACK_* variables from the shell."""
    given = {name: None for name in _SLACK_FIELDS} | {"admin_users": ""} | values
    return Settings(_env_file=None, **given)  # type: ignore[call-arg]

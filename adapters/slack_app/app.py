"""Bolt wiring: slash commands, buttons and the App Home, over Socket Mode or HTTP.

Every listener acks at once and does its work afterwards (Bolt lazy listeners), so Slack's
three-second deadline holds however slow a lookup is. Commands run through the
platform-neutral command layer; answers come back as ephemeral replies on the response
URL, except a digest, which is posted in the channel.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, Protocol

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine

from adapters.slack_app import home, oauth
from adapters.slack_app.blocks import SUBSCRIBE_ACTION, UNSUBSCRIBE_ACTION, render
from adapters.slack_app.sender import SlackSender, TokenLookup, make_client
from bot.commands import Caller, Request
from bot.commands.requests import (
    DigestOff,
    DigestSchedule,
    DigestShow,
    ListSubscriptions,
    ListThemes,
    Subscribe,
    Unsubscribe,
)
from bot.config import Settings
from bot.delivery import Destination
from bot.messages import Digest, Message, Notice

log = logging.getLogger(__name__)

Mode = Literal["socket", "http", "oauth"]
Respond = Callable[..., Awaitable[Any]]
AdapterTask = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
PLATFORM = "slack"
ADMIN_TTL_S = 600.0
MAX_REPLIES = 5  # a response URL takes five messages


class Commands(Protocol):
    """The command layer (``bot.commands.CommandHandler``)."""

    async def handle_text(self, caller: Caller, command: str, text: str) -> Message: ...

    async def handle(self, caller: Caller, request: Request) -> Message: ...


def slack_mode(settings: Settings) -> Mode | None:
    """Which way to run, from the credentials present; None when Slack is not configured."""
    if settings.slack_app_token and settings.slack_bot_token:
        return "socket"
    if settings.slack_signing_secret and settings.slack_bot_token:
        return "http"
    if settings.slack_signing_secret and settings.slack_client_id and settings.slack_client_secret:
        return "oauth"
    return None


class AdminCheck:
    """Workspace admins and owners (users.info), plus BRIEFBOT_ADMIN_USERS; cached."""

    def __init__(self, listed: str, ttl: float = ADMIN_TTL_S) -> None:
        self._listed = {e.strip() for e in re.split(r"[,\s]+", listed) if e.strip()}
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[bool, float]] = {}

    async def is_admin(self, client: AsyncWebClient, team: str, user: str) -> bool:
        if self._listed & {user, f"slack:{user}", f"{team}:{user}", f"slack:{team}:{user}"}:
            return True
        hit = self._cache.get((team, user))
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        try:
            info = (await client.users_info(user=user))["user"]
        except SlackApiError as exc:
            log.warning("users.info failed for an admin check: %s", exc.response.get("error"))
            return False
        admin = bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
        self._cache[(team, user)] = (admin, time.monotonic() + self._ttl)
        return admin


class SlackAdapter:
    """The Slack side of one bot process: the Bolt app, the sender, how to run it."""

    def __init__(
        self, app: AsyncApp, sender: SlackSender, mode: Mode, app_token: str | None = None
    ) -> None:
        self.app = app
        self.sender = sender
        self.mode = mode
        self._app_token = app_token

    def web_routes(self) -> list[web.RouteDef]:
        """The HTTP endpoints (events, and OAuth when installing); none in Socket Mode."""
        if self.mode == "socket":
            return []
        routes = [web.post("/slack/events", self._events)]
        if self.app.oauth_flow is not None:
            flow = self.app.oauth_flow
            routes.append(web.get(flow.install_path, self._install))
            routes.append(web.get(flow.redirect_uri_path, self._oauth_redirect))
        return routes

    def web_app(self) -> web.Application:
        """A standalone aiohttp app: the Slack routes plus ``/healthz``."""
        application = web.Application()
        application.add_routes([web.get("/healthz", _healthz), *self.web_routes()])
        return application

    def tasks(self, http_port: int | None = None, host: str = "0.0.0.0") -> list[AdapterTask]:
        """For ``BotRuntime(tasks=...)``: each runs until the stop event is set.

        Socket Mode: the connection to Slack. HTTP mode: a server on ``http_port`` with
        ``web_app()``, if the runtime does not serve ``web_routes()`` itself.
        """
        found: list[AdapterTask] = []
        if self.mode == "socket" and self._app_token:
            token = self._app_token
            found.append(lambda stop: self._socket_mode(token, stop))
        elif http_port is not None:
            found.append(lambda stop: self._serve_http(stop, host, http_port))
        return found

    def coroutines(self) -> list[Coroutine[Any, Any, None]]:
        """The Socket Mode connection as a coroutine that runs until cancelled."""
        if self.mode == "socket" and self._app_token:
            return [self._socket_mode(self._app_token, asyncio.Event())]
        return []

    async def _socket_mode(self, app_token: str, stop: asyncio.Event) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(self.app, app_token)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        try:
            await stop.wait()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]

    async def _serve_http(self, stop: asyncio.Event, host: str, port: int) -> None:
        runner = web.AppRunner(self.web_app())
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("Slack HTTP mode listening on %s:%d", host, port)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    async def _events(self, request: web.Request) -> web.Response:
        bolt_response = await self.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def _install(self, request: web.Request) -> web.Response:
        assert self.app.oauth_flow is not None
        answer = await self.app.oauth_flow.handle_installation(await to_bolt_request(request))
        return await to_aiohttp_response(answer)

    async def _oauth_redirect(self, request: web.Request) -> web.Response:
        assert self.app.oauth_flow is not None
        answer = await self.app.oauth_flow.handle_callback(await to_bolt_request(request))
        return await to_aiohttp_response(answer)


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def build_slack(
    settings: Settings,
    commands: Commands,
    *,
    engine: Engine | None = None,
    pace: float = 1.0,
) -> SlackAdapter:
    """The Slack adapter for ``settings``; ``engine`` (the bot's database) is needed for OAuth."""
    mode = slack_mode(settings)
    if mode is None:
        raise ValueError("Slack is not configured: see 'Connect to Slack' in README.md")
    base_url = settings.slack_api_url
    client = make_client(base_url)
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    if mode == "oauth":
        if engine is None:
            raise ValueError("Slack OAuth needs the bot's database engine")
        assert settings.slack_client_id and settings.slack_client_secret
        installs = oauth.ThreadedInstallationStore(engine, settings.slack_client_id)
        app = AsyncApp(
            signing_secret=secret,
            client=client,
            oauth_settings=oauth.oauth_settings(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret.get_secret_value(),
                installations=installs,
                state_store=oauth.ThreadedStateStore(engine),
            ),
        )
        tokens: TokenLookup = installs.bot_token
    else:
        assert settings.slack_bot_token is not None
        bot_token = settings.slack_bot_token.get_secret_value()
        client.token = bot_token
        app = AsyncApp(
            signing_secret=secret,
            client=client,  # carries the bot token
            request_verification_enabled=mode == "http",
        )
        tokens = _fixed_token(bot_token)
    sender = SlackSender(tokens, base_url, pace=pace)
    Listeners(commands, AdminCheck(settings.admin_users), sender).register(app)
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
    return SlackAdapter(app, sender, mode, app_token)


def _fixed_token(token: str) -> TokenLookup:
    async def lookup(_workspace: str) -> str | None:
        return token

    return lookup


class Listeners:
    """What the bot does for each Slack request; registered on a Bolt app."""

    def __init__(self, commands: Commands, admins: AdminCheck, sender: SlackSender) -> None:
        self.commands = commands
        self.admins = admins
        self.sender = sender

    def register(self, app: AsyncApp) -> None:
        for name in ("/claim", "/brief"):
            app.command(name)(ack=_ack, lazy=[self.on_command])
        app.action(SUBSCRIBE_ACTION)(ack=_ack, lazy=[self.on_subscribe])
        app.action(UNSUBSCRIBE_ACTION)(ack=_ack, lazy=[self.on_unsubscribe])
        app.action(home.CHANNEL_ACTION)(ack=_ack, lazy=[self.on_home_channel])
        app.action(home.DIGEST_ON_ACTION)(ack=_ack, lazy=[self.on_digest_change])
        app.action(home.DIGEST_OFF_ACTION)(ack=_ack, lazy=[self.on_digest_change])
        app.event("app_home_opened")(self.on_home_opened)

    async def caller(
        self, client: AsyncWebClient, team: str, user: str, channel: str | None
    ) -> Caller:
        return Caller(
            platform=PLATFORM,
            workspace=team,
            user_ref=user,
            channel_ref=channel or user,
            is_admin=await self.admins.is_admin(client, team, user),
        )

    # --- slash commands ---

    async def on_command(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        async with _guard(respond):
            team, user, channel = _team_of(body), body["user_id"], body.get("channel_id")
            caller = await self.caller(client, team, user, channel)
            message = await self.commands.handle_text(
                caller, body.get("command", ""), body.get("text", "")
            )
            if isinstance(message, Digest) and channel:
                await self._post_digest(client, team, channel, message, body, respond)
            else:
                await reply(respond, message)

    async def _post_digest(
        self,
        client: AsyncWebClient,
        team: str,
        channel: str,
        digest: Digest,
        body: dict[str, Any],
        respond: Respond,
    ) -> None:
        dest = Destination(PLATFORM, team, channel)
        key = f"digest-now:{channel}:{body.get('trigger_id', uuid.uuid4().hex)}"
        try:
            await self.sender.post(client, dest, render(digest), key)
        except SlackApiError as exc:
            log.info("posting a digest in %s failed: %s", channel, exc.response.get("error"))
            text = "I can't post in this channel. Invite me first: `/invite @briefbot`"
            await reply(respond, Notice(level="error", text=text))

    # --- buttons ---

    async def on_subscribe(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        value = _action_value(body)
        await self._button(body, respond, client, Subscribe(kind="theme", value=value))

    async def on_unsubscribe(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        value = _action_value(body)
        await self._button(body, respond, client, Unsubscribe(kind="id", value=value))

    async def _button(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, request: Request
    ) -> None:
        async with _guard(respond):
            team, user = _team_of(body), body["user"]["id"]
            in_home = body.get("container", {}).get("type") == "view"
            channel = None if in_home else (body.get("channel") or {}).get("id")
            message = await self.commands.handle(
                await self.caller(client, team, user, channel), request
            )
            if in_home:
                notice = message if isinstance(message, Notice) else None
                shown = home.channel_of(body.get("view", {}).get("private_metadata"))
                await self.publish_home(client, team, user, shown, notice)
            else:
                await reply(respond, message)

    # --- App Home ---

    async def on_home_opened(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        if event.get("tab", "home") != "home":
            return
        try:
            shown = home.channel_of((event.get("view") or {}).get("private_metadata"))
            await self.publish_home(client, _team_of(body), event["user"], shown)
        except Exception:
            log.exception("publishing the App Home failed")

    async def on_home_channel(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        action = body["actions"][0]
        channel = action.get("selected_conversation") or action.get("selected_channel")
        channel = channel if home.is_slack_id(channel) else None
        try:
            await self.publish_home(client, _team_of(body), body["user"]["id"], channel)
        except Exception:
            log.exception("publishing the App Home failed")

    async def on_digest_change(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        action = body["actions"][0]
        channel = str(action.get("value", ""))
        if not home.is_slack_id(channel):
            return
        request: Request = (
            DigestSchedule(time=home.DEFAULT_DIGEST_TIME, timezone="UTC")
            if action["action_id"] == home.DIGEST_ON_ACTION
            else DigestOff()
        )
        team, user = _team_of(body), body["user"]["id"]
        try:
            message = await self.commands.handle(
                await self.caller(client, team, user, channel), request
            )
            notice = message if isinstance(message, Notice) else None
            await self.publish_home(client, team, user, channel, notice)
        except Exception:
            log.exception("changing a digest from the App Home failed")

    async def publish_home(
        self,
        client: AsyncWebClient,
        team: str,
        user: str,
        channel: str | None,
        notice: Notice | None = None,
    ) -> None:
        personal = await self.caller(client, team, user, None)
        schedule = None
        if channel:
            in_channel = await self.caller(client, team, user, channel)
            schedule = await self.commands.handle(in_channel, DigestShow())
        state = home.HomeState(
            subscriptions=await self.commands.handle(personal, ListSubscriptions()),
            themes=await self.commands.handle(personal, ListThemes()),
            channel=channel,
            schedule=schedule,
            notice=notice,
        )
        await client.views_publish(user_id=user, view=home.render_home(state))


async def _ack(ack: Callable[[], Awaitable[None]]) -> None:
    await ack()


async def reply(respond: Respond, message: Message) -> None:
    """Answer the person who asked, and only them."""
    for payload in render(message)[:MAX_REPLIES]:
        await respond(
            text=payload["text"],
            blocks=payload["blocks"],
            response_type="ephemeral",
            replace_original=False,
        )


class _guard:
    """Any failure becomes a short apology with a reference; the traceback stays in the log."""

    def __init__(self, respond: Respond) -> None:
        self._respond = respond

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        ref = uuid.uuid4().hex[:8]
        log.error("Slack request failed (ref %s)", ref, exc_info=(kind, exc, _tb))  # type: ignore[arg-type]
        text = f"Sorry, something went wrong on my side (ref {ref})."
        try:
            await reply(self._respond, Notice(level="error", text=text))
        except Exception:
            log.warning("could not tell the user about failure %s", ref)
        return True


def _team_of(body: dict[str, Any]) -> str:
    team = body.get("team_id") or (body.get("team") or {}).get("id")
    if not team:
        team = body.get("enterprise_id") or (body.get("enterprise") or {}).get("id") or ""
    return str(team)


def _action_value(body: dict[str, Any]) -> str:
    return str(body["actions"][0].get("value", ""))[:200]

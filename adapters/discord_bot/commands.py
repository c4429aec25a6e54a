"""The slash commands: ``/claim`` and the ``/brief`` group, on an app_commands tree.

Every command defers at once (Discord wants an answer within three seconds) and follows up
with the rendered answer; personal answers are ephemeral, only ``/brief digest now`` posts
in the channel. Options become typed requests where that is plain (feeds, buttons), or go
through the platform-neutral text parser where it already checks and suggests (claim
queries, phrases, schedules). Feeds and schedules are for members with Manage Server: the
command layer refuses them unless ``Caller.is_admin`` says so. Discord only honours
``default_permissions`` on a top-level command, so it cannot hide just those subcommands.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import discord
from discord import app_commands

from adapters.discord_bot.embeds import Payload, render
from adapters.discord_bot.escape import plain
from adapters.discord_bot.views import view_for
from bot.commands.requests import (
    Caller,
    DigestEmpty,
    DigestNow,
    DigestOff,
    DigestShow,
    FeedsAdd,
    FeedsList,
    FeedsRemove,
    ListSubscriptions,
    ListThemes,
    Request,
    ShowHelp,
    Unsubscribe,
)
from bot.messages import Message, Notice, SubscriptionList

log = logging.getLogger(__name__)

PLATFORM = "discord"
MAX_CHOICES = 25
MAX_REPLIES = 10
Interaction = discord.Interaction[Any]
Ask = Request | tuple[str, str]  # a typed request, or (command, text) for the parser
DeliveryOption = Literal["dm", "here"]


class Commands(Protocol):
    """The command layer (``bot.commands.CommandHandler``)."""

    async def handle_text(self, caller: Caller, command: str, text: str) -> Message: ...

    async def handle(self, caller: Caller, request: Request) -> Message: ...


class ThemeLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


class Bridge:
    """Turns interactions into callers and requests, runs them, and answers."""

    def __init__(
        self,
        handler: Commands,
        themes: Sequence[ThemeLike],
        *,
        admin_users: str = "",
        dms_closed: Callable[[str], bool] | None = None,
    ) -> None:
        self.handler = handler
        self.themes = {t.id: t.name for t in themes}
        self._admins = {e.strip() for e in re.split(r"[,\s]+", admin_users) if e.strip()}
        self._dms_closed = dms_closed

    def caller(self, interaction: Interaction) -> Caller:
        user = str(interaction.user.id)
        guild = interaction.guild_id
        return Caller(
            platform=PLATFORM,
            workspace=str(guild) if guild else "dm",
            user_ref=user,
            channel_ref=str(interaction.channel_id or user),
            is_admin=self.is_admin(interaction),
            display_name=interaction.user.display_name,
        )

    def is_admin(self, interaction: Interaction) -> bool:
        user = str(interaction.user.id)
        if self._admins & {user, f"discord:{user}"}:
            return True
        return interaction.guild_id is not None and interaction.permissions.manage_guild

    async def run(self, interaction: Interaction, ask: Ask, *, public: bool = False) -> None:
        """Defer, work, answer; any failure becomes a short apology with a reference."""
        await interaction.response.defer(ephemeral=not public, thinking=True)
        try:
            caller = self.caller(interaction)
            if isinstance(ask, tuple):
                message = await self.handler.handle_text(caller, *ask)
            else:
                message = await self.handler.handle(caller, ask)
            await reply(interaction, render(message), ephemeral=not public)
            await self._dm_hint(interaction, caller, message)
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("Discord command failed (ref %s)", ref)
            await _apologise(interaction, ref)

    async def on_button(self, interaction: Interaction, request: Request) -> None:
        await self.run(interaction, request)

    async def _dm_hint(self, interaction: Interaction, caller: Caller, message: Message) -> None:
        """Someone with DM alerts whose DMs refused us: tell them when they next look."""
        if self._dms_closed is None or not self._dms_closed(caller.user_ref):
            return
        if not isinstance(message, SubscriptionList | Notice):
            return
        text = (
            "I could not send you a direct message: your DMs are closed to me. Allow direct "
            "messages from server members, or follow with `here` to get alerts in a channel."
        )
        await reply(interaction, render(Notice(level="info", text=text)), ephemeral=True)

    # --- autocomplete ---

    def theme_choices(self, current: str) -> list[app_commands.Choice[str]]:
        typed = current.strip().casefold()
        found = [
            (theme_id, name)
            for theme_id, name in self.themes.items()
            if typed in theme_id or typed in name.casefold()
        ]
        # Themes whose id or name starts with what was typed come first.
        found.sort(key=lambda t: not (t[0].startswith(typed) or t[1].casefold().startswith(typed)))
        return [
            app_commands.Choice(name=plain(f"{name} ({theme_id})", 100), value=theme_id)
            for theme_id, name in found[:MAX_CHOICES]
        ]

    async def subscription_choices(
        self, interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        message = await self.handler.handle(self.caller(interaction), ListSubscriptions())
        if not isinstance(message, SubscriptionList):
            return []
        typed = current.strip().casefold().lstrip("#")
        return [
            app_commands.Choice(
                name=plain(f"#{s.id} {s.label} ({s.delivery})", 100), value=str(s.id)
            )
            for s in message.subscriptions
            if typed in f"{s.id} {s.label}".casefold()
        ][:MAX_CHOICES]

    # --- options -> what to ask the command layer ---

    def subscribe_ask(self, target: str, delivery: DeliveryOption) -> Ask:
        theme_id = self.resolve_theme(target)
        if theme_id is not None:
            return ("brief", f"subscribe {theme_id} {delivery}")
        return ("brief", f'subscribe "{_unquoted(target)}" {delivery}')

    def unsubscribe_ask(self, target: str) -> Ask:
        number = target.strip().lstrip("#")
        if number.isdigit() and len(number) <= 9:
            return Unsubscribe(kind="id", value=number)
        theme_id = self.resolve_theme(target)
        if theme_id is not None:
            return Unsubscribe(kind="theme", value=theme_id)
        return ("brief", f'unsubscribe "{_unquoted(target)}"')

    def resolve_theme(self, target: str) -> str | None:
        typed = " ".join(target.split()).casefold()
        for theme_id, name in self.themes.items():
            if typed in (theme_id, name.casefold()):
                return theme_id
        return None


def _unquoted(text: str) -> str:
    return " ".join(re.sub(r"[\"“”„‟«»＂]", " ", text).split())


async def reply(interaction: Interaction, payloads: list[Payload], *, ephemeral: bool) -> None:
    """Follow-ups carrying ``payloads``; the client's AllowedMentions.none() applies."""
    for payload in payloads[:MAX_REPLIES]:
        embeds = [discord.Embed.from_dict(e) for e in payload.get("embeds", [])]
        view = view_for(payload.get("components", []))
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        if payload.get("content"):
            extra["content"] = str(payload["content"])
        await interaction.followup.send(embeds=embeds, ephemeral=ephemeral, **extra)


async def _apologise(interaction: Interaction, ref: str) -> None:
    text = f"Sorry, something went wrong on my side (ref {ref})."
    try:
        await interaction.followup.send(content=text, ephemeral=True)
    except Exception:  # the interaction may be gone: the log keeps the reference
        log.warning("could not tell the user about failure %s", ref)


# --- the command tree -----------------------------------------------------------------------


class DigestGroup(app_commands.Group):
    def __init__(self, bridge: Bridge) -> None:
        super().__init__(name="digest", description="This channel's daily digest")
        self.bridge = bridge

    @app_commands.command(name="show", description="Show this channel's digest schedule")
    async def show(self, interaction: Interaction) -> None:
        await self.bridge.run(interaction, DigestShow())

    @app_commands.command(name="now", description="Post the digest of the last day here now")
    async def now(self, interaction: Interaction) -> None:
        await self.bridge.run(interaction, DigestNow(), public=True)

    @app_commands.command(name="schedule", description="Post a digest here daily (Manage Server)")
    @app_commands.describe(
        time="HH:MM, 24 h, e.g. 09:00",
        timezone="Area/City, e.g. Europe/Berlin (default UTC)",
        days="mon-fri, daily or mon,wed,fri (default daily)",
    )
    async def schedule(
        self,
        interaction: Interaction,
        time: app_commands.Range[str, 1, 10],
        timezone: app_commands.Range[str, 1, 64] | None = None,
        days: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        words = [" ".join(w.split()) for w in (time, timezone, days) if w]
        await self.bridge.run(interaction, ("brief", "digest schedule " + " ".join(words)))

    @app_commands.command(name="off", description="Stop this channel's digest (Manage Server)")
    async def off(self, interaction: Interaction) -> None:
        await self.bridge.run(interaction, DigestOff())

    @app_commands.command(name="empty", description="What a day without news gets (Manage Server)")
    @app_commands.describe(mode="line: post a short line; skip: post nothing")
    async def empty(self, interaction: Interaction, mode: Literal["line", "skip"]) -> None:
        await self.bridge.run(interaction, DigestEmpty(mode))


class FeedsGroup(app_commands.Group):
    def __init__(self, bridge: Bridge) -> None:
        super().__init__(name="feeds", description="The news feeds the bot reads (Manage Server)")
        self.bridge = bridge

    @app_commands.command(name="list", description="Show the feeds and how they are doing")
    async def list_(self, interaction: Interaction) -> None:
        await self.bridge.run(interaction, FeedsList())

    @app_commands.command(name="add", description="Add a news feed by URL")
    async def add(self, interaction: Interaction, url: app_commands.Range[str, 1, 2048]) -> None:
        await self.bridge.run(interaction, FeedsAdd(url=url.strip()))

    @app_commands.command(name="remove", description="Stop reading a news feed")
    async def remove(self, interaction: Interaction, url: app_commands.Range[str, 1, 2048]) -> None:
        await self.bridge.run(interaction, FeedsRemove(url=url.strip()))


class BriefGroup(app_commands.Group):
    def __init__(self, bridge: Bridge) -> None:
        super().__init__(
            name="brief", description="Meta AI briefings: alerts, digests, feeds", guild_only=True
        )
        self.bridge = bridge
        self.add_command(DigestGroup(bridge))
        self.add_command(FeedsGroup(bridge))

    @app_commands.command(name="subscribe", description="Get alerts on a theme or a phrase")
    @app_commands.describe(
        target="A theme, or a phrase to watch for", delivery="dm (default) or here"
    )
    async def subscribe(
        self,
        interaction: Interaction,
        target: app_commands.Range[str, 1, 100],
        delivery: DeliveryOption = "dm",
    ) -> None:
        await self.bridge.run(interaction, self.bridge.subscribe_ask(target, delivery))

    @subscribe.autocomplete("target")
    async def _subscribe_target(
        self, interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return self.bridge.theme_choices(current)

    @app_commands.command(name="unsubscribe", description="Stop one of your alerts")
    @app_commands.describe(target="A subscription number, theme or phrase")
    async def unsubscribe(
        self, interaction: Interaction, target: app_commands.Range[str, 1, 100]
    ) -> None:
        await self.bridge.run(interaction, self.bridge.unsubscribe_ask(target))

    @unsubscribe.autocomplete("target")
    async def _unsubscribe_target(
        self, interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.bridge.subscription_choices(interaction, current)

    @app_commands.command(name="subscriptions", description="List your alerts")
    async def subscriptions(self, interaction: Interaction) -> None:
        await self.bridge.run(interaction, ListSubscriptions())

    @app_commands.command(name="themes", description="List the themes you can follow")
    async def themes(self, interaction: Interaction) -> None:
        await self.bridge.run(interaction, ListThemes())

    @app_commands.command(name="help", description="What the bot does and how to ask")
    async def help(self, interaction: Interaction) -> None:
        await self.bridge.run(interaction, ShowHelp())


def build_tree(client: discord.Client, bridge: Bridge) -> app_commands.CommandTree[Any]:
    """The command tree with ``/claim`` and ``/brief``, attached to ``client``."""
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)

    @tree.command(name="claim", description="Look up tracked claims about Meta's AI work")
    @app_commands.describe(query="What to look up, e.g. 350k H100s")
    async def claim(interaction: Interaction, query: app_commands.Range[str, 1, 300]) -> None:
        await bridge.run(interaction, ("claim", query))

    tree.add_command(BriefGroup(bridge))
    return tree

"""Discord adapter: discord.py 2.x slash commands, persistent buttons and a REST sender.

Entry points: ``build`` (group ``briefbot.adapters``) and ``preview`` (group
``briefbot.renderers``). See "Connect to Discord" in README.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.discord_bot.client import make_client, run_until_stopped, set_api_base, wants_shards
from adapters.discord_bot.commands import Bridge
from adapters.discord_bot.embeds import render
from adapters.discord_bot.sender import DEFAULT_API, DiscordRest, DiscordSender
from bot.config import Settings
from bot.messages import Message
from bot.plugins import AdapterParts
from bot.services import Services

PLATFORM = "discord"


def guild_of(settings: Settings) -> int | None:
    raw = (settings.discord_guild or "").strip()
    return int(raw) if raw.isdigit() else None


def build(services: Services) -> AdapterParts | None:
    """Entry point (briefbot.adapters): None unless DISCORD_TOKEN is set."""
    settings = services.app.settings
    if settings.discord_token is None or not settings.discord_token.get_secret_value():
        return None
    token = settings.discord_token.get_secret_value()
    set_api_base(settings.discord_api_url)
    sender = DiscordSender(DiscordRest(token, settings.discord_api_url or DEFAULT_API))
    bridge = Bridge(
        services.handler,
        services.app.pack.themes,
        admin_users=settings.admin_users,
        dms_closed=sender.dms_closed.__contains__,
    )
    guild = guild_of(settings)

    async def gateway(stop: asyncio.Event) -> None:
        try:
            client = make_client(bridge, guild=guild, sharded=await wants_shards(sender.rest))
            await run_until_stopped(client, token, stop)
        finally:
            await sender.close()

    return AdapterParts(name=PLATFORM, sender=sender, tasks=[gateway])


def preview(message: Message, *, destination: str) -> list[dict[str, Any]]:
    """Entry point (briefbot.renderers): the message payloads in posting order, each with
    the channel it goes to. The sender adds a ``nonce`` and a ``ref`` footer marker."""
    return [{"channel_id": destination, **payload} for payload in render(message)]

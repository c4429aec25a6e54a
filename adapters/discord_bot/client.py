"""The gateway side: a discord.py client with the command tree and the persistent buttons.

No privileged intents: interactions reach the bot with ``Intents.none()`` plus ``guilds``.
Every message the client sends carries ``AllowedMentions.none()``. At setup the client
registers the buttons and syncs the command tree, to one guild when
``BRIEFBOT_DISCORD_GUILD`` is set (instant, for development) or globally, and only when
the commands changed since the last sync: the hash of the tree's JSON is kept in a file.
Big bots shard: ``BRIEFBOT_DISCORD_SHARDED=1``, or an application in 2,000 guilds or more,
picks ``AutoShardedClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import discord
from discord import app_commands
from discord.http import Route

from adapters.discord_bot.commands import Bridge, build_tree
from adapters.discord_bot.sender import DiscordHTTPError, DiscordRest
from adapters.discord_bot.views import attach

log = logging.getLogger(__name__)

SHARDED_ENV = "BRIEFBOT_DISCORD_SHARDED"
STATE_DIR_ENV = "BRIEFBOT_DATA_DIR"
HASH_FILE = "discord-commands-{target}.sha256"
SHARD_FROM_GUILDS = 2000


def intents() -> discord.Intents:
    """Slash commands and buttons need no privileged intent; guilds gives the guild list."""
    chosen = discord.Intents.none()
    chosen.guilds = True
    return chosen


def set_api_base(url: str | None) -> None:
    """Point discord.py's REST calls (and interaction webhooks) at ``url`` when given.

    ``Route.BASE`` is a class attribute read by every request discord.py builds, so this is
    process-wide: meant for tests and API proxies, not for two bots in one process.
    """
    if url:
        Route.BASE = url.rstrip("/")


def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or Path.cwd())


class BriefClient(discord.Client):
    def __init__(
        self,
        bridge: Bridge,
        *,
        guild: int | None = None,
        state: Path | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            intents=intents(), allowed_mentions=discord.AllowedMentions.none(), **options
        )
        self.bridge = bridge
        self.sync_guild = guild
        self.state = state or state_dir()
        self.tree = build_tree(self, bridge)
        self.synced: bool | None = None  # after setup: whether this start synced commands

    async def setup_hook(self) -> None:
        attach(self, self.bridge)
        self.synced = await sync_if_changed(self.tree, self.sync_guild, self.state)


class ShardedBriefClient(BriefClient, discord.AutoShardedClient):
    """The same client on several gateway shards."""


def command_payload(tree: app_commands.CommandTree[Any], guild: int | None) -> list[Any]:
    """The JSON Discord is sent for this tree's commands: what a sync would upload."""
    target = discord.Object(guild) if guild else None
    return [command.to_dict(tree) for command in tree.get_commands(guild=target)]


async def sync_if_changed(
    tree: app_commands.CommandTree[Any], guild: int | None, state: Path
) -> bool:
    """Sync the tree unless the same commands were synced to the same place before."""
    if guild:
        tree.copy_global_to(guild=discord.Object(guild))
    payload = command_payload(tree, guild)
    app_id = tree.client.application_id
    digest = hashlib.sha256(
        json.dumps([app_id, guild, payload], sort_keys=True).encode()
    ).hexdigest()
    marker = state / HASH_FILE.format(target=guild or "global")
    if _read_hash(marker) == digest:
        log.info("Discord commands unchanged; not syncing")
        return False
    await tree.sync(guild=discord.Object(guild) if guild else None)
    log.info("Discord commands synced %s", f"to guild {guild}" if guild else "globally")
    _write_hash(marker, digest)
    return True


def _read_hash(marker: Path) -> str | None:
    try:
        return marker.read_text().strip()
    except OSError:
        return None


def _write_hash(marker: Path, digest: str) -> None:
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(digest + "\n")
    except OSError as exc:
        log.warning("could not keep the command hash in %s: %s", marker, exc)


async def wants_shards(rest: DiscordRest, env: Mapping[str, str] | None = None) -> bool:
    """Sharded when configured, or when the application is in ``SHARD_FROM_GUILDS`` guilds
    or more (Discord's approximate count, read with the bot token before connecting)."""
    flag = (env if env is not None else os.environ).get(SHARDED_ENV, "")
    if flag.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    try:
        info = await rest.request("GET", "/oauth2/applications/@me")
    except (DiscordHTTPError, OSError, TimeoutError) as exc:
        log.warning("could not read the application's guild count (%s); one shard", exc)
        return False
    guilds = info.get("approximate_guild_count", 0) if isinstance(info, dict) else 0
    return isinstance(guilds, int) and guilds >= SHARD_FROM_GUILDS


def make_client(bridge: Bridge, *, guild: int | None, sharded: bool) -> BriefClient:
    kind = ShardedBriefClient if sharded else BriefClient
    return kind(bridge, guild=guild)


async def run_until_stopped(client: BriefClient, token: str, stop: asyncio.Event) -> None:
    """Log in, connect to the gateway and stay until ``stop`` is set."""
    async with client:
        runner = asyncio.create_task(client.start(token), name="discord-gateway")
        waiter = asyncio.create_task(stop.wait(), name="discord-stop")
        done, _ = await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        await client.close()
        waiter.cancel()
        if runner in done:
            runner.result()  # a failed login or connection surfaces in the runtime's log
        else:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

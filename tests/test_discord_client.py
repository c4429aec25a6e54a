"""Adapter wiring: configured only with a token, sharding choice, the closed-DM hint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from discord.http import Route
from pydantic import SecretStr

from adapters.discord_bot import build
from adapters.discord_bot.client import BriefClient, intents, set_api_base, wants_shards
from adapters.discord_bot.commands import Bridge
from adapters.discord_bot.sender import DiscordRest, DiscordSender
from bot.commands import CommandHandler
from bot.config import Settings
from bot.pack import load_pack
from bot.services import Services
from storage.db import Database
from tests.discord_fake_api import APP_ID, FakeDiscord, command, interaction


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord().start()
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    set_api_base(server.api_url)
    yield server
    await server.close()
    assert server.violations == []


def services(settings: Settings) -> Services:
    app = SimpleNamespace(settings=settings, pack=load_pack())
    return cast(Services, SimpleNamespace(app=app, handler=None))


async def test_not_configured_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert build(services(Settings(_env_file=None))) is None  # type: ignore[call-arg]


async def test_configured_with_a_token(fake: FakeDiscord) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        discord_token=SecretStr("fake-token"),
        discord_api_url=fake.api_url,
    )
    parts = build(services(settings))
    assert parts is not None and parts.name == "discord"
    assert isinstance(parts.sender, DiscordSender) and len(parts.tasks) == 1
    await parts.sender.close()


async def test_shards_when_told_or_when_big(fake: FakeDiscord) -> None:
    rest = DiscordRest("fake-token", fake.api_url)
    try:
        assert await wants_shards(rest, {"BRIEFBOT_DISCORD_SHARDED": "1"})
        fake.application["approximate_guild_count"] = 40
        assert not await wants_shards(rest, {})
        fake.application["approximate_guild_count"] = 2500
        assert await wants_shards(rest, {})
    finally:
        await rest.close()


def test_no_privileged_intents() -> None:
    chosen = intents()
    assert chosen.guilds
    assert not (chosen.members or chosen.presences or chosen.message_content)


async def test_closed_dms_are_explained_when_the_user_next_asks(
    fake: FakeDiscord, sqlite_db: Database, tmp_path: Path
) -> None:
    pack = load_pack()
    closed = {"800000000000000001"}
    bridge = Bridge(
        CommandHandler(sqlite_db, pack.themes), pack.themes, dms_closed=closed.__contains__
    )
    client = BriefClient(bridge, state=tmp_path)
    await client.login("fake-token")
    try:
        payload: dict[str, Any] = interaction(2, command("brief", "subscriptions"))
        client._connection.parse_interaction_create(payload)  # type: ignore[arg-type]
        replies = await fake.wait_for("POST", f"/webhooks/{APP_ID}/", count=2)
        assert "your DMs are closed" in replies[1].body["content"]
        assert replies[1].body["flags"] & 64
    finally:
        await client.close()

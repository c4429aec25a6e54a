"""Slash commands, autocomplete and buttons through discord.py's own interaction handling.

Interactions are fed to ``client._connection.parse_interaction_create`` exactly as the
gateway delivers them; the client logs in, syncs and answers against ``FakeDiscord`` on
loopback, which fails the test on any payload over Discord's limits or one that could ping.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from discord.http import Route

from adapters.discord_bot.client import BriefClient, set_api_base
from adapters.discord_bot.commands import Bridge
from adapters.discord_bot.embeds import render
from bot.claims.ledger import load_ledger
from bot.claims.lookup import ClaimIndex, LookupEngine
from bot.commands import Caller, CommandHandler
from bot.commands.requests import DigestShow, ListSubscriptions
from bot.messages import Digest, Message, ScheduleInfo, Story, SubscriptionList, ThemeSection
from bot.pack import Pack, load_pack
from storage.db import Database
from tests.discord_fake_api import (
    APP_ID,
    GUILD_ID,
    MANAGE_GUILD,
    FakeDiscord,
    command,
    component,
    interaction,
)

NOW = datetime(2024, 7, 23, 9, 0, tzinfo=UTC)
ALICE = "800000000000000001"
EPHEMERAL = 64


@pytest.fixture(scope="module")
def pack() -> Pack:
    return load_pack()


def digest_now(_channel_id: int) -> Message:
    stories = tuple(
        Story(
            cluster_id=i,
            title=f"@everyone [bank.com](http://evil.example) Llama story {i}",
            url=f"https://news.example/{i}",
            source="Example <@&123456789012345678> News",
            published=NOW,
            summary="Meta shipped a **model** and said things. " * 12,
            themes=("llama-models",),
        )
        for i in range(40)
    )
    section = ThemeSection(theme_id="llama-models", theme_name="Llama models", stories=stories)
    return Digest(
        title="Meta AI today",
        day=date(2024, 7, 23),
        since=NOW,
        until=NOW,
        sections=(section,),
        total_stories=40,
    )


@pytest.fixture
def handler(sqlite_db: Database, pack: Pack) -> CommandHandler:
    claims = LookupEngine(ClaimIndex.from_ledger(load_ledger(pack.claims_path)))
    return CommandHandler(sqlite_db, pack.themes, claims=claims, digest_now=digest_now)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord().start()
    monkeypatch.setattr(Route, "BASE", Route.BASE)  # restored after the test
    set_api_base(server.api_url)
    yield server
    await server.close()
    assert server.violations == []


async def logged_in(
    fake: FakeDiscord, handler: CommandHandler, pack: Pack, state: Path, guild: int | None = None
) -> BriefClient:
    client = BriefClient(Bridge(handler, pack.themes), guild=guild, state=state)
    await client.login("fake-token")
    return client


@pytest.fixture
async def client(
    fake: FakeDiscord, handler: CommandHandler, pack: Pack, tmp_path: Path
) -> AsyncIterator[BriefClient]:
    bot = await logged_in(fake, handler, pack, tmp_path)
    yield bot
    await bot.close()


def feed(client: BriefClient, payload: dict[str, Any]) -> None:
    client._connection.parse_interaction_create(payload)  # type: ignore[arg-type]


async def ask(fake: FakeDiscord, client: BriefClient, payload: dict[str, Any]) -> dict[str, Any]:
    """Send an interaction; the deferral and the first follow-up it produced."""
    before = len(fake.replies())
    feed(client, payload)
    await fake.wait_for("POST", f"/interactions/{payload['id']}/")
    await fake.wait_for("POST", f"/webhooks/{APP_ID}/", count=before + 1)
    return fake.replies()[before]


def texts(reply: dict[str, Any]) -> str:
    parts = [reply.get("content") or ""]
    for embed in reply.get("embeds") or []:
        parts += [embed.get("title", ""), embed.get("description", "")]
        parts += [f"{f['name']} {f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


async def test_claim_defers_then_answers_privately(fake: FakeDiscord, client: BriefClient) -> None:
    payload = interaction(2, command("claim", options={"query": "350k H100s"}))
    reply = await ask(fake, client, payload)
    callback = fake.of("POST", f"/interactions/{payload['id']}/")[0].body
    assert callback["type"] == 5  # deferred, "thinking"
    assert callback["data"]["flags"] & EPHEMERAL
    assert "H100" in texts(reply)
    assert reply["allowed_mentions"] == {"parse": []}


async def test_theme_autocomplete_offers_matching_themes(
    fake: FakeDiscord, client: BriefClient
) -> None:
    data = command("brief", "subscribe", options={"target": "llama"}, focused="target")
    payload = interaction(4, data)
    feed(client, payload)
    calls = await fake.wait_for("POST", f"/interactions/{payload['id']}/")
    choices = calls[0].body["data"]["choices"]
    assert calls[0].body["type"] == 8
    assert choices[0]["value"] == "llama-models"
    assert all("llama" in c["name"].lower() for c in choices)

    everything = interaction(
        4, command("brief", "subscribe", options={"target": ""}, focused="target")
    )
    feed(client, everything)
    calls = await fake.wait_for("POST", f"/interactions/{everything['id']}/")
    assert 10 <= len(calls[0].body["data"]["choices"]) <= 25


async def test_feeds_need_manage_server(fake: FakeDiscord, client: BriefClient) -> None:
    url = {"url": "https://feeds.example/meta.xml"}
    refused = await ask(fake, client, interaction(2, command("brief", "feeds", "add", options=url)))
    assert "Only workspace admins" in texts(refused)

    admin = interaction(2, command("brief", "feeds", "list"), permissions=MANAGE_GUILD)
    answer = await ask(fake, client, admin)
    assert "No feeds yet" in texts(answer)


async def test_subscribe_with_an_option_then_list(
    fake: FakeDiscord, client: BriefClient, handler: CommandHandler
) -> None:
    options = {"target": "llama-models", "delivery": "here"}
    answer = await ask(fake, client, interaction(2, command("brief", "subscribe", options=options)))
    assert "Following Llama" in texts(answer)
    listed = await ask(fake, client, interaction(2, command("brief", "subscriptions")))
    assert "Llama" in texts(listed)
    assert listed["components"][0]["components"][0]["custom_id"].startswith("briefbot:unsub:")
    caller = Caller("discord", GUILD_ID, ALICE, "900000000000000200")
    subs = await handler.handle(caller, ListSubscriptions())
    assert isinstance(subs, SubscriptionList)
    assert [(s.value, s.delivery) for s in subs.subscriptions] == [("llama-models", "here")]


async def test_digest_now_posts_in_the_channel_split_and_defused(
    fake: FakeDiscord, client: BriefClient
) -> None:
    payload = interaction(2, command("brief", "digest", "now"))
    feed(client, payload)
    callback = (await fake.wait_for("POST", f"/interactions/{payload['id']}/"))[0].body
    assert not (callback.get("data") or {}).get("flags", 0) & EPHEMERAL
    expected = len(render(digest_now(0)))
    assert expected >= 3
    replies = await fake.wait_for("POST", f"/webhooks/{APP_ID}/", count=expected)
    bodies = [c.body for c in replies]
    sent = [[{k: v for k, v in e.items() if k != "flags"} for e in b["embeds"]] for b in bodies]
    assert sent == [p["embeds"] for p in render(digest_now(0))]  # the renderer's, as is
    shown = "\n".join(texts(b) for b in bodies)
    assert shown.count("Llama story") == 40  # split across messages, nothing lost
    assert "@everyone" not in shown and "@\u200beveryone" in shown
    labels = re.findall(r"(?<!\\)\[([^\[\]]*)\]\(", shown)
    assert set(labels) == {"read"}  # feed text never forms a masked link
    assert bodies[0]["components"][0]["components"][0]["custom_id"] == "briefbot:sub:llama-models"


async def test_sync_only_when_commands_change(
    fake: FakeDiscord, handler: CommandHandler, pack: Pack, tmp_path: Path
) -> None:
    guild = int(GUILD_ID)
    first = await logged_in(fake, handler, pack, tmp_path, guild)
    await first.close()
    assert [c.path for c in fake.of("PUT", "/applications/")] == [
        f"/applications/{APP_ID}/guilds/{GUILD_ID}/commands"
    ]
    names = {c["name"] for c in fake.of("PUT", "/applications/")[0].body}
    assert names == {"claim", "brief"}
    again = await logged_in(fake, handler, pack, tmp_path, guild)
    await again.close()
    assert len(fake.of("PUT", "/applications/")) == 1  # unchanged: no second sync
    global_ = await logged_in(fake, handler, pack, tmp_path)
    await global_.close()
    assert fake.of("PUT", "/applications/")[-1].path == f"/applications/{APP_ID}/commands"


async def test_buttons_survive_a_restart(
    fake: FakeDiscord, handler: CommandHandler, pack: Pack, tmp_path: Path
) -> None:
    first = await logged_in(fake, handler, pack, tmp_path)
    posted = await ask(fake, first, interaction(2, command("brief", "themes")))
    await first.close()
    # The message as Discord keeps it, Follow buttons included.
    message = fake._message("900000000000000200", posted)

    second = await logged_in(fake, handler, pack, tmp_path)
    try:
        press = interaction(3, component("briefbot:sub:llama-models"), message=message)
        answer = await ask(fake, second, press)
        callback = fake.of("POST", f"/interactions/{press['id']}/")[0].body
        assert callback["data"]["flags"] & EPHEMERAL
        assert "Following Llama models" in texts(answer)
        listed = await ask(fake, second, interaction(2, command("brief", "subscriptions")))
        unsub_id = listed["components"][0]["components"][0]["custom_id"]
        stop = interaction(3, component(unsub_id), message=fake._message("1", listed))
        assert "Stopped subscription" in texts(await ask(fake, second, stop))
    finally:
        await second.close()


async def test_digest_empty_is_an_admin_choice(
    fake: FakeDiscord, client: BriefClient, handler: CommandHandler
) -> None:
    skip = {"mode": "skip"}
    refused = await ask(
        fake, client, interaction(2, command("brief", "digest", "empty", options=skip))
    )
    assert "Only workspace admins" in texts(refused)
    admin = interaction(
        2, command("brief", "digest", "empty", options=skip), permissions=MANAGE_GUILD
    )
    await ask(fake, client, admin)
    caller = Caller("discord", GUILD_ID, ALICE, "900000000000000200")
    shown = await handler.handle(caller, DigestShow())
    assert isinstance(shown, ScheduleInfo) and shown.empty_day == "skip"

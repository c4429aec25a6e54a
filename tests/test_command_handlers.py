"""Command handlers on a real database: permissions, personal scoping, schedules, feed guard."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from aiohttp import web

from bot.claims.ledger import load_ledger
from bot.claims.lookup import ClaimIndex, LookupEngine
from bot.commands.handlers import CommandHandler
from bot.commands.requests import Caller, DigestSchedule, FeedsAdd, Subscribe
from bot.messages import (
    ClaimAnswer,
    Digest,
    FeedList,
    Help,
    Message,
    Notice,
    ScheduleInfo,
    SubscriptionList,
    ThemeList,
)
from bot.pack import Pack, load_pack
from bot.ssrf import parse_allowlist
from storage import channels, subscriptions
from storage.db import Database
from storage.subscriptions import Owner

ALICE = Caller("slack", "T1", "U_ALICE", "C_TEAM", is_admin=False, display_name="Alice")
BOB = Caller("slack", "T1", "U_BOB", "C_TEAM")
ADMIN = Caller("slack", "T1", "U_ADMIN", "C_TEAM", is_admin=True)


@pytest.fixture(scope="module")
def pack() -> Pack:
    return load_pack()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 3, 29, 12, 0, tzinfo=UTC))  # a Friday, before DST in Europe


@pytest.fixture
def handler(sqlite_db: Database, pack: Pack, clock: Clock) -> CommandHandler:
    return CommandHandler(sqlite_db, pack.themes, clock=clock, max_subscriptions=4)


async def say(
    handler: CommandHandler, caller: Caller, text: str, command: str = "/brief"
) -> Message:
    return await handler.handle_text(caller, command, text)


def notice(message: Message, level: str) -> Notice:
    assert isinstance(message, Notice), message
    assert message.level == level, message
    return message


# --- subscriptions ---


async def test_subscribe_list_and_duplicates(handler: CommandHandler) -> None:
    done = notice(await say(handler, ALICE, "subscribe open-source"), "ok")
    assert "Open weights" in done.text and "direct message" in done.text
    notice(await say(handler, ALICE, "sub “Llama 4” here"), "ok")
    again = notice(await say(handler, ALICE, "SUB Open-Source dm"), "info")
    assert "already" in again.text
    notice(await say(handler, ALICE, 'sub "LLAMA 4" here'), "info")  # phrases ignore case

    listed = await say(handler, ALICE, "subscriptions")
    assert isinstance(listed, SubscriptionList)
    got = {(s.kind, s.value, s.delivery, s.dest_ref) for s in listed.subscriptions}
    assert got == {
        ("theme", "open-source", "dm", "U_ALICE"),
        ("phrase", "Llama 4", "here", "C_TEAM"),
    }
    assert {s.label for s in listed.subscriptions} == {
        '"Llama 4"',
        "Open weights strategy and the Llama licence",
    }


async def test_subscriptions_are_personal(handler: CommandHandler) -> None:
    notice(await say(handler, ALICE, "subscribe compute"), "ok")
    alice_list = await say(handler, ALICE, "subs")
    assert isinstance(alice_list, SubscriptionList)
    alice_sub = alice_list.subscriptions[0].id

    bob_list = await say(handler, BOB, "subs")
    assert isinstance(bob_list, SubscriptionList) and bob_list.subscriptions == ()
    refused = notice(await say(handler, BOB, f"unsubscribe {alice_sub}"), "info")
    assert f"#{alice_sub}" in refused.text
    notice(await say(handler, BOB, "unsubscribe compute"), "info")

    still = await say(handler, ALICE, "subs")
    assert isinstance(still, SubscriptionList) and len(still.subscriptions) == 1
    notice(await say(handler, ALICE, f"unsub #{alice_sub}"), "ok")
    gone = await say(handler, ALICE, "subs")
    assert isinstance(gone, SubscriptionList) and gone.subscriptions == ()


async def test_unsubscribe_by_theme_or_phrase(handler: CommandHandler) -> None:
    await say(handler, ALICE, "subscribe agi")
    await say(handler, ALICE, "subscribe agi here")
    await say(handler, ALICE, 'subscribe "Yann LeCun"')
    notice(await say(handler, ALICE, "unsubscribe agi here"), "ok")
    left = await say(handler, ALICE, "subs")
    assert isinstance(left, SubscriptionList)
    assert {(s.value, s.delivery) for s in left.subscriptions} == {
        ("agi", "dm"),
        ("Yann LeCun", "dm"),
    }
    notice(await say(handler, ALICE, 'unsub "yann lecun"'), "ok")
    notice(await say(handler, ALICE, "unsub agi"), "ok")
    notice(await say(handler, ALICE, "unsub agi"), "info")


async def test_subscription_cap(handler: CommandHandler) -> None:
    for theme in ("agi", "compute", "capex", "geopolitics"):
        notice(await say(handler, ALICE, f"sub {theme}"), "ok")
    capped = notice(await say(handler, ALICE, "sub talent-org"), "error")
    assert "4" in capped.text
    notice(await say(handler, BOB, "sub talent-org"), "ok")  # the cap is per person


async def test_did_you_mean_for_typos(handler: CommandHandler) -> None:
    typo = notice(await say(handler, ALICE, "sub opensource"), "usage")
    assert typo.suggestions == ("open-source",)
    assert "Usage: /brief subscribe" in typo.text
    lama = notice(await say(handler, ALICE, "subscribe lama here"), "usage")
    assert "llama-models" in lama.suggestions
    listed = await say(handler, ALICE, "subs")
    assert isinstance(listed, SubscriptionList) and listed.subscriptions == ()
    # A request that did not come through the parser is checked too.
    bogus = await handler.handle(ALICE, Subscribe("theme", "no-such-theme"))
    notice(bogus, "usage")


async def test_themes_show_what_the_caller_follows(handler: CommandHandler, pack: Pack) -> None:
    await say(handler, ALICE, "sub compute here")
    mine = await say(handler, ALICE, "themes")
    theirs = await say(handler, BOB, "themes")
    assert isinstance(mine, ThemeList) and isinstance(theirs, ThemeList)
    assert [t.id for t in mine.themes] == list(pack.theme_ids)
    assert {t.id for t in mine.themes if t.subscribed} == {"compute"}
    assert not any(t.subscribed for t in theirs.themes)
    assert all(t.description for t in mine.themes)


async def test_help_marks_admin_commands(handler: CommandHandler) -> None:
    shown = await say(handler, ALICE, "help")
    assert isinstance(shown, Help)
    admin = {e.usage for e in shown.entries if e.admin_only}
    assert any(u.startswith("/brief feeds") for u in admin)
    assert any("digest schedule" in u for u in admin)
    assert not any(u.startswith("/brief subscribe") for u in admin)
    assert any(e.usage.startswith("/claim") for e in shown.entries)


# --- digests ---


async def test_schedule_is_admin_only(handler: CommandHandler) -> None:
    denied = notice(await say(handler, ALICE, "digest schedule 09:00 Europe/Berlin"), "denied")
    assert "admin" in denied.text
    notice(await say(handler, ALICE, "digest off"), "denied")
    shown = await say(handler, ALICE, "digest")
    assert shown == ScheduleInfo(enabled=False)


async def test_schedule_next_run_is_dst_correct_and_notifies_scheduler(
    sqlite_db: Database, pack: Pack, clock: Clock
) -> None:
    changed: list[int] = []
    handler = CommandHandler(
        sqlite_db, pack.themes, clock=clock, on_schedule_changed=changed.append
    )
    info = await say(handler, ADMIN, "digest schedule 9:00 europe/berlin")
    assert isinstance(info, ScheduleInfo)
    assert (info.enabled, info.time, info.timezone, info.days) == (
        True,
        "09:00",
        "Europe/Berlin",
        "mon-sun",
    )
    assert info.next_run == datetime(2024, 3, 30, 8, 0, tzinfo=UTC)  # 09:00 CET

    clock.now = datetime(2024, 3, 30, 12, 0, tzinfo=UTC)  # DST starts this night
    later = await say(handler, ALICE, "digest")
    assert isinstance(later, ScheduleInfo)
    assert later.next_run == datetime(2024, 3, 31, 7, 0, tzinfo=UTC)  # 09:00 CEST

    # A new time keeps the zone; days narrow to weekdays: Saturday -> Monday.
    weekdays = await say(handler, ADMIN, "digest schedule 10:30 mon-fri")
    assert isinstance(weekdays, ScheduleInfo)
    assert (weekdays.timezone, weekdays.days) == ("Europe/Berlin", "mon-fri")
    assert weekdays.next_run == datetime(2024, 4, 1, 8, 30, tzinfo=UTC)

    off = await say(handler, ADMIN, "digest off")
    assert isinstance(off, ScheduleInfo) and not off.enabled and off.next_run is None

    with sqlite_db.session() as session:
        channel = channels.get_channel(session, "slack", "T1", "C_TEAM")
        assert channel is not None
        assert not channel.digest_enabled and channel.digest_time == "10:30"
        assert changed == [channel.id] * 3


async def test_schedule_request_from_elsewhere_is_validated(handler: CommandHandler) -> None:
    bad = await handler.handle(ADMIN, DigestSchedule("9:00", "Nowhere/City"))
    notice(bad, "usage")
    bad_zone = await handler.handle(ADMIN, DigestSchedule("09:00", "../../etc/passwd"))
    notice(bad_zone, "usage")
    assert await say(handler, ADMIN, "digest") == ScheduleInfo(enabled=False)


async def test_digest_off_without_a_schedule(handler: CommandHandler) -> None:
    notice(await say(handler, ADMIN, "digest off"), "info")


def _digest(channel_id: int) -> Digest:
    moment = datetime(2024, 3, 29, tzinfo=UTC)
    return Digest(
        title=f"digest for channel {channel_id}",
        day=date(2024, 3, 29),
        since=moment,
        until=moment,
        sections=(),
        total_stories=0,
    )


@pytest.mark.parametrize("is_async", [False, True])
async def test_digest_now_calls_back_with_the_channel(
    sqlite_db: Database, pack: Pack, is_async: bool
) -> None:
    calls: list[int] = []

    def sync_now(channel_id: int) -> Message:
        calls.append(channel_id)
        return _digest(channel_id)

    async def async_now(channel_id: int) -> Message:
        return sync_now(channel_id)

    handler = CommandHandler(sqlite_db, pack.themes, digest_now=async_now if is_async else sync_now)
    shown = await say(handler, ALICE, "digest now")  # anyone may ask for one
    assert isinstance(shown, Digest)
    await say(handler, ALICE, "digest now")
    with sqlite_db.session() as session:
        channel = channels.get_channel(session, "slack", "T1", "C_TEAM")
        assert channel is not None and not channel.digest_enabled
    assert calls == [channel.id, channel.id]
    assert shown.title == f"digest for channel {channel.id}"


async def test_failures_are_logged_not_shown(
    sqlite_db: Database, pack: Pack, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(channel_id: int) -> Message:
        raise RuntimeError("db password is hunter2")

    handler = CommandHandler(sqlite_db, pack.themes, digest_now=broken)
    with caplog.at_level(logging.ERROR, logger="bot.commands.handlers"):
        answer = notice(await say(handler, ALICE, "digest now"), "error")
    assert "hunter2" not in answer.text and "Traceback" not in answer.text
    ref = answer.text.rsplit("ref ", 1)[1].rstrip(").")
    assert len(ref) == 8
    assert any(ref in r.getMessage() and r.exc_info for r in caplog.records)


async def test_missing_services_answer_plainly(handler: CommandHandler) -> None:
    notice(await say(handler, ALICE, "digest now"), "error")
    notice(await say(handler, ALICE, "350k H100s", command="/claim"), "error")


# --- /claim ---


@pytest.fixture(scope="module")
def engine(pack: Pack) -> LookupEngine:
    return LookupEngine(ClaimIndex.from_ledger(load_ledger(pack.claims_path)))


async def test_claim_lookup_answers_from_the_engine(
    sqlite_db: Database, pack: Pack, engine: LookupEngine
) -> None:
    handler = CommandHandler(sqlite_db, pack.themes, claims=engine)
    answer = await say(handler, ALICE, "350k H100s", command="/claim")
    assert isinstance(answer, ClaimAnswer)
    assert answer.matches and "H100" in answer.matches[0].statement
    assert answer.matches[0].source.publication
    empty = notice(await say(handler, ALICE, "   ", command="/claim"), "usage")
    assert "/claim" in empty.text


# --- feeds ---


@pytest.fixture
async def internal_server() -> AsyncIterator[tuple[int, list[str]]]:
    """A real HTTP server on loopback that records every request it gets."""
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="<rss/>", content_type="application/rss+xml")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port, hits
    finally:
        await runner.cleanup()


async def test_feeds_are_admin_only(handler: CommandHandler) -> None:
    for text in ("feeds", "feeds add https://93.184.216.34/rss", "feeds remove https://x.org/"):
        notice(await say(handler, ALICE, text), "denied")
    listed = await say(handler, ADMIN, "feeds")
    assert listed == FeedList(feeds=())


async def test_feeds_add_refuses_internal_targets(
    handler: CommandHandler, internal_server: tuple[int, list[str]]
) -> None:
    port, hits = internal_server
    targets = [
        f"http://127.0.0.1:{port}/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        f"http://localhost:{port}",
        f"http://[::1]:{port}/feed",
        "gopher://127.0.0.1:70/",
    ]
    for url in targets:
        refused = await say(handler, ADMIN, f"feeds add {url}")
        assert isinstance(refused, Notice) and refused.level in ("denied", "error"), url
        assert "can't add" in refused.text
    assert await say(handler, ADMIN, "feeds list") == FeedList(feeds=())
    assert hits == []


async def test_feeds_add_list_remove(
    sqlite_db: Database, pack: Pack, internal_server: tuple[int, list[str]]
) -> None:
    port, hits = internal_server
    handler = CommandHandler(sqlite_db, pack.themes, allowlist=parse_allowlist("127.0.0.1"))
    local = f"http://127.0.0.1:{port}/feed.xml"
    public = "https://93.184.216.34/rss"
    notice(await say(handler, ADMIN, f"feeds add <{local}>"), "ok")
    notice(await handler.handle(ADMIN, FeedsAdd(public)), "ok")
    notice(await say(handler, ADMIN, f"feeds add {public}"), "info")

    listed = await say(handler, ADMIN, "feeds list")
    assert isinstance(listed, FeedList)
    assert [(f.url, f.state) for f in listed.feeds] == [(local, "ok"), (public, "ok")]

    notice(await say(handler, ADMIN, f"feeds remove {public}"), "ok")
    notice(await say(handler, ADMIN, f"feeds remove {public}"), "info")
    after = await say(handler, ADMIN, "feeds")
    assert isinstance(after, FeedList) and [f.url for f in after.feeds] == [local]
    assert hits == []  # adding a feed never fetches it from the command path


# --- repositories on SQLite and PostgreSQL ---


def test_subscription_repository(db: Database) -> None:
    alice = Owner("discord", "G1", "U1")
    bob = Owner("discord", "G1", "U2")
    with db.session() as s:
        first = subscriptions.add_subscription(
            s, alice, kind="phrase", value="Llama 4", delivery="dm", dest_ref="U1", cap=2
        )
        subscriptions.add_subscription(
            s, bob, kind="phrase", value="Llama 4", delivery="dm", dest_ref="U2", cap=2
        )
    with db.session() as s, pytest.raises(subscriptions.SubscriptionExists) as dup:
        subscriptions.add_subscription(
            s, alice, kind="phrase", value="llama 4", delivery="dm", dest_ref="U1", cap=2
        )
    assert dup.value.existing.id == first.id
    with db.session() as s:
        subscriptions.add_subscription(
            s, alice, kind="theme", value="agi", delivery="here", dest_ref="C1", cap=2
        )
    with db.session() as s, pytest.raises(subscriptions.SubscriptionCapReached):
        subscriptions.add_subscription(
            s, alice, kind="theme", value="capex", delivery="dm", dest_ref="U1", cap=2
        )
    with db.session() as s:
        assert subscriptions.remove_subscription_by_id(s, bob, first.id) == 0
        assert subscriptions.count_subscriptions(s, alice) == 2
        assert subscriptions.remove_subscriptions(s, alice, kind="phrase", value="LLAMA 4") == 1
        assert [x.value for x in subscriptions.list_subscriptions(s, alice)] == ["agi"]
        assert len(subscriptions.all_subscriptions(s)) == 2


def test_channel_repository(db: Database) -> None:
    with db.session() as s:
        made = channels.ensure_channel(s, "slack", "T1", "C1")
        assert channels.ensure_channel(s, "slack", "T1", "C1").id == made.id
        channels.ensure_channel(s, "slack", "T2", "C1")  # same ref, other workspace
    with db.session() as s:
        first = channels.set_schedule(s, "slack", "T1", "C1", time="08:00", timezone="Asia/Tokyo")
        assert (first.digest_tz, first.digest_days) == ("Asia/Tokyo", "mon-sun")
        again = channels.set_schedule(s, "slack", "T1", "C1", time="09:15", days="mon,wed")
        assert (again.digest_time, again.digest_tz, again.digest_days) == (
            "09:15",
            "Asia/Tokyo",
            "mon,wed",
        )
    with db.session() as s:
        assert [c.ref for c in channels.scheduled_channels(s)] == ["C1"]
        assert channels.disable_digest(s, "slack", "T1", "C1") is not None
        assert channels.disable_digest(s, "slack", "T9", "nowhere") is None
        assert channels.scheduled_channels(s) == []


async def test_admin_sets_what_an_empty_day_gets(db: Database) -> None:
    from bot.messages import Notice, ScheduleInfo
    from bot.pack import load_pack
    from storage.channels import get_channel

    handler = CommandHandler(db, load_pack().themes)
    admin = Caller("console", "w", "u-admin", "general", is_admin=True)
    user = Caller("console", "w", "u-user", "general")
    denied = await handler.handle_text(user, "brief", "digest empty skip")
    assert isinstance(denied, Notice) and denied.level == "denied"
    answer = await handler.handle_text(admin, "brief", "digest empty skip")
    assert isinstance(answer, ScheduleInfo) and answer.empty_day == "skip"
    with db.session() as s:
        channel = get_channel(s, "console", "w", "general")
        assert channel is not None and channel.empty_digest == "skip"
    bad = await handler.handle_text(admin, "brief", "digest empty maybe")
    assert isinstance(bad, Notice) and bad.level == "usage" and "line" in bad.text

"""Digest scheduling with time travel: misfires, restarts, DST; and the runtime's lifecycle.

APScheduler keeps its jobs in a SQLite file. A "restart" is a new scheduler on the same
store, with the clock moved on by time_machine (no sleeping through real hours).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from bot.app import open_app
from bot.config import Settings
from bot.delivery import Destination
from bot.messages import Notice
from bot.outbox import enqueue
from bot.runtime import BotRuntime, current, set_current
from bot.scheduler import (
    DIGEST_MISFIRE_GRACE,
    build_scheduler,
    digest_job_id,
    sync_digest_jobs,
)
from storage.db import Database
from storage.models import Channel, OutboxMessage
from tests.chatserver import ChatServer, HttpSender, running_chat_server

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=BERLIN)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


@dataclass
class Calls:
    """Stand-in for bot.digest.queue_digest / bot.alerts.flush_alerts: records each call."""

    digests: list[tuple[int, datetime]] = field(default_factory=list)

    def queue_digest(self, db: Database, pack: object, channel_id: int, now: datetime) -> None:
        self.digests.append((channel_id, now))

    def flush_alerts(self, db: Database, pack: object, now: datetime) -> None:
        pass


@dataclass
class StandInApp:
    db: Database
    pack: object = "pack"

    def ingestor(self) -> Any:
        raise AssertionError("no fetch expected in these tests")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'bot.db'}")
    try:
        yield db
    finally:
        db.dispose()


def add_channel(
    db: Database, *, at: str = "09:00", tz: str = "Europe/Berlin", ref: str = "C1"
) -> int:
    with db.session() as session:
        channel = Channel(
            platform="test", ref=ref, digest_enabled=True, digest_time=at, digest_tz=tz
        )
        session.add(channel)
        session.flush()
        return channel.id


@asynccontextmanager
async def bot_up(db: Database, calls: Calls) -> AsyncIterator[AsyncIOScheduler]:
    """What the runtime does at start, with a stand-in digest function behind the jobs."""
    runtime = BotRuntime(
        StandInApp(db), {}, queue_digest=calls.queue_digest, flush_alerts=calls.flush_alerts
    )
    set_current(runtime)
    scheduler = build_scheduler(db.url)
    scheduler.start(paused=True)
    sync_digest_jobs(scheduler, db)
    scheduler.resume()
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0.01)
        set_current(None)


async def settle(calls: Calls, expected: int) -> None:
    """Let the scheduler's loop turn until ``expected`` digests ran, then a little longer
    so that a wrong extra run would show up."""
    for _ in range(200):
        if len(calls.digests) >= expected:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # room for a wrong second run to show up


def next_run(scheduler: AsyncIOScheduler, channel_id: int) -> datetime:
    job = scheduler.get_job(digest_job_id(channel_id))
    assert job is not None
    return job.next_run_time  # type: ignore[no-any-return]


async def test_down_at_nine_back_at_nine_forty_posts_exactly_one_digest(store: Database) -> None:
    channel_id = add_channel(store)
    calls = Calls()
    with time_machine.travel(berlin(2024, 1, 15, 8, 59), tick=False) as clock:
        async with bot_up(store, calls) as scheduler:
            assert next_run(scheduler, channel_id) == berlin(2024, 1, 15, 9, 0)
        # down over 09:00
        clock.move_to(berlin(2024, 1, 15, 9, 40))
        async with bot_up(store, calls) as scheduler:
            await settle(calls, 1)
            assert next_run(scheduler, channel_id) == berlin(2024, 1, 16, 9, 0)
        clock.move_to(berlin(2024, 1, 15, 9, 50))
        async with bot_up(store, calls):
            await settle(calls, 1)

    assert calls.digests == [(channel_id, berlin(2024, 1, 15, 9, 40))]


async def test_back_after_the_grace_time_skips_that_day(store: Database) -> None:
    channel_id = add_channel(store)
    calls = Calls()
    with time_machine.travel(berlin(2024, 1, 15, 8, 59), tick=False) as clock:
        async with bot_up(store, calls):
            pass
        clock.move_to(berlin(2024, 1, 15, 9, 0) + DIGEST_MISFIRE_GRACE + (DIGEST_MISFIRE_GRACE / 6))
        async with bot_up(store, calls) as scheduler:
            await settle(calls, 0)
            assert next_run(scheduler, channel_id) == berlin(2024, 1, 16, 9, 0)
    assert calls.digests == []


async def test_days_of_outage_coalesce_into_one_digest(store: Database) -> None:
    channel_id = add_channel(store)
    calls = Calls()
    with time_machine.travel(berlin(2024, 1, 15, 8, 59), tick=False) as clock:
        async with bot_up(store, calls) as scheduler:
            job = scheduler.get_job(digest_job_id(channel_id))
            assert job is not None and job.coalesce
            assert job.misfire_grace_time == DIGEST_MISFIRE_GRACE.total_seconds()
        clock.move_to(berlin(2024, 1, 18, 9, 30))  # missed Mon, Tue, Wed; Thu just passed
        async with bot_up(store, calls):
            await settle(calls, 1)
    assert calls.digests == [(channel_id, berlin(2024, 1, 18, 9, 30))]


@pytest.mark.parametrize(
    ("day_before", "switch_day", "utc_hour_before", "utc_hour_after"),
    [
        ((2024, 3, 30), (2024, 3, 31), 8, 7),  # CET -> CEST
        ((2024, 10, 26), (2024, 10, 27), 7, 8),  # CEST -> CET
    ],
)
async def test_digest_stays_at_nine_local_across_dst(
    store: Database,
    day_before: tuple[int, int, int],
    switch_day: tuple[int, int, int],
    utc_hour_before: int,
    utc_hour_after: int,
) -> None:
    channel_id = add_channel(store)
    calls = Calls()
    with time_machine.travel(berlin(*day_before, 8, 30), tick=False) as clock:
        async with bot_up(store, calls) as scheduler:
            assert next_run(scheduler, channel_id) == utc(*day_before, utc_hour_before, 0)
            clock.move_to(utc(*day_before, utc_hour_before, 0, 1))
            scheduler.wakeup()
            await settle(calls, 1)
            assert next_run(scheduler, channel_id) == utc(*switch_day, utc_hour_after, 0)
            assert next_run(scheduler, channel_id) == berlin(*switch_day, 9, 0)

            clock.move_to(berlin(*switch_day, 8, 59, 30))
            scheduler.wakeup()
            await settle(calls, 1)
            assert len(calls.digests) == 1, "nothing before 09:00 local"

            clock.move_to(utc(*switch_day, utc_hour_after, 0, 1))
            scheduler.wakeup()
            await settle(calls, 2)

    assert calls.digests == [
        (channel_id, utc(*day_before, utc_hour_before, 0, 1)),
        (channel_id, utc(*switch_day, utc_hour_after, 0, 1)),
    ]


async def test_jobs_follow_the_channels_table(store: Database) -> None:
    keep = add_channel(store, at="09:00", ref="C1")
    change = add_channel(store, at="07:30", tz="America/New_York", ref="C2")
    drop = add_channel(store, at="18:00", ref="C3")
    broken = add_channel(store, at="09:00", tz="Mars/Olympus_Mons", ref="C4")
    calls = Calls()
    with time_machine.travel(utc(2024, 1, 15, 0, 0), tick=False):
        async with bot_up(store, calls) as scheduler:
            ids = {job.id for job in scheduler.get_jobs()}
            assert {digest_job_id(c) for c in (keep, change, drop)} <= ids
            assert digest_job_id(broken) not in ids

            with store.session() as session:
                changed = session.get(Channel, change)
                dropped = session.get(Channel, drop)
                assert changed is not None and dropped is not None
                changed.digest_time = "08:15"
                session.delete(dropped)
            report = sync_digest_jobs(scheduler, store)

            assert report.removed == (drop,)
            assert report.added == (change,)
            assert set(report.kept) == {keep}
            assert scheduler.get_job(digest_job_id(drop)) is None
            assert next_run(scheduler, change) == datetime(
                2024, 1, 15, 8, 15, tzinfo=ZoneInfo("America/New_York")
            )


async def test_reschedule_channel_switches_a_digest_off_and_on(store: Database) -> None:
    channel_id = add_channel(store)
    runtime = BotRuntime(StandInApp(store), {}, queue_digest=Calls().queue_digest)
    scheduler = build_scheduler(store.url)
    scheduler.start(paused=True)
    runtime.scheduler = scheduler
    try:
        runtime.reschedule_channel(channel_id)
        assert scheduler.get_job(digest_job_id(channel_id)) is not None
        with store.session() as session:
            channel = session.get(Channel, channel_id)
            assert channel is not None
            channel.digest_enabled = False
        runtime.reschedule_channel(channel_id)
        assert scheduler.get_job(digest_job_id(channel_id)) is None
        runtime.reschedule_channel(channel_id)  # already off: nothing to remove, no error
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0.01)


# -- the runtime as a whole --------------------------------------------------------------


@pytest.fixture
async def chat() -> AsyncIterator[ChatServer]:
    async with running_chat_server() as server:
        yield server


async def test_runtime_posts_the_missed_digest_once_and_stops_on_sigterm(
    tmp_path: Path, chat: ChatServer
) -> None:
    app = open_app(Settings(database_url=f"sqlite:///{tmp_path / 'bot.db'}"))
    add_channel(app.db)
    adapter_saw_stop: list[bool] = []

    async def adapter(stop: asyncio.Event) -> None:
        await stop.wait()
        adapter_saw_stop.append(True)

    def start() -> tuple[asyncio.Event, asyncio.Task[None]]:
        runtime = BotRuntime(
            app, {"test": HttpSender(chat.url)}, tasks=[adapter], drain_interval_s=0.05
        )
        runtime.deliverer.pace = 0.0
        stop = asyncio.Event()
        return stop, asyncio.create_task(runtime.run(stop))

    async def wait_for_posts(n: int) -> None:
        for _ in range(200):
            if len(chat.posted) >= n:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)

    try:
        with time_machine.travel(berlin(2024, 1, 15, 8, 59), tick=False) as clock:
            stop, task = start()
            await asyncio.sleep(0.2)
            assert isinstance(current(), BotRuntime)
            os.kill(os.getpid(), signal.SIGTERM)  # graceful shutdown on SIGTERM
            await asyncio.wait_for(task, timeout=5)
            assert stop.is_set() and current() is None

            clock.move_to(berlin(2024, 1, 15, 9, 40))
            stop, task = start()
            await wait_for_posts(1)
            with app.db.session() as session:  # a reply queued while running goes out too
                note = Notice(level="ok", text="subscribed")
                where = Destination(platform="test", workspace="", ref="U1", direct=True)
                enqueue(session, key="reply:1", dest=where, kind="reply", message=note)
            await wait_for_posts(2)
            stop.set()
            await asyncio.wait_for(task, timeout=5)

            clock.move_to(berlin(2024, 1, 15, 9, 50))
            stop, task = start()
            await wait_for_posts(2)  # and a moment for a wrong second digest
            stop.set()
            await asyncio.wait_for(task, timeout=5)
        with app.db.session() as session:
            statuses = set(session.scalars(select(OutboxMessage.status)))
    finally:
        app.close()

    digests = [p for p in chat.posted if p.payload.get("kind") == "digest"]
    assert len(digests) == 1, chat.posted
    assert digests[0].dest == "C1"
    assert chat.count_by_key()["reply:1"] == 1
    assert adapter_saw_stop == [True, True, True]
    assert statuses == {"sent"}

"""The outbox against a real loopback chat server: exactly once, retries, permanent failures."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.delivery import Destination, Sent
from bot.messages import Message, Notice
from bot.outbox import Deliverer, enqueue, outbox_status
from storage.db import Database
from storage.models import OutboxMessage
from tests.chatserver import ChatServer, HttpSender, running_chat_server

T0 = datetime(2024, 7, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
async def chat() -> AsyncIterator[ChatServer]:
    async with running_chat_server() as server:
        yield server


def dest(ref: str = "C1", *, direct: bool = False) -> Destination:
    return Destination(platform="test", workspace="W1", ref=ref, direct=direct)


def note(text: str) -> Notice:
    return Notice(level="info", text=text)


def deliverer(
    db: Database,
    chat: ChatServer,
    *,
    owner: str = "replica-a",
    pace_per_destination: float = 0.0,
    lease: timedelta = timedelta(minutes=2),
    max_attempts: int = 10,
) -> Deliverer:
    return Deliverer(
        db,
        {"test": HttpSender(chat.url)},
        owner=owner,
        lease=lease,
        max_attempts=max_attempts,
        pace_per_destination=pace_per_destination,
    )


def queue(db: Database, key: str, *, ref: str = "C1", message: Message | None = None) -> bool:
    with db.session() as session:
        return enqueue(
            session, key=key, dest=dest(ref), kind="notice", message=message or note(key), now=T0
        )


def row(db: Database, key: str) -> OutboxMessage:
    with db.session() as session:
        found = session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
        assert found is not None
        return found


async def test_enqueue_twice_with_one_key_queues_once(db: Database) -> None:
    assert queue(db, "digest:1:2024-07-23") is True
    assert queue(db, "digest:1:2024-07-23", message=note("another text")) is False
    with db.session() as session:
        rows = session.scalars(select(OutboxMessage)).all()
    assert len(rows) == 1
    assert rows[0].payload["text"] == "digest:1:2024-07-23"


async def test_enqueue_joins_the_callers_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as session:
        enqueue(session, key="k", dest=dest(), kind="notice", message=note("x"), now=T0)
        raise RuntimeError("the caller's work failed")
    with db.session() as session:
        assert outbox_status(session).counts == {}


async def test_each_message_is_posted_once_and_recorded(db: Database, chat: ChatServer) -> None:
    queue(db, "a")
    queue(db, "b", ref="C2")
    first = await deliverer(db, chat).drain_once(T0)
    again = await deliverer(db, chat).drain_once(T0 + timedelta(hours=1))

    assert (first.sent, again.claimed) == (2, 0)
    assert chat.count_by_key() == {"a": 1, "b": 1}
    assert chat.posted[0].payload["text"] in {"a", "b"}
    sent = row(db, "a")
    assert sent.status == "sent"
    assert sent.platform_message_id == next(p.id for p in chat.posted if p.key == "a")


async def test_rate_limited_message_waits_for_retry_after_then_goes_once(
    db: Database, chat: ChatServer
) -> None:
    queue(db, "a")
    chat.rate_limit_once(retry_after=30)
    d = deliverer(db, chat)

    assert (await d.drain_once(T0)).retried == 1
    assert row(db, "a").next_attempt_at == T0 + timedelta(seconds=30)
    assert (await d.drain_once(T0 + timedelta(seconds=20))).claimed == 0
    assert (await d.drain_once(T0 + timedelta(seconds=31))).sent == 1
    assert chat.count_by_key() == {"a": 1}
    assert chat.attempts == 2


async def test_server_errors_are_retried_with_doubling_backoff(
    sqlite_db: Database, chat: ChatServer
) -> None:
    queue(sqlite_db, "a")
    chat.fail_times(3)
    d = deliverer(sqlite_db, chat)
    now, waits = T0, []
    for _ in range(3):
        assert (await d.drain_once(now)).retried == 1
        due = row(sqlite_db, "a").next_attempt_at
        waits.append(due - now)
        now = due
    assert (await d.drain_once(now)).sent == 1

    assert waits == [timedelta(seconds=5), timedelta(seconds=10), timedelta(seconds=20)]
    assert row(sqlite_db, "a").attempts == 4
    assert chat.count_by_key() == {"a": 1}


async def test_gives_up_after_max_attempts(sqlite_db: Database, chat: ChatServer) -> None:
    queue(sqlite_db, "a")
    chat.fail_times(100)
    d = deliverer(sqlite_db, chat, max_attempts=3)
    now = T0
    for _ in range(5):
        await d.drain_once(now)
        now += timedelta(hours=2)

    assert chat.attempts == 3
    failed = row(sqlite_db, "a")
    assert failed.status == "failed"
    assert failed.last_error is not None and "gave up after 3 attempts" in failed.last_error


async def test_missing_channel_fails_for_good_and_shows_in_status(
    db: Database, chat: ChatServer
) -> None:
    queue(db, "a", ref="C404")
    queue(db, "b", ref="C1")
    chat.gone("C404")
    d = deliverer(db, chat)

    report = await d.drain_once(T0)
    await d.drain_once(T0 + timedelta(days=1))

    assert (report.sent, report.failed) == (1, 1)
    assert chat.attempts == 2  # the gone channel was tried once, never again
    with db.session() as session:
        status = outbox_status(session, now=T0 + timedelta(days=1))
    assert status.counts == {"sent": 1, "failed": 1}
    assert status.oldest_pending_age is None
    [failure] = status.failures
    assert (failure.dest.ref, failure.kind, failure.error) == (
        "C404",
        "notice",
        "channel_not_found",
    )
    assert failure.when == T0


async def test_status_reports_the_oldest_waiting_message(sqlite_db: Database) -> None:
    queue(sqlite_db, "a")
    with sqlite_db.session() as session:
        status = outbox_status(session, now=T0 + timedelta(minutes=7))
    assert status.counts == {"pending": 1}
    assert status.oldest_pending_age == timedelta(minutes=7)


async def test_two_replicas_draining_together_never_double_post(
    db: Database, chat: ChatServer
) -> None:
    keys = [f"k{i}" for i in range(40)]
    for i, key in enumerate(keys):
        queue(db, key, ref=f"C{i % 5}")
    chat.slow(0.005)

    def replica(owner: str) -> int:
        # Its own engine and its own event loop, as another process would have.
        own_db = Database(db.url, migrate=False)

        async def drain() -> int:
            d = Deliverer(
                own_db, {"test": HttpSender(chat.url)}, owner=owner, pace_per_destination=0.0
            )
            d.batch = 4
            sent = 0
            while (report := await d.drain_once(T0)).claimed:
                sent += report.sent
            return sent

        try:
            return asyncio.run(drain())
        finally:
            own_db.dispose()

    sent_a, sent_b = await asyncio.gather(
        asyncio.to_thread(replica, "replica-a"), asyncio.to_thread(replica, "replica-b")
    )

    assert sent_a + sent_b == len(keys)
    assert sent_a > 0 and sent_b > 0, "both replicas should have taken a share"
    assert chat.count_by_key() == dict.fromkeys(keys, 1)


async def test_row_left_mid_send_is_checked_before_posting_again(
    sqlite_db: Database, chat: ChatServer
) -> None:
    queue(sqlite_db, "posted-before-crash")
    queue(sqlite_db, "never-posted")
    crashed = deliverer(sqlite_db, chat, lease=timedelta(minutes=2), owner="dead")
    claimed = crashed._claim(T0)  # the dead replica leased both rows ...
    sender = HttpSender(chat.url)
    # ... and got exactly one of them onto the platform before it died.
    await sender.send(claimed[0].dest, note("x"), "posted-before-crash")

    early = await deliverer(sqlite_db, chat).drain_once(T0 + timedelta(minutes=1))
    later = await deliverer(sqlite_db, chat).drain_once(T0 + timedelta(minutes=3))

    assert early.claimed == 0, "a live lease is respected"
    assert (later.recovered, later.sent) == (1, 1)
    assert chat.count_by_key() == {"posted-before-crash": 1, "never-posted": 1}
    recovered = row(sqlite_db, "posted-before-crash")
    assert recovered.status == "sent"
    assert recovered.platform_message_id == chat.posted[0].id


async def test_send_without_an_answer_is_checked_not_reposted(
    sqlite_db: Database, chat: ChatServer
) -> None:
    queue(sqlite_db, "a")
    chat.slow(0.3)  # the platform stores the message after the client gave up
    d = deliverer(sqlite_db, chat, lease=timedelta(seconds=0.2))

    first = await d.drain_once(T0)
    await asyncio.sleep(0.4)
    chat.slow(0.0)
    second = await d.drain_once(T0 + timedelta(hours=1))

    assert first.retried == 1
    assert second.recovered == 1
    assert chat.count_by_key() == {"a": 1}
    assert row(sqlite_db, "a").status == "sent"


async def test_unknown_platform_waits_without_using_attempts(
    sqlite_db: Database, chat: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    with sqlite_db.session() as session:
        for key in ("x1", "x2"):
            where = Destination(platform="matrix", workspace="", ref="R")
            enqueue(session, key=key, dest=where, kind="notice", message=note(key), now=T0)
    d = deliverer(sqlite_db, chat)
    with caplog.at_level(logging.WARNING, logger="bot.outbox"):
        await d.drain_once(T0)
        await d.drain_once(T0 + timedelta(minutes=1))

    waiting = row(sqlite_db, "x1")
    assert (waiting.status, waiting.attempts) == ("pending", 0)
    assert waiting.last_error == "no sender for platform 'matrix'"
    assert sum("no sender for platform" in r.getMessage() for r in caplog.records) == 1


async def test_one_broken_row_does_not_stop_the_others(
    sqlite_db: Database, chat: ChatServer
) -> None:
    with sqlite_db.session() as session:
        session.add(
            OutboxMessage(
                idempotency_key="broken",
                platform="test",
                dest_ref="C1",
                kind="notice",
                payload={"kind": "no-such-message"},
                next_attempt_at=T0,
            )
        )
    queue(sqlite_db, "fine", ref="C2")

    report = await deliverer(sqlite_db, chat).drain_once(T0)

    assert (report.sent, report.failed) == (1, 1)
    assert chat.count_by_key() == {"fine": 1}
    assert row(sqlite_db, "broken").status == "failed"


async def test_pacing_spaces_posts_to_one_destination_only(
    sqlite_db: Database, chat: ChatServer
) -> None:
    for key in ("a1", "a2", "a3"):
        queue(sqlite_db, key, ref="busy")
    queue(sqlite_db, "b1", ref="quiet")

    await deliverer(sqlite_db, chat, pace_per_destination=0.2).drain_once(T0)

    busy = [p.at for p in chat.posted if p.dest == "busy"]
    quiet = next(p.at for p in chat.posted if p.dest == "quiet")
    gaps = [later - earlier for earlier, later in itertools.pairwise(busy)]
    assert len(busy) == 3 and all(gap >= 0.19 for gap in gaps), gaps
    assert quiet - busy[0] < 0.15, "another destination is not held up"


async def test_direct_messages_keep_their_flag(sqlite_db: Database, chat: ChatServer) -> None:
    seen: list[Destination] = []

    class Recording(HttpSender):
        async def send(self, dest: Destination, message: Message, idempotency_key: str) -> Sent:
            seen.append(dest)
            return await super().send(dest, message, idempotency_key)

    with sqlite_db.session() as session:
        enqueue(session, key="dm", dest=dest("U7", direct=True), kind="alert", message=note("x"))
    await Deliverer(sqlite_db, {"test": Recording(chat.url)}, owner="a").drain_once()

    assert seen == [dest("U7", direct=True)]
    assert chat.posted[0].payload == {
        "kind": "notice",
        "level": "info",
        "text": "x",
        "suggestions": [],
    }


async def test_run_delivers_until_stopped(sqlite_db: Database, chat: ChatServer) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(deliverer(sqlite_db, chat).run(stop, interval=0.05))
    queue(sqlite_db, "late-arrival")
    for _ in range(100):
        if chat.posted:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    assert chat.count_by_key() == {"late-arrival": 1}


async def test_rows_the_lease_cannot_cover_are_handed_back(
    sqlite_db: Database, chat: ChatServer
) -> None:
    for key in ("a1", "a2", "a3"):
        queue(sqlite_db, key, ref="busy")
    # Sends are abandoned after half the lease (0.5 s); with 0.3 s pacing the third send
    # would start with only 0.4 s of lease left, so it is not started.
    d = deliverer(sqlite_db, chat, lease=timedelta(seconds=1), pace_per_destination=0.3)

    report = await d.drain_once(T0)

    assert (report.sent, report.retried) == (2, 1)
    assert chat.count_by_key() == {"a1": 1, "a2": 1}
    handed_back = row(sqlite_db, "a3")
    assert (handed_back.status, handed_back.attempts, handed_back.lease_owner) == (
        "pending",
        0,
        None,
    )
    assert (await d.drain_once(T0)).sent == 1


async def test_uncertain_row_stays_uncertain_while_no_sender_runs(
    sqlite_db: Database, chat: ChatServer
) -> None:
    queue(sqlite_db, "a")
    deliverer(sqlite_db, chat, owner="dead")._claim(T0)
    await HttpSender(chat.url).send(dest(), note("a"), "a")  # posted, then the replica died
    later = T0 + timedelta(minutes=5)

    await Deliverer(sqlite_db, {}, owner="no-adapters-yet").drain_once(later)
    assert row(sqlite_db, "a").status == "sending"

    report = await deliverer(sqlite_db, chat).drain_once(later + timedelta(minutes=1))
    assert report.recovered == 1
    assert chat.count_by_key() == {"a": 1}

"""Group commit on real SQLite and PostgreSQL: writes share transactions, and a failing
write loses nothing but itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from storage import feeds as feed_repo
from storage.db import Database
from storage.models import Feed
from storage.writer import GroupWriter


def add(url: str) -> Callable[[Session], int]:
    def work(session: Session) -> int:
        return feed_repo.add_feed(session, url).id

    return work


def count_commits(db: Database) -> list[int]:
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda _conn: commits.append(1))
    return commits


def stored_urls(db: Database) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(Feed.url)))


async def write_all(writer: GroupWriter, works: list[object]) -> list[object]:
    return await asyncio.gather(
        *(writer.write(w) for w in works),  # type: ignore[arg-type]
        return_exceptions=True,
    )


def test_queued_writes_share_commits_and_return_their_results(db: Database) -> None:
    commits = count_commits(db)
    writer = GroupWriter(db, max_batch=8)
    urls = [f"https://feeds.example/{n}" for n in range(20)]
    ids = asyncio.run(write_all(writer, [add(u) for u in urls]))
    # 20 writes queued at once: 8 + 8 + 4, three transactions instead of twenty.
    assert len(commits) == 3
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 20
    assert stored_urls(db) == set(urls)


def test_a_failing_write_is_rolled_back_alone(db: Database) -> None:
    def broken(session: Session) -> None:
        feed_repo.add_feed(session, "https://feeds.example/half-done")
        raise ValueError("entry 7 is not what it claimed")

    writer = GroupWriter(db)
    results = asyncio.run(
        write_all(writer, [add("https://feeds.example/a"), broken, add("https://feeds.example/b")])
    )
    assert isinstance(results[1], ValueError)
    assert "entry 7" in str(results[1])
    assert stored_urls(db) == {"https://feeds.example/a", "https://feeds.example/b"}


def test_a_write_that_breaks_the_shared_commit_is_retried_alone(sqlite_db: Database) -> None:
    """A write can pass its savepoint yet doom the commit (here: a deferred foreign key
    that points nowhere). The others are then written again, each on its own."""

    def dangling(session: Session) -> None:
        session.connection().exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        session.connection().exec_driver_sql(
            "INSERT INTO items (feed_id, source, title, title_key, published_at, fetched_at,"
            " text, summary, content_hash, relevance, relevant, relevance_reasons, alertable,"
            " alerts_matched, published_was_missing)"
            " VALUES (999999, 's', 't', 't', '2026-11-20 00:00:00', '2026-11-20 00:00:00',"
            " '', '', 'h', 0, 0, '[]', 1, 0, 0)"
        )

    commits = count_commits(sqlite_db)
    writer = GroupWriter(sqlite_db)
    results = asyncio.run(
        write_all(
            writer, [add("https://feeds.example/a"), dangling, add("https://feeds.example/b")]
        )
    )
    # Commits attempted: the shared one (refused), then each write alone (its own refused).
    assert len(commits) == 4
    assert isinstance(results[1], Exception)
    assert stored_urls(sqlite_db) == {"https://feeds.example/a", "https://feeds.example/b"}


@pytest.mark.parametrize("batch", [1, 4])
def test_results_reach_the_right_caller(db: Database, batch: int) -> None:
    writer = GroupWriter(db, max_batch=batch)

    def echo(n: int) -> object:
        return lambda session: (n, session.scalar(select(func.count()).select_from(Feed)))

    results = asyncio.run(write_all(writer, [echo(n) for n in range(6)]))
    assert [r[0] for r in results] == list(range(6))  # type: ignore[index]


def test_announced_writes_arriving_one_by_one_share_a_commit(db: Database) -> None:
    commits = count_commits(db)
    writer = GroupWriter(db, max_batch=8, linger=5.0)

    async def trickle() -> list[object]:
        with writer.expecting(4):
            tasks: list[asyncio.Task[int]] = []
            for n in range(4):  # each arrives after the one before would have committed
                tasks.append(asyncio.create_task(writer.write(add(f"https://feeds.example/{n}"))))
                await asyncio.sleep(0.05)
            return await asyncio.gather(*tasks)

    started = time.monotonic()
    ids = asyncio.run(trickle())
    # The last announced write ends the wait: one transaction, long before the linger.
    assert len(commits) == 1 and len(set(ids)) == 4
    assert time.monotonic() - started < 2.0


def test_a_lone_write_commits_at_once(db: Database) -> None:
    writer = GroupWriter(db, linger=5.0)
    started = time.monotonic()
    asyncio.run(write_all(writer, [add("https://feeds.example/alone")]))
    assert time.monotonic() - started < 2.0
    assert stored_urls(db) == {"https://feeds.example/alone"}


def test_writes_announced_but_never_made_delay_a_batch_by_the_linger_only(db: Database) -> None:
    commits = count_commits(db)
    writer = GroupWriter(db, linger=0.3)

    async def one_of_three() -> None:
        with writer.expecting(3):
            await writer.write(add("https://feeds.example/only"))

    started = time.monotonic()
    asyncio.run(one_of_three())
    waited = time.monotonic() - started
    assert 0.3 <= waited < 3.0
    assert len(commits) == 1 and writer.expected == 0

"""Storage on real SQLite and real PostgreSQL: schema, feeds, items, dedupe, clusters."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select, text

from storage import feeds as feed_repo
from storage.db import Database, current_revision, downgrade, upgrade
from storage.items import NewItem, ThemeTag, store_items
from storage.models import Cluster, Feed, Item, ItemTheme

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def make_item(**over: object) -> NewItem:
    fields: dict[str, object] = dict(
        guid="g1",
        url="https://news.example/a",
        canonical_url="https://news.example/a",
        source="News Example",
        title="Meta ships a new Llama",
        title_key="meta ships a new llama",
        author="A. Writer",
        published_at=NOW,
        published_was_missing=False,
        fetched_at=NOW,
        text="Meta released a new Llama model today.",
        summary="Meta released a new Llama model today.",
        content_hash="h1",
        signature=None,
        band_keys=(),
        relevance=0.9,
        relevant=True,
        themes=(ThemeTag("llama-models", 0.8, ("llama",)),),
    )
    fields.update(over)
    return NewItem(**fields)  # type: ignore[arg-type]


def same_prefix(sig_a: str, sig_b: str) -> bool:
    """Test signatures "story:copy": copies of one story share the part before ":"."""
    return sig_a.split(":")[0] == sig_b.split(":")[0]


def never_same(_a: str, _b: str) -> bool:
    return False


def test_migrations_upgrade_and_downgrade(db: Database) -> None:
    assert current_revision(db.engine) is not None
    tables = set(inspect(db.engine).get_table_names())
    assert {"feeds", "items", "clusters", "claims", "outbox", "subscriptions"} <= tables
    downgrade(db.engine, "base")
    assert "items" not in set(inspect(db.engine).get_table_names())
    upgrade(db.engine)
    assert "items" in set(inspect(db.engine).get_table_names())


def test_story_keys_move_into_the_story_row_and_back(db: Database) -> None:
    """Migration 0004 folds cluster_keys rows into clusters.band_keys; downgrading
    unfolds them again: no story loses the keys it is found by."""
    downgrade(db.engine, "0003")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO clusters (id, title, first_seen_at, last_seen_at, item_count,"
                " source_count) VALUES (7, 't', :now, :now, 1, 1), (8, 'u', :now, :now, 1, 1)"
            ),
            {"now": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO cluster_keys (key, cluster_id, created_at)"
                " VALUES ('00aa', 7, :now), ('f0bb', 7, :now)"
            ),
            {"now": NOW},
        )
    upgrade(db.engine)
    with db.session() as s:
        keys = {c.id: set(c.band_keys.split()) for c in s.scalars(select(Cluster))}
    assert keys == {7: {"00aa", "f0bb"}, 8: set()}
    downgrade(db.engine, "0003")
    with db.engine.connect() as conn:
        rows = {tuple(r) for r in conn.execute(text("SELECT key, cluster_id FROM cluster_keys"))}
    assert rows == {("00aa", 7), ("f0bb", 7)}
    upgrade(db.engine)


def test_sqlite_pragmas(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_reading_never_waits_for_a_writer(db: Database) -> None:
    """A read (the guids ingest looks up before preparing a feed) while another
    transaction holds the write lock: it sees the committed state at once."""
    with db.session() as s:
        feed_repo.add_feed(s, "https://a.example/feed")
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with db.session() as s:
            feed_repo.add_feed(s, "https://b.example/feed")
            holding.set()
            release.wait(20)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with db.reading() as s:
            urls = set(s.scalars(select(Feed.url)))
        waited = time.monotonic() - started
    finally:
        release.set()
        thread.join()
    assert urls == {"https://a.example/feed"}
    assert waited < 5  # a locking read would wait for the writer's 20 s


def test_datetimes_come_back_aware_utc(db: Database) -> None:
    berlin = datetime(2026, 3, 29, 3, 30, tzinfo=UTC).astimezone()
    with db.session() as s:
        feed = feed_repo.add_feed(s, "https://a.example/feed")
        feed.last_success_at = berlin
    with db.session() as s:
        got = s.scalar(select(Feed.last_success_at))
    assert got == berlin and got.tzinfo is not None and got.utcoffset() == timedelta(0)


def test_feed_crud_and_duplicates(db: Database) -> None:
    with db.session() as s:
        feed_repo.add_feed(s, "https://a.example/feed", title="A")
    with pytest.raises(feed_repo.FeedExists), db.session() as s:
        feed_repo.add_feed(s, "https://a.example/feed")
    with db.session() as s:
        assert [f.url for f in feed_repo.list_feeds(s)] == ["https://a.example/feed"]
        feed_repo.remove_feed(s, "https://a.example/feed")
    with pytest.raises(feed_repo.FeedNotFound), db.session() as s:
        feed_repo.remove_feed(s, "https://a.example/feed")


def test_due_feeds_are_leased_once(db: Database) -> None:
    now = datetime.now(UTC) + timedelta(seconds=1)
    with db.session() as s:
        for n in range(3):
            feed_repo.add_feed(s, f"https://a.example/{n}")
        later = feed_repo.add_feed(s, "https://a.example/later")
        later.next_fetch_at = now + timedelta(hours=1)
    with db.session() as s:
        first = [f.url for f in feed_repo.claim_due_feeds(s, now, owner="r1")]
    with db.session() as s:
        second = feed_repo.claim_due_feeds(s, now, owner="r2")
    assert len(first) == 3 and "https://a.example/later" not in first
    assert second == [], "a leased feed must not be handed to a second replica"
    with db.session() as s:
        expired = feed_repo.claim_due_feeds(s, now + timedelta(minutes=6), owner="r2")
    assert len(expired) == 3, "an expired lease (dead replica) is taken over"


def test_failure_then_pause_is_recorded(db: Database) -> None:
    with db.session() as s:
        fid = feed_repo.add_feed(s, "https://a.example/feed").id
    for n in range(3):
        outcome = feed_repo.FetchOutcome(
            fetched_at=NOW, next_fetch_at=NOW, ok=False, error="HTTP 500", pause=n == 2
        )
        with db.session() as s:
            feed_repo.record_outcome(s, fid, outcome)
    with db.session() as s:
        feed = s.get(Feed, fid)
        assert feed is not None
        assert feed.consecutive_errors == 3 and not feed.enabled
        assert feed.last_error == "HTTP 500" and "3 consecutive failures" in (
            feed.paused_reason or ""
        )
        feed_repo.resume_feed(s, feed.url)
    with db.session() as s:
        feed = s.get(Feed, fid)
        assert feed is not None and feed.enabled and feed.consecutive_errors == 0


def test_validators_saved_only_with_success(db: Database) -> None:
    with db.session() as s:
        fid = feed_repo.add_feed(s, "https://a.example/feed").id
        feed_repo.record_outcome(
            s,
            fid,
            feed_repo.FetchOutcome(
                fetched_at=NOW, next_fetch_at=NOW, ok=True, etag='"v1"', last_modified="x"
            ),
        )
        feed_repo.record_outcome(
            s, fid, feed_repo.FetchOutcome(fetched_at=NOW, next_fetch_at=NOW, ok=False, error="e")
        )
    with db.session() as s:
        feed = s.get(Feed, fid)
        assert feed is not None and feed.etag == '"v1"' and feed.backlog_done


def test_dedupe_by_guid_url_and_title(db: Database) -> None:
    with db.session() as s:
        a = feed_repo.add_feed(s, "https://a.example/feed").id
        b = feed_repo.add_feed(s, "https://b.example/feed").id
    with db.session() as s:
        report = store_items(
            s,
            a,
            [
                make_item(),
                make_item(url="https://x/1", canonical_url="https://x/1", title_key="other"),
                make_item(guid="g2", canonical_url="https://news.example/a", title_key="t2"),
                make_item(guid="g3", canonical_url="https://x/3", content_hash="h3"),
                make_item(guid="g4", canonical_url="https://x/4", title_key="fresh"),
            ],
            never_same,
        )
    # g1 stored; g1 again (same guid) dropped; same canonical url dropped;
    # same title from the same source dropped; g4 stored.
    assert len(report.stored) == 2 and report.duplicates == 3
    with db.session() as s:
        again = store_items(s, a, [make_item()], never_same)
        other_feed = store_items(
            s, b, [make_item(source="B", canonical_url="https://b/1", title_key="b")], never_same
        )
    assert again.duplicates == 1 and not again.stored
    assert len(other_feed.stored) == 1, "the same guid in another feed is a different entry"
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 3
        themes = s.scalars(select(ItemTheme.theme_id)).all()
        assert set(themes) == {"llama-models"}


def test_near_duplicates_join_one_cluster(db: Database) -> None:
    with db.session() as s:
        a = feed_repo.add_feed(s, "https://a.example/feed").id
        b = feed_repo.add_feed(s, "https://b.example/feed").id

    with db.session() as s:
        first = store_items(
            s, a, [make_item(signature="story1:a", band_keys=("k1", "k2"))], same_prefix
        ).stored[0]
        copy = store_items(
            s,
            b,
            [
                make_item(
                    guid="other",
                    source="B",
                    canonical_url="https://b/copy",
                    signature="story1:b",
                    band_keys=("k2", "k3"),
                )
            ],
            same_prefix,
        ).stored[0]
        unrelated = store_items(
            s,
            b,
            [
                make_item(
                    guid="u",
                    source="B",
                    title_key="u",
                    canonical_url="https://b/u",
                    signature="story2:b",
                    band_keys=("k1",),
                )
            ],
            same_prefix,
        ).stored[0]
    assert copy.cluster_id == first.cluster_id and not copy.new_cluster
    assert unrelated.cluster_id != first.cluster_id and unrelated.new_cluster
    with db.session() as s:
        cluster = s.get(Cluster, first.cluster_id)
        assert cluster is not None and cluster.item_count == 2 and cluster.source_count == 2


def test_a_story_opened_by_a_batch_is_stored_complete(db: Database) -> None:
    """Two copies in one feed's batch open one story: its row has both items, the one
    outlet and every key either brought."""

    with db.session() as s:
        feed_id = feed_repo.add_feed(s, "https://a.example/feed").id
        stored = store_items(
            s,
            feed_id,
            [
                make_item(signature="story1:a", band_keys=("k1", "k2")),
                make_item(
                    guid="g2",
                    title_key="other words",
                    canonical_url="https://news.example/b",
                    signature="story1:b",
                    band_keys=("k2", "k3"),
                ),
            ],
            same_prefix,
        ).stored
    assert stored[0].cluster_id == stored[1].cluster_id
    with db.session() as s:
        cluster = s.get(Cluster, stored[0].cluster_id)
        assert cluster is not None
        assert (cluster.item_count, cluster.source_count) == (2, 1)
        assert sorted(cluster.band_keys.split()) == ["k1", "k2", "k3"]


def test_deleting_a_feed_removes_its_items(db: Database) -> None:
    with db.session() as s:
        fid = feed_repo.add_feed(s, "https://a.example/feed").id
        store_items(s, fid, [make_item()], never_same)
    with db.session() as s:
        feed_repo.remove_feed(s, "https://a.example/feed")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 0
        assert s.execute(text("select 1")).scalar() == 1


def test_replicas_starting_together_migrate_once(pg_url: str) -> None:
    """Four processes' worth of engines upgrading an empty PostgreSQL database at once."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import reset_pg_schema

    reset_pg_schema(pg_url)
    # Without the migration lock these sessions block each other: fail, don't hang.
    url = f"{pg_url}?options=-c%20lock_timeout%3D15000"
    databases = [Database(url, migrate=False) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda d: upgrade(d.engine), databases))
        assert {current_revision(d.engine) for d in databases} == {
            current_revision(databases[0].engine)
        }
        assert current_revision(databases[0].engine) is not None
    finally:
        for d in databases:
            d.dispose()

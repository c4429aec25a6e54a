"""The ingest writer's cheaper statements give the rows the previous ones gave, on SQLite
and PostgreSQL: record_outcome's one-UPDATE success, the duplicate check in one SELECT,
and story counts taken inside their UPDATE."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, delete, event, func, select, update

from storage import feeds as feed_repo
from storage.db import Database
from storage.feeds import FeedNotFound, FetchOutcome, record_outcome
from storage.items import NewItem, _existing_keys, store_items
from storage.models import Cluster, Feed, Item, table_of

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


# -- record_outcome ---------------------------------------------------------------------


# What a feed row may hold before the fetch (the stored values an outcome keeps or not).
BEFORE: list[dict[str, Any]] = [
    {},
    {
        "title": "Stored title",
        "site_url": "https://stored.example/",
        "ttl_minutes": 30,
        "etag": '"old"',
        "last_modified": "Mon, 01 Jan 2024 00:00:00 GMT",
        "consecutive_errors": 4,
        "last_error": "HTTP 503",
        "last_error_at": NOW - timedelta(days=1),
        "lease_owner": "replica-1",
        "lease_until": NOW + timedelta(minutes=5),
        "backlog_done": False,
    },
]
SUCCESS = FetchOutcome(fetched_at=NOW, next_fetch_at=LATER, ok=True)
OUTCOMES = [
    SUCCESS,
    replace(SUCCESS, etag='"new"', last_modified="Tue", title="New", site_url="https://n/"),
    replace(SUCCESS, ttl_minutes=60),
    replace(SUCCESS, ttl_minutes=0, title="", site_url=""),  # falsy: the stored ones stay
    replace(SUCCESS, not_modified=True, etag='"ignored"', last_modified="ignored"),
    replace(SUCCESS, not_modified=True, title="Title", ttl_minutes=15),
    replace(SUCCESS, new_url="https://moved.example/feed"),
    replace(SUCCESS, ok=False, error="HTTP 500"),
    replace(SUCCESS, ok=False, error="HTTP 500", pause=True),
]


def feed_row(db: Database, feed_id: int) -> dict[str, Any]:
    with db.reading() as session:
        row = session.execute(select(table_of(Feed)).where(Feed.id == feed_id)).one()
    values = dict(row._mapping)
    del values["id"], values["url"], values["added_at"]
    return values


@pytest.mark.parametrize("before", range(len(BEFORE)))
@pytest.mark.parametrize("outcome", OUTCOMES, ids=range(len(OUTCOMES)))
def test_record_outcome_gives_the_previous_row(
    db: Database, before: int, outcome: FetchOutcome
) -> None:
    with db.session() as s:
        old = feed_repo.add_feed(s, "https://old.example/feed").id
        new = feed_repo.add_feed(s, "https://new.example/feed").id
        if BEFORE[before]:
            s.execute(update(Feed).where(Feed.id.in_([old, new])).values(**BEFORE[before]))
    with db.session() as s:
        # The reference: the ORM path, which every outcome took before the one-UPDATE success.
        feed_repo._record_with_orm(s, old, outcome)
    with statements(db) as seen, db.session() as s:
        record_outcome(s, new, outcome)
    assert feed_row(db, new) == feed_row(db, old)
    fast = outcome.ok and not outcome.new_url
    reads = [st for st in seen if st.startswith("SELECT feeds.id")]
    assert (reads == []) == fast, "a plain success is one UPDATE, anything else the ORM"


def test_record_outcome_of_a_vanished_feed(db: Database) -> None:
    for outcome in (SUCCESS, replace(SUCCESS, ok=False, error="e")):
        with pytest.raises(FeedNotFound), db.session() as s:
            record_outcome(s, 12345, outcome)


def test_a_feed_the_session_holds_stays_current(db: Database) -> None:
    with db.session() as s:
        feed = feed_repo.add_feed(s, "https://a.example/feed")
        record_outcome(s, feed.id, replace(SUCCESS, etag='"v1"', title="Held"))
        assert feed.etag == '"v1"' and feed.title == "Held" and feed.backlog_done
        record_outcome(s, feed.id, replace(SUCCESS, ok=False, error="e"))
        assert feed.etag == '"v1"' and feed.consecutive_errors == 1


# -- the duplicate check ----------------------------------------------------------------


def previous_existing_keys(
    conn: Connection, feed_id: int, entries: list[NewItem]
) -> set[tuple[str, str]]:
    """_existing_keys as it was: one query per kind of key (and per source for titles)."""
    items = table_of(Item)
    guids = {e.guid for e in entries if e.guid}
    urls = {e.canonical_url for e in entries if e.canonical_url}
    seen: set[tuple[str, str]] = set()
    if guids:
        rows = conn.scalars(
            select(items.c.guid).where(items.c.feed_id == feed_id, items.c.guid.in_(guids))
        )
        seen.update(("guid", g) for g in rows if g)
    if urls:
        rows = conn.scalars(select(items.c.canonical_url).where(items.c.canonical_url.in_(urls)))
        seen.update(("url", u) for u in rows if u)
    titles_by_source: dict[str, set[str]] = {}
    for e in entries:
        titles_by_source.setdefault(e.source, set()).add(e.title_key)
    for source, titles in titles_by_source.items():
        found = conn.scalars(
            select(items.c.title_key).where(items.c.source == source, items.c.title_key.in_(titles))
        )
        seen.update(("title", f"{source}\x00{t}") for t in found)
    return seen


def entry(guid: str | None, url: str | None, source: str, title_key: str) -> NewItem:
    return NewItem(
        guid=guid,
        url=url,
        canonical_url=url,
        source=source,
        title=title_key.title(),
        title_key=title_key,
        author=None,
        published_at=NOW,
        published_was_missing=False,
        fetched_at=NOW,
        text="",
        summary="",
        content_hash=f"h-{guid}-{url}-{title_key}",
    )


def never_same(_a: str, _b: str) -> bool:
    return False


def test_duplicate_check_finds_what_the_previous_queries_found(db: Database) -> None:
    with db.session() as s:
        a = feed_repo.add_feed(s, "https://a.example/feed").id
        b = feed_repo.add_feed(s, "https://b.example/feed").id
        store_items(
            s,
            a,
            [
                entry("g1", "https://x/1", "Alpha", "one"),
                entry("g2", None, "Alpha", "two"),
                entry(None, "https://x/3", "Alpha", "three"),
            ],
            never_same,
        )
        store_items(
            s,
            b,
            [entry("g9", "https://y/9", "Beta", "nine"), entry("g1", None, "Beta", "beta one")],
            never_same,
        )
    batches = [
        [],
        [entry("g1", None, "Other", "new")],  # its own feed's guid
        [entry("g9", None, "Other", "new")],  # another feed's guid: not a duplicate
        [entry(None, "https://y/9", "Other", "new")],  # a URL is one anywhere
        [entry(None, None, "Alpha", "two")],  # the title within its source
        [entry(None, None, "Beta", "two"), entry(None, None, "Gamma", "nine")],  # not theirs
        [  # several sources in one batch, every kind of key, none stored
            entry("g1", "https://x/3", "Alpha", "nine"),
            entry("g2", "https://z/1", "Beta", "one"),
            entry("g5", "https://x/1", "Beta", "nine"),
            entry(None, None, "Alpha", "beta one"),
            entry("", "", "Alpha", "three"),
        ],
    ]
    expected = [
        set(),
        {("guid", "g1")},
        set(),
        {("url", "https://y/9")},
        {("title", "Alpha\x00two")},
        set(),
        {
            ("guid", "g1"),
            ("guid", "g2"),
            ("url", "https://x/3"),
            ("url", "https://x/1"),
            ("title", "Beta\x00nine"),
            ("title", "Alpha\x00three"),
        },
    ]
    with db.session() as s:
        conn = s.connection()
        for batch, wanted in zip(batches, expected, strict=True):
            assert previous_existing_keys(conn, a, batch) == wanted
            assert _existing_keys(conn, a, batch) == wanted


# -- story counts -----------------------------------------------------------------------


def always_same(_a: str, _b: str) -> bool:
    return True


def story_entry(n: int, source: str, published: datetime) -> NewItem:
    return replace(
        entry(f"s{n}", f"https://story/{n}", source, f"copy {n}"),
        published_at=published,
        signature=f"sig{n}",
        band_keys=("shared", f"key{n}"),
        relevant=True,
    )


def recount(conn: Connection) -> dict[int, tuple[int, int]]:
    items = table_of(Item)
    rows = conn.execute(
        select(items.c.cluster_id, func.count(), func.count(func.distinct(items.c.source)))
        .where(items.c.cluster_id.is_not(None))
        .group_by(items.c.cluster_id)
    )
    return {cluster_id: (count, sources) for cluster_id, count, sources in rows}


def test_continued_story_counts_are_its_items(db: Database) -> None:
    with db.session() as s:
        feed = feed_repo.add_feed(s, "https://a.example/feed").id
    batches = [
        [story_entry(1, "Alpha", NOW)],
        [story_entry(2, "Beta", NOW + timedelta(hours=1)), story_entry(3, "Beta", NOW)],
        [story_entry(4, "Alpha", NOW + timedelta(hours=3))],
        [story_entry(5, "Gamma", NOW - timedelta(hours=1))],
    ]
    for n, batch in enumerate(batches):
        if n == 3:  # an item gone since: the next UPDATE recounts, it does not add
            with db.session() as s:
                s.execute(delete(Item).where(Item.guid == "s2"))
        with db.session() as s:
            report = store_items(s, feed, batch, always_same)
            assert {stored.cluster_id for stored in report.stored} == {1}
    with db.session() as s:
        story = s.execute(select(table_of(Cluster))).one()
        assert recount(s.connection()) == {1: (4, 3)}
        assert (story.item_count, story.source_count) == (4, 3)
        assert story.last_seen_at == NOW + timedelta(hours=3)
        assert sorted(story.band_keys.split()) == ["key1", "key2", "key3", "key4", "key5", "shared"]
        assert s.scalars(select(Item.alerts_matched)).all() == [False] * 4

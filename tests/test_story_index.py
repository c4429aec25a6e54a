"""The in-memory story index on real SQLite and PostgreSQL: it clusters exactly as the
database path does, sees other writers' stories, and never keeps a rolled-back one."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot import normalise
from bot.cluster import Signature, band_keys, is_same_story, signature
from bot.parse import parse_feed_sync
from bot.samples import SAMPLE_NOW, sample_files
from storage import feeds as feed_repo
from storage.db import Database
from storage.items import NewItem, store_items
from storage.models import Cluster, Item
from storage.story_index import StoryIndex

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ORIGINAL = (
    "Meta signs 20-year deal for 2.2 gigawatts of Ohio power",
    "Meta agreed to buy 2.2 gigawatts from a gas and solar developer in Ohio to run its "
    "Buckeye data center, the company said on Thursday.",
)
COPY = (
    "Meta turns to gas and solar for Ohio data center",
    "A 20-year contract gives Meta 2.2 gigawatts for the Buckeye campus in Ohio, where "
    "it trains its largest models.",
)


def item(title: str, text: str, *, guid: str, source: str, published: datetime) -> NewItem:
    sig = signature(title, text, published=published)
    return NewItem(
        guid=guid,
        url=f"https://{source}.example/{guid}",
        canonical_url=f"https://{source}.example/{guid}",
        source=source,
        title=title,
        title_key=normalise.normalise_title(title),
        author=None,
        published_at=published,
        published_was_missing=False,
        fetched_at=published,
        text=text,
        summary=text,
        content_hash=normalise.content_hash(title, text),
        signature=sig.dumps(),
        band_keys=band_keys(sig),
        relevant=True,
    )


def same_story(a: str, b: str) -> bool:
    return is_same_story(Signature.loads(a), Signature.loads(b))


def store(db: Database, entry: NewItem, index: StoryIndex | None) -> int:
    """The story the entry was put in."""
    with db.session() as session:
        feed_id = feed_repo.add_feed(session, f"https://{entry.source}.example/feed").id
        report = store_items(session, feed_id, [entry], same_story, index)
    cluster_id = report.stored[0].cluster_id
    assert cluster_id is not None
    return cluster_id


def replica(clock_at: datetime = NOW) -> StoryIndex:
    return StoryIndex(clock=lambda: clock_at)


def test_a_copy_joins_the_story_another_writer_stored(db: Database) -> None:
    first, second = replica(), replica()
    original = store(db, item(*ORIGINAL, guid="a", source="wire", published=NOW), first)
    copy = item(*COPY, guid="b", source="daily", published=NOW + timedelta(hours=1))
    assert store(db, copy, second) == original
    # ...and the first replica sees what the second stored since its own last write.
    third = item(*COPY, guid="c", source="weekly", published=NOW + timedelta(hours=2))
    assert store(db, third, first) == original


def test_the_index_answers_without_asking_the_database(db: Database) -> None:
    """Once current, the index alone finds the candidates: with the stored index keys
    gone from the database, a copy still joins its story."""
    index = replica()
    original = store(db, item(*ORIGINAL, guid="a", source="wire", published=NOW), index)
    with db.session() as session:
        session.execute(update(Cluster).values(band_keys=""))
    copy = item(*COPY, guid="b", source="daily", published=NOW + timedelta(hours=1))
    assert store(db, copy, index) == original


def test_a_rolled_back_story_is_forgotten(db: Database) -> None:
    index = replica()
    with pytest.raises(RuntimeError), db.session() as session:
        feed_id = feed_repo.add_feed(session, "https://wire.example/feed").id
        with session.begin_nested():
            entry = item(*ORIGINAL, guid="a", source="wire", published=NOW)
            store_items(session, feed_id, [entry], same_story, index)
            raise RuntimeError("the feed's claims could not be stored")
    copy = item(*COPY, guid="b", source="daily", published=NOW + timedelta(hours=1))
    cluster_id = store(db, copy, index)  # no foreign key error: no phantom story joined
    with db.session() as session:
        assert session.get(Cluster, cluster_id) is not None
        assert session.scalars(select(Item.title)).all() == [COPY[0]]


def test_an_old_backlog_entry_finds_its_story_in_the_database(db: Database) -> None:
    """Entries older than the index holds (a new feed's backlog) ask the database."""
    old = NOW - timedelta(days=10)
    original = store(db, item(*ORIGINAL, guid="a", source="wire", published=old), None)
    index = replica()
    copy = item(*COPY, guid="b", source="daily", published=old + timedelta(hours=1))
    assert store(db, copy, index) == original
    assert not index.covers(copy.published_at)  # found by the database, not the index


@pytest.fixture
def sample_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'samples.db'}")
    yield database
    database.dispose()


def partition(db: Database) -> set[frozenset[str | None]]:
    grouped: dict[int | None, set[str | None]] = defaultdict(set)
    with db.session() as session:
        for cluster_id, guid in session.execute(select(Item.cluster_id, Item.guid)):
            grouped[cluster_id].add(guid)
    return {frozenset(guids) for guids in grouped.values()}


def test_index_and_database_make_the_same_stories_of_the_samples(
    tmp_path: Path, sample_db: Database
) -> None:
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    index = replica(SAMPLE_NOW)
    try:
        for sample in sample_files():
            parsed = parse_feed_sync(
                sample.read_bytes(), url=sample.as_uri(), content_type=None, fetched_at=SAMPLE_NOW
            )
            entries = [
                item(
                    e.title,
                    e.summary_text,
                    guid=e.guid or e.title,
                    source=sample.stem,
                    published=e.published,
                )
                for e in parsed.entries
            ]
            for db, used in ((sample_db, None), (other, index)):
                with db.session() as session:
                    feed_id = feed_repo.add_feed(session, sample.as_uri()).id
                    store_items(session, feed_id, entries, same_story, used)
        assert index.stories  # the index really served
        assert partition(other) == partition(sample_db)
        assert len(partition(sample_db)) < sum(1 for _ in sample_files()) * 10
    finally:
        other.dispose()

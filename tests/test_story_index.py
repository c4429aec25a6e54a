"""The in-memory story index on real SQLite and PostgreSQL: it clusters exactly as the
database path does, sees other writers' stories, and never keeps a rolled-back one."""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from bot import ingest, normalise
from bot.cluster import Signature, band_keys, is_same_story, signature
from bot.parse import parse_feed_sync
from bot.samples import SAMPLE_NOW, sample_files
from storage import feeds as feed_repo
from storage.db import Database
from storage.items import MAX_CANDIDATES, ManyAtOnce, NewItem, _candidates, _first_copy, store_items
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


def sample_entries(sample: Path) -> list[NewItem]:
    """A bundled sample feed's entries, as ingest would store them."""
    parsed = parse_feed_sync(
        sample.read_bytes(), url=sample.as_uri(), content_type=None, fetched_at=SAMPLE_NOW
    )
    return [
        item(
            e.title,
            e.summary_text,
            guid=e.guid or e.title,
            source=sample.stem,
            published=e.published,
        )
        for e in parsed.entries
    ]


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
            entries = sample_entries(sample)
            for db, used in ((sample_db, None), (other, index)):
                with db.session() as session:
                    feed_id = feed_repo.add_feed(session, sample.as_uri()).id
                    store_items(session, feed_id, entries, same_story, used)
        assert index.stories  # the index really served
        assert partition(other) == partition(sample_db)
        assert len(partition(sample_db)) < sum(1 for _ in sample_files()) * 10
    finally:
        other.dispose()


KEYS = st.lists(st.sampled_from([f"k{n}" for n in range(10)]), max_size=12)
LEARNED = st.lists(
    st.tuples(st.integers(1, 6), st.integers(0, 48), KEYS), max_size=12
)  # (story id, hours after NOW it was last seen, keys it gained)


def learned(steps: list[tuple[int, int, list[str]]]) -> StoryIndex:
    """An index that learned these writes (as storing does: only keys not held yet)."""
    index = replica()
    for story_id, hours, keys in steps:
        new_keys = index.missing(story_id, dict.fromkeys(keys))
        index.learn(story_id, NOW + timedelta(hours=hours), ["sig"], new_keys)
    return index


@settings(max_examples=300, deadline=None)
@given(LEARNED, st.integers(1, 8), KEYS)
def test_missing_keys_are_those_the_story_does_not_hold(
    steps: list[tuple[int, int, list[str]]], story_id: int, keys: list[str]
) -> None:
    index = learned(steps)
    expected = [key for key in keys if not index.holds(key, story_id)]
    assert index.missing(story_id, keys) == expected
    assert index.missing(story_id, dict.fromkeys(keys)) == list(dict.fromkeys(expected))


@settings(max_examples=300, deadline=None)
@given(LEARNED, KEYS)
def test_shared_keys_count_each_story_holding_a_key(
    steps: list[tuple[int, int, list[str]]], keys: list[str]
) -> None:
    index = learned(steps)
    expected = Counter(
        story_id for key in keys for story_id in index.stories if index.holds(key, story_id)
    )
    assert index.shared_keys(keys) == expected


@settings(max_examples=300, deadline=None)
@given(LEARNED, st.integers(-2, 50))
def test_all_seen_since_only_when_every_story_was(
    steps: list[tuple[int, int, list[str]]], hours: int
) -> None:
    index = learned(steps)
    since = NOW + timedelta(hours=hours)
    seen_since = all(story.last_seen_at >= since for story in index.stories.values())
    assert not index.all_seen_since(since) or seen_since
    assert index.all_seen_since(NOW)  # every story was learned since


def test_all_seen_since_after_a_load(db: Database) -> None:
    for n, hours in enumerate([30, 5, 50]):
        entry = item(
            f"Story {n} of its own",
            "Different words.",
            guid=f"g{n}",
            source=f"s{n}",
            published=NOW - timedelta(hours=hours),
        )
        store(db, entry, None)
    index = replica()
    with db.session() as session:
        index.load(session.connection(), NOW - timedelta(hours=40))
    assert len(index.stories) == 2
    assert index.all_seen_since(NOW - timedelta(hours=30))
    assert not index.all_seen_since(NOW - timedelta(hours=29))
    with db.session() as session:
        index.load(session.connection(), NOW)
    assert not index.stories and index.all_seen_since(NOW + timedelta(days=9))


def _plain_candidates(
    index: StoryIndex, entries: list[NewItem], since: datetime
) -> list[list[int]]:
    ranked = []
    for entry in entries:
        shared = Counter(
            story_id
            for key in entry.band_keys
            for story_id in index.stories
            if index.holds(key, story_id)
        )
        kept = [c for c in shared if index.stories[c].last_seen_at >= since]
        ranked.append(heapq.nsmallest(MAX_CANDIDATES, kept, key=lambda c: (-shared[c], -c)))
    return ranked


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 40), st.integers(0, 48), KEYS), max_size=40),
    st.lists(KEYS, min_size=1, max_size=4),
    st.integers(-2, 50),
)
def test_candidates_are_the_most_shared_recent_stories(
    steps: list[tuple[int, int, list[str]]], entry_keys: list[list[str]], hours: int
) -> None:
    index = learned(steps)
    entries = [replace(BASE_ENTRY, band_keys=keys) for keys in entry_keys]
    since = NOW + timedelta(hours=hours)
    assert _candidates(index, entries, since) == _plain_candidates(index, entries, since)


BASE_ENTRY = item(*ORIGINAL, guid="base", source="wire", published=NOW)


def test_the_ingest_comparison_is_many_at_once_and_pairwise_alike() -> None:
    """bot.ingest's comparison takes the one-call path; it agrees with its own pairwise
    verdicts on the samples' signatures, and a plain pairwise function is asked in order."""
    assert isinstance(ingest._same_story, ManyAtOnce)
    assert not isinstance(same_story, ManyAtOnce)
    assert _first_copy(ingest._same_story) == ingest._same_story.first_copy
    signatures = sample_signatures()
    found = []
    for at, new in enumerate(signatures):
        earlier = signatures[max(0, at - 60) : at]
        stories = [earlier[n : n + 3] for n in range(0, len(earlier), 3)]
        asked: list[str] = []

        def recorded(a: str, b: str, asked: list[str] = asked) -> bool:
            asked.append(a)
            return same_story(a, b)

        verdicts = [any(same_story(old, new) for old in stored) for stored in stories]
        expected = verdicts.index(True) if True in verdicts else None
        assert ingest._same_story.first_copy(stories, new) == expected
        assert _first_copy(recorded)(stories, new) == expected
        last = len(earlier) if expected is None else earlier.index(asked[-1]) + 1
        assert asked == earlier[:last]  # in order, up to the first copy
        if stories:
            assert ingest._same_story(stories[0][0], new) == same_story(stories[0][0], new)
        found.append(expected)
    assert len(found) - found.count(None) >= 10 and len(set(found)) >= 5  # copies found


def sample_signatures() -> list[str]:
    signatures = []
    for sample in sample_files():
        parsed = parse_feed_sync(
            sample.read_bytes(), url=sample.as_uri(), content_type=None, fetched_at=SAMPLE_NOW
        )
        for e in parsed.entries:
            signatures.append(signature(e.title, e.summary_text, published=e.published).dumps())
    return signatures


def test_the_ingest_comparison_makes_the_stories_of_the_pairwise_one(tmp_path: Path) -> None:
    """The samples stored with bot.ingest's comparison and with the plain pairwise one."""
    partitions = []
    for name, compare in (("plain", same_story), ("ingest", ingest._same_story)):
        database = Database(f"sqlite:///{tmp_path / name}.db")
        try:
            index = replica(SAMPLE_NOW)
            for sample in sample_files():
                with database.session() as session:
                    feed_id = feed_repo.add_feed(session, sample.as_uri()).id
                    store_items(session, feed_id, sample_entries(sample), compare, index)
            partitions.append(partition(database))
        finally:
            database.dispose()
    assert partitions[0] == partitions[1]

"""Item repository: storing entries without duplicates and grouping them into stories.

Written in SQLAlchemy Core on the session's connection: ingest stores thousands of rows
a minute, and the ORM's unit of work costs more than the database does. A batch takes a
fixed number of statements, whatever its size.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import (
    Connection,
    Select,
    Table,
    bindparam,
    false,
    func,
    insert,
    literal,
    null,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from storage.models import Cluster, Item, ItemTheme, table_of

# Re-exported: callers have always found the records here.
from storage.records import NewItem as NewItem
from storage.records import ThemeTag as ThemeTag
from storage.story_index import CLUSTER_WINDOW, SIGNATURES_PER_STORY, IndexedStory, StoryIndex

MAX_CANDIDATES = 20
SameStory = Callable[[str, str], bool]  # (a stored signature, a new one): copies of one story?
# (stories, each as its newest stored signatures; a new signature): the position of the
# first story the new entry is a copy of (of one of its signatures), None if none.
FirstCopy = Callable[[Sequence[Sequence[str]], str], int | None]


@runtime_checkable
class ManyAtOnce(Protocol):
    """A SameStory that also compares a new signature with all of an entry's candidate
    stories in one call (so it reads the new signature once, not once per comparison)."""

    def __call__(self, stored: str, new: str, /) -> bool: ...

    def first_copy(self, stories: Sequence[Sequence[str]], new: str, /) -> int | None: ...


_items = table_of(Item)
_clusters = table_of(Cluster)
_themes = table_of(ItemTheme)

# Statements built once: SQLAlchemy works out a statement's cache key on every execution
# unless the same statement object is executed again (it then remembers it), and building
# and keying a fresh one cost about as much as the database took to run it.
# A new item has matched no alert yet: a constant, so rows bind (and convert) one less.
_INSERT_ITEMS = insert(_items).values(alerts_matched=false())
_INSERT_THEMES = insert(_themes)
_INSERT_CLUSTERS = insert(_clusters)
# Every dedupe key of a batch already stored, in one statement: (value, kind, source).
# By guid within the feed, by canonical URL anywhere, by title within a source (the
# title rows of the batch's sources, paired in Python: a feed's entries share one).
_STORED_KEYS = union_all(
    select(_items.c.guid, literal("guid"), null()).where(
        _items.c.feed_id == bindparam("feed_id"),
        _items.c.guid.in_(bindparam("guids", expanding=True)),
    ),
    select(_items.c.canonical_url, literal("url"), null()).where(
        _items.c.canonical_url.in_(bindparam("urls", expanding=True))
    ),
    select(_items.c.title_key, literal("title"), _items.c.source).where(
        _items.c.source.in_(bindparam("sources", expanding=True)),
        _items.c.title_key.in_(bindparam("titles", expanding=True)),
    ),
)
# A continued story's counts are taken anew from its items (they are the truth: an item
# deleted since leaves a count behind), in the UPDATE itself.
_STORY_ITEMS = _items.c.cluster_id == bindparam("cid")
_UPDATE_STORY = (
    update(_clusters)
    .where(_clusters.c.id == bindparam("cid"))
    .values(
        item_count=select(func.count()).where(_STORY_ITEMS).scalar_subquery(),
        source_count=select(func.count(func.distinct(_items.c.source)))
        .where(_STORY_ITEMS)
        .scalar_subquery(),
        last_seen_at=bindparam("last"),
        band_keys=func.trim(_clusters.c.band_keys + " " + bindparam("keys")),
    )
)


@dataclass(frozen=True)
class Stored:
    index: int  # position in the batch given to store_items
    item_id: int
    cluster_id: int | None  # None for items that are not relevant: they are never posted
    new_cluster: bool


@dataclass
class StoreReport:
    stored: list[Stored] = field(default_factory=list)
    duplicates: int = 0


def store_items(
    session: Session,
    feed_id: int,
    entries: Iterable[NewItem],
    same_story: SameStory,
    story_index: StoryIndex | None = None,
) -> StoreReport:
    """Store new entries (duplicates are counted and dropped) and group the relevant ones
    into stories. Without an index, candidate stories are read from the database."""
    conn = session.connection()
    entries = list(entries)
    seen = _existing_keys(conn, feed_id, entries)
    fresh: list[tuple[int, NewItem]] = []
    report = StoreReport()
    for index, entry in enumerate(entries):
        keys = _keys(entry)
        if any(key in seen for key in keys):
            report.duplicates += 1
            continue
        seen.update(keys)
        fresh.append((index, entry))
    if not fresh:
        return report
    stories = _assign_clusters(
        conn, [e for _, e in fresh], same_story, story_index or StoryIndex(enabled=False)
    )
    item_ids = reserve_ids(conn, _items, len(fresh))
    rows = [
        _row(item_id, feed_id, entry, stories.cluster_id(n))
        for n, (item_id, (_, entry)) in enumerate(zip(item_ids, fresh, strict=True))
    ]
    conn.execute(_INSERT_ITEMS, rows)
    _insert_themes(conn, item_ids, [entry for _, entry in fresh])
    stories.save_counts(conn)
    for n, ((index, _), item_id, row) in enumerate(zip(fresh, item_ids, rows, strict=True)):
        report.stored.append(
            Stored(
                index=index,
                item_id=item_id,
                cluster_id=row["cluster_id"],
                new_cluster=stories.is_new(n),
            )
        )
    return report


def reserve_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """`count` fresh primary keys for `table`, so a batch is inserted without RETURNING.

    (SQLite can only return ids in input order one row per statement, which costs more
    than the rest of ingest's storing.) PostgreSQL takes them from the table's sequence;
    SQLite continues after the largest id, which no one else can take meanwhile: the
    transaction holds the database's write lock from its BEGIN IMMEDIATE.
    """
    if count == 0:
        return []
    if conn.dialect.name == "postgresql":
        sequence = conn.scalar(
            text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table.name}
        )
        return list(
            conn.scalars(
                text("SELECT nextval(:sequence) FROM generate_series(1, :count)"),
                {"sequence": sequence, "count": count},
            )
        )
    top = conn.scalar(_largest_id(table)) or 0
    return list(range(top + 1, top + 1 + count))


@functools.cache
def _largest_id(table: Table) -> Select[int]:
    return select(func.max(table.c.id))


def _insert_themes(conn: Connection, item_ids: list[int], entries: list[NewItem]) -> None:
    rows = [
        {"item_id": item_id, "theme_id": t.id, "score": t.score, "evidence": list(t.evidence)}
        for item_id, entry in zip(item_ids, entries, strict=True)
        for t in entry.themes
    ]
    if rows:
        conn.execute(_INSERT_THEMES, rows)


def _keys(entry: NewItem) -> list[tuple[str, str]]:
    keys = [("title", f"{entry.source}\x00{entry.title_key}")]
    if entry.guid:
        keys.append(("guid", entry.guid))
    if entry.canonical_url:
        keys.append(("url", entry.canonical_url))
    return keys


def _existing_keys(
    conn: Connection, feed_id: int, entries: Sequence[NewItem]
) -> set[tuple[str, str]]:
    """Every dedupe key of this batch that is already stored: by guid, by URL, and by
    title for each source."""
    if not entries:
        return set()
    pairs = {(e.source, e.title_key) for e in entries}
    params = {
        "feed_id": feed_id,
        "guids": list({e.guid for e in entries if e.guid}),
        "urls": list({e.canonical_url for e in entries if e.canonical_url}),
        "sources": list({source for source, _ in pairs}),
        "titles": list({title_key for _, title_key in pairs}),
    }
    seen: set[tuple[str, str]] = set()
    for value, kind, source in conn.execute(_STORED_KEYS, params):
        if kind != "title":
            if value:
                seen.add((kind, value))
        elif (source, value) in pairs:  # not another source's title
            seen.add(("title", f"{source}\x00{value}"))
    return seen


def _row(item_id: int, feed_id: int, entry: NewItem, cluster_id: int | None) -> dict[str, Any]:
    # Every row carries the same keys, so the INSERT batches into multi-row statements.
    return {
        "id": item_id,
        "feed_id": feed_id,
        "guid": entry.guid,
        "url": entry.url,
        "canonical_url": entry.canonical_url,
        "source": entry.source,
        "title": entry.title,
        "title_key": entry.title_key,
        "author": entry.author,
        "published_at": entry.published_at,
        "published_was_missing": entry.published_was_missing,
        "fetched_at": entry.fetched_at,
        "text": entry.text,
        "summary": entry.summary,
        "content_hash": entry.content_hash,
        "signature": entry.signature,
        "cluster_id": cluster_id,
        "relevance": entry.relevance,
        "relevant": entry.relevant,
        "relevance_reasons": list(entry.reasons),
        "alertable": entry.alertable,
    }


@dataclass(eq=False)  # a story is itself: two may look alike
class _Story:
    """A story the batch touches: a stored one (with its id) or one opened by the batch."""

    title: str
    first_seen_at: datetime
    last_seen_at: datetime
    id: int | None = None
    signatures: list[str] = field(default_factory=list)  # newest last
    gained: dict[str, None] = field(default_factory=dict)  # keys its new items brought
    sources: dict[str, None] = field(default_factory=dict)  # of its new items

    def join(self, entry: NewItem) -> None:
        assert entry.signature is not None
        self.last_seen_at = max(self.last_seen_at, entry.published_at)
        self.signatures.append(entry.signature)
        self.gained.update(dict.fromkeys(entry.band_keys))
        self.sources[entry.source] = None


def _first_copy(same_story: SameStory) -> FirstCopy:
    """`same_story`'s own FirstCopy, or one asking it pair by pair, in order."""
    if isinstance(same_story, ManyAtOnce):
        return same_story.first_copy

    def first_copy(stories: Sequence[Sequence[str]], new: str) -> int | None:
        for at, stored in enumerate(stories):
            if any(same_story(sig, new) for sig in stored):
                return at
        return None

    return first_copy


def _newest(story: _Story | IndexedStory) -> list[str]:
    """The signatures a new entry is compared with: the story's newest copies."""
    return story.signatures[-SIGNATURES_PER_STORY:]


class _Assignment:
    """Which story each new relevant entry belongs to."""

    def __init__(self) -> None:
        self.stories: dict[int, _Story] = {}  # entry number -> story
        self.created: dict[int, _Story] = {}  # entry number -> the story it opened
        self.new_keys: dict[int, list[str]] = {}  # story id -> keys it did not hold

    def cluster_id(self, n: int) -> int | None:
        story = self.stories.get(n)
        return story.id if story is not None else None

    def is_new(self, n: int) -> bool:
        return n in self.created

    def touched(self) -> list[_Story]:
        return list({id(s): s for s in self.stories.values()}.values())

    def save_counts(self, conn: Connection) -> None:
        """Item and outlet counts, newest time and new keys of the stored stories the batch
        continued (those it opened were inserted complete)."""
        opened = set(map(id, self.created.values()))
        touched = {s.id: s for s in self.touched() if s.id is not None and id(s) not in opened}
        if not touched:
            return
        rows = [
            {
                "cid": cluster_id,
                "last": story.last_seen_at,
                "keys": " ".join(self.new_keys.get(cluster_id, ())),
            }
            for cluster_id, story in touched.items()
        ]
        conn.execute(_UPDATE_STORY, rows)


def _assign_clusters(
    conn: Connection, entries: Sequence[NewItem], same_story: SameStory, index: StoryIndex
) -> _Assignment:
    assignment = _Assignment()
    wanted = [(n, e) for n, e in enumerate(entries) if e.relevant and e.signature]
    if not wanted:
        return assignment
    batch = [e for _, e in wanted]
    since = min(e.published_at for e in batch) - CLUSTER_WINDOW
    source = index
    if not (index.sync(conn) and all(index.covers(e.published_at) for e in batch)):
        # No index, or an entry old enough to continue stories the index never held (a
        # new feed's backlog): this batch reads the stories it may continue from storage.
        source = StoryIndex(enabled=False)
        source.load(conn, since)
    ranked = _candidates(source, batch, since)
    first_copy = _first_copy(same_story)
    joined: dict[int, _Story] = {}  # stored stories this batch continues
    batch_keys: dict[str, dict[_Story, None]] = {}  # key -> the batch's stories holding it
    for (n, entry), candidates in zip(wanted, ranked, strict=True):
        story = _match(entry, candidates, source, joined, first_copy) or _match_batch(
            entry, batch_keys, first_copy
        )
        if story is None:
            story = _Story(entry.title, entry.published_at, entry.published_at)
            assignment.created[n] = story
        story.join(entry)
        assignment.stories[n] = story
        for key in entry.band_keys:
            batch_keys.setdefault(key, {})[story] = None
    _insert_stories(conn, list(assignment.created.values()))
    assignment.new_keys = {
        s.id: source.missing(s.id, s.gained) for s in assignment.touched() if s.id is not None
    }
    _teach(index, assignment)
    return assignment


def _teach(index: StoryIndex, assignment: _Assignment) -> None:
    """What the batch did to its stories, into the index (committed or not: a rollback
    leaves the story epoch behind the index, which then reloads)."""
    if not index.enabled:
        return
    for story in assignment.touched():
        assert story.id is not None
        index.learn(story.id, story.last_seen_at, story.signatures, assignment.new_keys[story.id])


def _insert_stories(conn: Connection, stories: list[_Story]) -> None:
    ids = reserve_ids(conn, _clusters, len(stories))
    for story, cluster_id in zip(stories, ids, strict=True):
        story.id = cluster_id
    if stories:
        conn.execute(
            _INSERT_CLUSTERS,
            [
                {
                    "id": s.id,
                    "title": s.title,
                    "first_seen_at": s.first_seen_at,
                    "last_seen_at": s.last_seen_at,
                    "item_count": len(s.signatures),  # one per item joined
                    "source_count": len(s.sources),
                    "band_keys": " ".join(s.gained),
                }
                for s in stories
            ],
        )


def _candidates(index: StoryIndex, entries: Sequence[NewItem], since: datetime) -> list[list[int]]:
    """Each entry's candidate stories: those sharing the most keys with it, among those
    last seen since `since`."""
    # Per story, not per (entry, story): keys recur. Not needed while every story is.
    recent = None if index.all_seen_since(since) else _Recent(index.stories, since)
    ranked = []
    for entry in entries:
        shared = index.shared_keys(entry.band_keys)
        # Most shared keys first, the newest story first among equals: sorted by id, then
        # (a stable sort) by count. Twice as fast as one sort on (count, id) pairs.
        kept = sorted(
            shared if recent is None else filter(recent.__getitem__, shared), reverse=True
        )
        kept.sort(key=shared.__getitem__, reverse=True)
        ranked.append(kept[:MAX_CANDIDATES])
    return ranked


class _Recent(dict[int, bool]):
    """Whether each story was last seen since `since` (looked up once per story)."""

    def __init__(self, stories: Mapping[int, IndexedStory], since: datetime) -> None:
        super().__init__()
        self.stories = stories
        self.since = since

    def __missing__(self, story_id: int) -> bool:
        story = self.stories.get(story_id)
        ok = self[story_id] = story is not None and story.last_seen_at >= self.since
        return ok


def _match(
    entry: NewItem,
    candidates: list[int],
    index: StoryIndex,
    joined: dict[int, _Story],
    first_copy: FirstCopy,
) -> _Story | None:
    """The stored story this entry continues: candidates sharing the most keys first,
    each compared with its newest copies (with those joined earlier in the batch)."""
    assert entry.signature is not None
    since = entry.published_at - CLUSTER_WINDOW
    stories = index.stories
    live = [
        (cluster_id, story)
        for cluster_id in candidates
        if (story := joined.get(cluster_id) or stories[cluster_id]).last_seen_at >= since
    ]
    at = first_copy([_newest(story) for _, story in live], entry.signature)
    if at is None:
        return None
    cluster_id, story = live[at]
    found = joined.get(cluster_id)
    if found is None:
        last_seen, signatures = story.last_seen_at, list(story.signatures)
        found = joined[cluster_id] = _Story("", last_seen, last_seen, cluster_id, signatures)
    return found


def _match_batch(
    entry: NewItem, by_key: dict[str, dict[_Story, None]], first_copy: FirstCopy
) -> _Story | None:
    """A story opened (or joined) earlier in this same batch: those holding the entry's
    first key first."""
    assert entry.signature is not None
    holding = chain.from_iterable(by_key.get(key, ()) for key in entry.band_keys)
    stories = list(dict.fromkeys(holding))
    if not stories:
        return None
    at = first_copy([_newest(story) for story in stories], entry.signature)
    return None if at is None else stories[at]

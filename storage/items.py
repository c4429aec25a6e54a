"""Item repository: storing entries without duplicates and grouping them into stories.

Written in SQLAlchemy Core on the session's connection: ingest stores thousands of rows
a minute, and the ORM's unit of work costs more than the database does. A batch takes a
fixed number of statements, whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import Cluster, ClusterKey, Item, ItemTheme

# Re-exported: callers have always found the records here.
from storage.records import NewItem as NewItem
from storage.records import ThemeTag as ThemeTag

CLUSTER_WINDOW = timedelta(days=3)
MAX_CANDIDATES = 20
SIGNATURES_PER_STORY = 5  # a new entry is compared with a story's newest copies only
SameStory = Callable[[str, str], bool]

_items = cast(Table, Item.__table__)
_clusters = cast(Table, Cluster.__table__)
_themes = cast(Table, ItemTheme.__table__)
_cluster_keys = cast(Table, ClusterKey.__table__)


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
    session: Session, feed_id: int, entries: Iterable[NewItem], same_story: SameStory
) -> StoreReport:
    """Store new entries (duplicates are counted and dropped) and group the relevant ones
    into stories."""
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
    stories = _assign_clusters(conn, [e for _, e in fresh], same_story)
    rows = [_row(feed_id, entry, stories.cluster_id(n)) for n, (_, entry) in enumerate(fresh)]
    item_ids = _insert_items(conn, rows)
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


def _insert_items(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """One multi-row INSERT ... RETURNING; ids come back in the order of `rows`."""
    result = conn.execute(insert(_items).returning(_items.c.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def _insert_themes(conn: Connection, item_ids: list[int], entries: list[NewItem]) -> None:
    rows = [
        {"item_id": item_id, "theme_id": t.id, "score": t.score, "evidence": list(t.evidence)}
        for item_id, entry in zip(item_ids, entries, strict=True)
        for t in entry.themes
    ]
    if rows:
        conn.execute(insert(_themes), rows)


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
    """Every dedupe key of this batch that is already stored, in three queries."""
    guids = {e.guid for e in entries if e.guid}
    urls = {e.canonical_url for e in entries if e.canonical_url}
    pairs = {(e.source, e.title_key) for e in entries}
    seen: set[tuple[str, str]] = set()
    if guids:
        rows = conn.execute(
            select(_items.c.guid).where(_items.c.feed_id == feed_id, _items.c.guid.in_(guids))
        ).scalars()
        seen.update(("guid", g) for g in rows if g)
    if urls:
        rows = conn.execute(
            select(_items.c.canonical_url).where(_items.c.canonical_url.in_(urls))
        ).scalars()
        seen.update(("url", u) for u in rows if u)
    found = conn.execute(
        # Row values on (source, title_key): the index on that pair serves it.
        select(_items.c.source, _items.c.title_key).where(
            tuple_(_items.c.source, _items.c.title_key).in_(pairs)
        )
    )
    seen.update(("title", f"{s}\x00{t}") for s, t in found)
    return seen


def _row(feed_id: int, entry: NewItem, cluster_id: int | None) -> dict[str, Any]:
    # Every row carries the same keys, so the INSERT batches into multi-row statements.
    return {
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
        "alerts_matched": False,
    }


@dataclass
class _Story:
    """A story the batch touches: a stored one (with its id) or one opened by the batch."""

    title: str
    first_seen_at: datetime
    last_seen_at: datetime
    id: int | None = None
    signatures: list[str] = field(default_factory=list)  # newest last

    def join(self, entry: NewItem) -> None:
        assert entry.signature is not None
        self.last_seen_at = max(self.last_seen_at, entry.published_at)
        self.signatures.append(entry.signature)

    def is_copy(self, entry: NewItem, same_story: SameStory) -> bool:
        assert entry.signature is not None
        return any(
            same_story(sig, entry.signature) for sig in self.signatures[-SIGNATURES_PER_STORY:]
        )


class _Assignment:
    """Which story each new relevant entry belongs to."""

    def __init__(self) -> None:
        self.stories: dict[int, _Story] = {}  # entry number -> story
        self.created: dict[int, _Story] = {}  # entry number -> the story it opened

    def cluster_id(self, n: int) -> int | None:
        story = self.stories.get(n)
        return story.id if story is not None else None

    def is_new(self, n: int) -> bool:
        return n in self.created

    def save_counts(self, conn: Connection) -> None:
        """Item and outlet counts and the newest time of every story the batch touched."""
        touched = {s.id: s for s in self.stories.values() if s.id is not None}
        if not touched:
            return
        counts = conn.execute(
            select(_items.c.cluster_id, func.count(), func.count(func.distinct(_items.c.source)))
            .where(_items.c.cluster_id.in_(touched))
            .group_by(_items.c.cluster_id)
        )
        rows = [
            {
                "cid": cluster_id,
                "items": items,
                "sources": sources,
                "last": touched[cluster_id].last_seen_at,
            }
            for cluster_id, items, sources in counts
        ]
        if rows:
            conn.execute(
                update(_clusters)
                .where(_clusters.c.id == bindparam("cid"))
                .values(
                    item_count=bindparam("items"),
                    source_count=bindparam("sources"),
                    last_seen_at=bindparam("last"),
                ),
                rows,
            )


def _assign_clusters(
    conn: Connection, entries: Sequence[NewItem], same_story: SameStory
) -> _Assignment:
    assignment = _Assignment()
    wanted = [(n, e) for n, e in enumerate(entries) if e.relevant and e.signature]
    if not wanted:
        return assignment
    stored_keys, stored = _candidates(conn, [e for _, e in wanted])
    batch_keys: dict[str, list[_Story]] = defaultdict(list)
    new_keys: list[tuple[str, _Story, datetime]] = []
    for n, entry in wanted:
        story = _match(entry, stored_keys, stored, same_story) or _match_batch(
            entry, batch_keys, same_story
        )
        if story is None:
            story = _Story(entry.title, entry.published_at, entry.published_at)
            assignment.created[n] = story
        story.join(entry)
        assignment.stories[n] = story
        for key in dict.fromkeys(entry.band_keys):
            if story not in batch_keys[key]:
                batch_keys[key].append(story)
            new_keys.append((key, story, entry.fetched_at))
    _insert_stories(conn, list(assignment.created.values()))
    rows = [{"key": k, "cluster_id": s.id, "created_at": at} for k, s, at in new_keys]
    if rows:
        upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(upsert(_cluster_keys).on_conflict_do_nothing(), rows)
    return assignment


def _insert_stories(conn: Connection, stories: list[_Story]) -> None:
    if not stories:
        return
    rows = [
        {
            "title": s.title,
            "first_seen_at": s.first_seen_at,
            "last_seen_at": s.last_seen_at,
            "item_count": 1,
            "source_count": 1,
        }
        for s in stories
    ]
    result = conn.execute(
        insert(_clusters).returning(_clusters.c.id, sort_by_parameter_order=True), rows
    )
    for story, cluster_id in zip(stories, result.scalars(), strict=True):
        story.id = cluster_id


def _candidates(
    conn: Connection, entries: Sequence[NewItem]
) -> tuple[dict[str, list[int]], dict[int, _Story]]:
    """Stored stories that share a key with any entry of the batch, and the stories
    some entry will be compared with, with their newest signatures: three queries."""
    keys = {k for e in entries for k in e.band_keys}
    since = min(e.published_at for e in entries) - CLUSTER_WINDOW
    key_rows = conn.execute(
        select(ClusterKey.key, ClusterKey.cluster_id)
        .join(Cluster, Cluster.id == ClusterKey.cluster_id)
        .where(ClusterKey.key.in_(keys), Cluster.last_seen_at >= since)
    )
    by_key: dict[str, list[int]] = defaultdict(list)
    for key, cluster_id in key_rows:
        by_key[key].append(cluster_id)
    # Only the stories some entry will compare with: common keys (a round figure, a
    # frequent pair of names) reach hundreds of stories, most of them never ranked.
    wanted = {cluster_id for e in entries for cluster_id in _ranked(e, by_key)}
    if not wanted:
        return by_key, {}
    # Only what matching needs: a stored story's title and first time never change here.
    stories = {
        cid: _Story("", last, last, id=cid)
        for cid, last in conn.execute(
            select(_clusters.c.id, _clusters.c.last_seen_at).where(_clusters.c.id.in_(wanted))
        )
    }
    newest = (
        select(
            _items.c.cluster_id,
            _items.c.signature,
            func.row_number()
            .over(partition_by=_items.c.cluster_id, order_by=_items.c.id.desc())
            .label("rank"),
        )
        .where(_items.c.cluster_id.in_(wanted), _items.c.signature.is_not(None))
        .subquery()
    )
    rows = conn.execute(
        select(newest.c.cluster_id, newest.c.signature)
        .where(newest.c.rank <= SIGNATURES_PER_STORY)
        .order_by(newest.c.cluster_id, newest.c.rank.desc())
    )
    for cluster_id, sig in rows:
        stories[cluster_id].signatures.append(sig)
    return by_key, stories


def _match(
    entry: NewItem,
    by_key: dict[str, list[int]],
    stories: dict[int, _Story],
    same_story: SameStory,
) -> _Story | None:
    """The stored story this entry continues: candidates sharing the most keys first,
    each compared with its newest copies."""
    since = entry.published_at - CLUSTER_WINDOW
    for cluster_id in _ranked(entry, by_key):
        story = stories.get(cluster_id)
        if story is None or story.last_seen_at < since:
            continue
        if story.is_copy(entry, same_story):
            return story
    return None


def _ranked(entry: NewItem, by_key: dict[str, list[int]]) -> list[int]:
    """The stored stories an entry is compared with: those sharing the most keys."""
    shared: dict[int, int] = defaultdict(int)
    for key in entry.band_keys:
        for cluster_id in by_key.get(key, ()):
            shared[cluster_id] += 1
    return sorted(shared, key=lambda c: (-shared[c], -c))[:MAX_CANDIDATES]


def _match_batch(
    entry: NewItem, by_key: dict[str, list[_Story]], same_story: SameStory
) -> _Story | None:
    """A story opened (or joined) earlier in this same batch."""
    seen: set[int] = set()
    for key in entry.band_keys:
        for story in by_key.get(key, ()):
            if id(story) in seen:
                continue
            seen.add(id(story))
            if story.is_copy(entry, same_story):
                return story
    return None

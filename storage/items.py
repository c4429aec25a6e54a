"""Item repository: storing entries without duplicates and grouping them into stories."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import Cluster, ClusterKey, Item, ItemTheme

# Re-exported: callers have always found the records here.
from storage.records import NewItem as NewItem
from storage.records import ThemeTag as ThemeTag

CLUSTER_WINDOW = timedelta(days=3)
MAX_CANDIDATES = 20
SameStory = Callable[[str, str], bool]


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
    into stories. A fixed number of statements per batch, whatever its size."""
    entries = list(entries)
    seen = _existing_keys(session, feed_id, entries)
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
    assignment = _assign_clusters(session, [e for _, e in fresh], same_story)
    rows = [_row(feed_id, entry, assignment.cluster_of(n)) for n, (_, entry) in enumerate(fresh)]
    item_ids = _insert_items(session, rows)
    _insert_themes(session, item_ids, [entry for _, entry in fresh])
    assignment.refresh_counts(session)
    for n, ((index, _), item_id, row) in enumerate(zip(fresh, item_ids, rows, strict=True)):
        report.stored.append(
            Stored(
                index=index,
                item_id=item_id,
                cluster_id=row["cluster_id"],
                new_cluster=assignment.is_new(n),
            )
        )
    return report


def _insert_items(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """One multi-row INSERT ... RETURNING; ids come back in the order of `rows`."""
    result = session.execute(insert(Item).returning(Item.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def _insert_themes(session: Session, item_ids: list[int], entries: list[NewItem]) -> None:
    rows = [
        {"item_id": item_id, "theme_id": t.id, "score": t.score, "evidence": list(t.evidence)}
        for item_id, entry in zip(item_ids, entries, strict=True)
        for t in entry.themes
    ]
    if rows:
        session.execute(insert(ItemTheme), rows)


def _keys(entry: NewItem) -> list[tuple[str, str]]:
    keys = [("title", f"{entry.source}\x00{entry.title_key}")]
    if entry.guid:
        keys.append(("guid", entry.guid))
    if entry.canonical_url:
        keys.append(("url", entry.canonical_url))
    return keys


def _existing_keys(
    session: Session, feed_id: int, entries: Sequence[NewItem]
) -> set[tuple[str, str]]:
    """Every dedupe key of this batch that is already stored, in three queries."""
    guids = {e.guid for e in entries if e.guid}
    urls = {e.canonical_url for e in entries if e.canonical_url}
    titles = {e.title_key for e in entries}
    seen: set[tuple[str, str]] = set()
    if guids:
        rows = session.scalars(
            select(Item.guid).where(Item.feed_id == feed_id, Item.guid.in_(guids))
        )
        seen.update(("guid", g) for g in rows if g)
    if urls:
        rows = session.scalars(select(Item.canonical_url).where(Item.canonical_url.in_(urls)))
        seen.update(("url", u) for u in rows if u)
    if titles:
        pairs = session.execute(
            # Constrained on source too, so the (source, title_key) index serves it.
            select(Item.source, Item.title_key).where(
                Item.source.in_({e.source for e in entries}), Item.title_key.in_(titles)
            )
        )
        seen.update(("title", f"{s}\x00{t}") for s, t in pairs)
    return seen


def _row(feed_id: int, entry: NewItem, cluster: Cluster | None) -> dict[str, Any]:
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
        "cluster_id": cluster.id if cluster is not None else None,
        "relevance": entry.relevance,
        "relevant": entry.relevant,
        "relevance_reasons": list(entry.reasons),
        "alertable": entry.alertable,
    }


class _Assignment:
    """Which story each new relevant entry belongs to: a stored one, or a new one made
    for this batch (which later entries of the batch may join too)."""

    def __init__(self) -> None:
        self.clusters: dict[int, Cluster] = {}  # entry number -> cluster
        self.created: set[int] = set()  # entry numbers that opened a new cluster
        self.joined: set[int] = set()  # ids of stored clusters that got new items

    def cluster_of(self, n: int) -> Cluster | None:
        return self.clusters.get(n)

    def is_new(self, n: int) -> bool:
        return n in self.created

    def refresh_counts(self, session: Session) -> None:
        """Item and outlet counts of the stories this batch touched, in one query."""
        touched = {c.id for c in self.clusters.values()}
        if not touched:
            return
        counts = session.execute(
            select(Item.cluster_id, func.count(), func.count(func.distinct(Item.source)))
            .where(Item.cluster_id.in_(touched))
            .group_by(Item.cluster_id)
        )
        by_id = {c.id: c for c in self.clusters.values()}
        for cluster_id, items, sources in counts:
            if cluster_id is not None:
                by_id[cluster_id].item_count = items
                by_id[cluster_id].source_count = sources


def _assign_clusters(
    session: Session, entries: Sequence[NewItem], same_story: SameStory
) -> _Assignment:
    assignment = _Assignment()
    wanted = [(n, e) for n, e in enumerate(entries) if e.relevant and e.signature]
    if not wanted:
        return assignment
    stored_keys, stored_sigs, stored_clusters = _candidates(session, [e for _, e in wanted])
    batch_keys: dict[str, list[Cluster]] = defaultdict(list)
    batch_sigs: dict[int, list[str]] = defaultdict(list)  # id(cluster) -> signatures
    new_keys: list[tuple[str, Cluster, datetime]] = []
    for n, entry in wanted:
        assert entry.signature is not None
        cluster = _match(entry, stored_keys, stored_sigs, stored_clusters, same_story)
        if cluster is None:
            cluster = _match_batch(entry, batch_keys, batch_sigs, same_story)
        if cluster is None:
            cluster = Cluster(
                title=entry.title,
                first_seen_at=entry.published_at,
                last_seen_at=entry.published_at,
                item_count=1,
                source_count=1,
            )
            session.add(cluster)
            assignment.created.add(n)
        else:
            cluster.last_seen_at = max(cluster.last_seen_at, entry.published_at)
        assignment.clusters[n] = cluster
        batch_sigs[id(cluster)].append(entry.signature)
        for key in dict.fromkeys(entry.band_keys):
            if cluster not in batch_keys[key]:
                batch_keys[key].append(cluster)
            new_keys.append((key, cluster, entry.fetched_at))
    session.flush()  # ids for the clusters made here
    rows = [{"key": k, "cluster_id": c.id, "created_at": at} for k, c, at in new_keys]
    if rows:
        dialect = session.get_bind().dialect.name
        upsert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(upsert(ClusterKey).on_conflict_do_nothing(), rows)
    return assignment


def _candidates(
    session: Session, entries: Sequence[NewItem]
) -> tuple[dict[str, list[int]], dict[int, list[str]], dict[int, Cluster]]:
    """Stored stories that share a key with any entry of the batch: their keys, their
    newest signatures and the rows themselves, in three queries."""
    keys = {k for e in entries for k in e.band_keys}
    since = min(e.published_at for e in entries) - CLUSTER_WINDOW
    key_rows = session.execute(
        select(ClusterKey.key, ClusterKey.cluster_id)
        .join(Cluster, Cluster.id == ClusterKey.cluster_id)
        .where(ClusterKey.key.in_(keys), Cluster.last_seen_at >= since)
    ).all()
    by_key: dict[str, list[int]] = defaultdict(list)
    for key, cluster_id in key_rows:
        by_key[key].append(cluster_id)
    # Only the stories some entry will compare with: common keys (a round figure, a
    # frequent pair of names) reach hundreds of stories, most of them never ranked.
    cluster_ids = {cluster_id for e in entries for cluster_id in _ranked(e, by_key)}
    sigs: dict[int, list[str]] = defaultdict(list)
    clusters: dict[int, Cluster] = {}
    if cluster_ids:
        rows = session.execute(
            select(Item.cluster_id, Item.signature)
            .where(Item.cluster_id.in_(cluster_ids), Item.signature.is_not(None))
            .order_by(Item.id.desc())
        )
        for owner, sig in rows:
            if owner is not None and sig and len(sigs[owner]) < 5:
                sigs[owner].append(sig)
        clusters = {
            c.id: c for c in session.scalars(select(Cluster).where(Cluster.id.in_(cluster_ids)))
        }
    return by_key, sigs, clusters


def _match(
    entry: NewItem,
    by_key: dict[str, list[int]],
    sigs: dict[int, list[str]],
    clusters: dict[int, Cluster],
    same_story: SameStory,
) -> Cluster | None:
    """The stored story this entry continues: candidates sharing the most keys first,
    each compared with its five newest copies."""
    since = entry.published_at - CLUSTER_WINDOW
    assert entry.signature is not None
    for cluster_id in _ranked(entry, by_key):
        cluster = clusters.get(cluster_id)
        if cluster is None or cluster.last_seen_at < since:
            continue
        if any(same_story(sig, entry.signature) for sig in sigs.get(cluster_id, ())):
            return cluster
    return None


def _ranked(entry: NewItem, by_key: dict[str, list[int]]) -> list[int]:
    """The stored stories an entry is compared with: those sharing the most keys."""
    shared: dict[int, int] = defaultdict(int)
    for key in entry.band_keys:
        for cluster_id in by_key.get(key, ()):
            shared[cluster_id] += 1
    return sorted(shared, key=lambda c: (-shared[c], -c))[:MAX_CANDIDATES]


def _match_batch(
    entry: NewItem,
    by_key: dict[str, list[Cluster]],
    sigs: dict[int, list[str]],
    same_story: SameStory,
) -> Cluster | None:
    """A story opened earlier in this same batch."""
    assert entry.signature is not None
    seen: set[int] = set()
    for key in entry.band_keys:
        for cluster in by_key.get(key, ()):
            if id(cluster) in seen:
                continue
            seen.add(id(cluster))
            if any(same_story(sig, entry.signature) for sig in sigs[id(cluster)][-5:]):
                return cluster
    return None

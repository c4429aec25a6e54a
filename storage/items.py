"""Item repository: storing entries without duplicates and grouping them into stories."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Cluster, ClusterKey, Item, ItemTheme

CLUSTER_WINDOW = timedelta(days=3)
SameStory = Callable[[str, str], bool]


@dataclass(frozen=True)
class ThemeTag:
    id: str
    score: float
    evidence: tuple[str, ...]


@dataclass
class NewItem:
    """An entry ready to store: parsed, normalised, tagged and summarised."""

    guid: str | None
    url: str | None
    canonical_url: str | None
    source: str
    title: str
    title_key: str
    author: str | None
    published_at: datetime
    published_was_missing: bool
    fetched_at: datetime
    text: str
    summary: str
    content_hash: str
    signature: str | None = None
    band_keys: Sequence[str] = ()
    relevance: float = 0.0
    relevant: bool = False
    reasons: Sequence[str] = ()
    themes: Sequence[ThemeTag] = field(default_factory=tuple)
    alertable: bool = True


@dataclass(frozen=True)
class Stored:
    item_id: int
    cluster_id: int
    new_cluster: bool


@dataclass
class StoreReport:
    stored: list[Stored] = field(default_factory=list)
    duplicates: int = 0


def store_items(
    session: Session, feed_id: int, entries: Iterable[NewItem], same_story: SameStory
) -> StoreReport:
    entries = list(entries)
    seen = _existing_keys(session, feed_id, entries)
    report = StoreReport()
    for entry in entries:
        keys = _keys(entry)
        if any(key in seen for key in keys):
            report.duplicates += 1
            continue
        seen.update(keys)
        report.stored.append(_insert(session, feed_id, entry, same_story))
    return report


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
            select(Item.source, Item.title_key).where(Item.title_key.in_(titles))
        )
        seen.update(("title", f"{s}\x00{t}") for s, t in pairs)
    return seen


def _insert(session: Session, feed_id: int, entry: NewItem, same_story: SameStory) -> Stored:
    cluster, new_cluster = _find_or_create_cluster(session, entry, same_story)
    item = Item(
        feed_id=feed_id,
        guid=entry.guid,
        url=entry.url,
        canonical_url=entry.canonical_url,
        source=entry.source,
        title=entry.title,
        title_key=entry.title_key,
        author=entry.author,
        published_at=entry.published_at,
        published_was_missing=entry.published_was_missing,
        fetched_at=entry.fetched_at,
        text=entry.text,
        summary=entry.summary,
        content_hash=entry.content_hash,
        signature=entry.signature,
        cluster_id=cluster.id,
        relevance=entry.relevance,
        relevant=entry.relevant,
        relevance_reasons=list(entry.reasons),
        alertable=entry.alertable,
        themes=[
            ItemTheme(theme_id=t.id, score=t.score, evidence=list(t.evidence)) for t in entry.themes
        ],
    )
    session.add(item)
    session.flush()
    if not new_cluster:
        _refresh_cluster(session, cluster, entry)
    _add_band_keys(session, cluster.id, entry.band_keys, entry.fetched_at)
    return Stored(item_id=item.id, cluster_id=cluster.id, new_cluster=new_cluster)


def _find_or_create_cluster(
    session: Session, entry: NewItem, same_story: SameStory
) -> tuple[Cluster, bool]:
    if entry.signature and entry.band_keys:
        since = entry.published_at - CLUSTER_WINDOW
        # The clusters sharing the most keys first, so common keys cannot crowd them out.
        shared = func.count().label("shared")
        candidates = session.scalars(
            select(ClusterKey.cluster_id)
            .join(Cluster, Cluster.id == ClusterKey.cluster_id)
            .where(ClusterKey.key.in_(list(entry.band_keys)), Cluster.last_seen_at >= since)
            .group_by(ClusterKey.cluster_id)
            .order_by(shared.desc(), ClusterKey.cluster_id.desc())
            .limit(20)
        ).all()
        for cluster_id in candidates:
            signatures = session.scalars(
                select(Item.signature)
                .where(Item.cluster_id == cluster_id)
                .order_by(Item.id.desc())
                .limit(5)
            )
            if any(sig and same_story(sig, entry.signature) for sig in signatures):
                cluster = session.get(Cluster, cluster_id)
                if cluster is not None:
                    return cluster, False
    cluster = Cluster(
        title=entry.title,
        first_seen_at=entry.published_at,
        last_seen_at=entry.published_at,
        item_count=1,
        source_count=1,
    )
    session.add(cluster)
    session.flush()
    return cluster, True


def _refresh_cluster(session: Session, cluster: Cluster, entry: NewItem) -> None:
    cluster.item_count = (
        session.scalar(select(func.count()).where(Item.cluster_id == cluster.id)) or 1
    )
    cluster.source_count = (
        session.scalar(
            select(func.count(func.distinct(Item.source))).where(Item.cluster_id == cluster.id)
        )
        or 1
    )
    cluster.last_seen_at = max(cluster.last_seen_at, entry.published_at)


def _add_band_keys(
    session: Session, cluster_id: int, band_keys: Sequence[str], now: datetime
) -> None:
    if not band_keys:
        return
    have = set(
        session.scalars(
            select(ClusterKey.key).where(
                ClusterKey.cluster_id == cluster_id, ClusterKey.key.in_(list(band_keys))
            )
        )
    )
    for key in dict.fromkeys(band_keys):
        if key not in have:
            session.add(ClusterKey(key=key, cluster_id=cluster_id, created_at=now))
    session.flush()

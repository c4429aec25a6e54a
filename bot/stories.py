"""Turning stored items into stories: one per cluster, its best copy up front."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.messages import SourceRef, Story
from storage.models import Item

UNTHEMED = "other"


@dataclass(frozen=True)
class RankedStory:
    story: Story
    primary_theme: str
    rank: float
    text: str = ""  # the best copy's plain text, for an LLM summary


def stories_from_items(
    items: Iterable[Item], *, now: datetime, window_hours: float = 24.0
) -> list[RankedStory]:
    """Group items by cluster; rank by relevance, number of outlets and recency."""
    by_cluster: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        by_cluster[item.cluster_id or -item.id].append(item)
    ranked = [_story(copies, now=now, window_hours=window_hours) for copies in by_cluster.values()]
    ranked.sort(key=lambda r: (-r.rank, -r.story.published.timestamp(), r.story.cluster_id))
    return ranked


def load_items(session: Session, ids: Sequence[int]) -> list[Item]:
    if not ids:
        return []
    query = select(Item).where(Item.id.in_(list(ids))).options(selectinload(Item.themes))
    return list(session.scalars(query))


def _story(copies: list[Item], *, now: datetime, window_hours: float) -> RankedStory:
    copies.sort(key=lambda i: (-i.relevance, i.published_at, i.id))
    best = copies[0]
    seen_sources = {best.source}
    others: list[SourceRef] = []
    for item in copies[1:]:
        if item.source not in seen_sources:
            seen_sources.add(item.source)
            others.append(SourceRef(name=item.source, url=item.url))
    theme_scores: dict[str, float] = defaultdict(float)
    for item in copies:
        for tag in item.themes:
            theme_scores[tag.theme_id] = max(theme_scores[tag.theme_id], tag.score)
    themes = tuple(sorted(theme_scores, key=lambda t: (-theme_scores[t], t)))
    age_hours = max(0.0, (now - best.published_at).total_seconds() / 3600)
    recency = max(0.0, 1.0 - age_hours / max(window_hours, 1.0))
    rank = best.relevance + 0.15 * min(len(seen_sources) - 1, 4) + 0.2 * recency
    story = Story(
        cluster_id=best.cluster_id or -best.id,
        title=best.title,
        url=best.url,
        source=best.source,
        published=best.published_at,
        summary=best.summary,
        themes=themes,
        relevance=round(best.relevance, 3),
        more_sources=tuple(others),
    )
    primary = themes[0] if themes else UNTHEMED
    return RankedStory(story=story, primary_theme=primary, rank=rank, text=best.text)

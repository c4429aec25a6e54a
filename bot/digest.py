"""Daily digests per channel: items since the channel's watermark, one entry per story,
grouped by theme, ranked, capped; queued through the outbox once per local day."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from bot.delivery import Destination
from bot.messages import Digest, Notice, ThemeSection
from bot.outbox import enqueue
from bot.pack import Pack
from bot.stories import UNTHEMED, RankedStory, stories_from_items
from bot.summaries import with_llm_summaries
from storage.db import Database
from storage.models import Channel, Item, OutboxMessage
from storage.types import utcnow

FIRST_DIGEST_WINDOW = timedelta(hours=24)
MAX_STORIES = 30
MAX_PER_THEME = 8
EMPTY_LINE = "No new Meta AI coverage since the last digest."


def build_digest(
    session: Session,
    pack: Pack,
    *,
    since: datetime,
    until: datetime,
    tz: ZoneInfo | None = None,
    max_stories: int = MAX_STORIES,
    summarise: bool = True,
) -> Digest:
    """The digest of relevant stories first stored in (since, until]."""
    items = _new_story_items(session, since, until)
    ranked = stories_from_items(items, now=until, window_hours=_hours(until - since))
    kept, left_out = _cap(ranked, max_stories)
    if summarise:
        kept = with_llm_summaries(kept)
    day = until.astimezone(tz).date() if tz else until.date()
    return Digest(
        title=f"Meta AI briefing — {day:%a %d %b %Y}",
        day=day,
        since=since,
        until=until,
        sections=_sections(kept, pack),
        total_stories=len(ranked),
        left_out=left_out,
        empty_note=None if ranked else EMPTY_LINE,
    )


def _new_story_items(session: Session, since: datetime, until: datetime) -> list[Item]:
    """Relevant items stored in the window whose story was not in an earlier digest."""
    earlier = aliased(Item)
    # Uncorrelated on purpose: SQLite would otherwise re-run the subquery for every row.
    covered_before = (
        select(earlier.cluster_id)
        .where(
            earlier.relevant.is_(True),
            earlier.fetched_at <= since,
            earlier.cluster_id.is_not(None),
        )
        .scalar_subquery()
    )
    query = (
        select(Item)
        .where(
            Item.relevant.is_(True),
            Item.fetched_at > since,
            Item.fetched_at <= until,
            or_(Item.cluster_id.is_(None), Item.cluster_id.not_in(covered_before)),
        )
        .options(selectinload(Item.themes))
    )
    return list(session.scalars(query))


def _cap(ranked: list[RankedStory], max_stories: int) -> tuple[list[RankedStory], int]:
    per_theme: dict[str, int] = defaultdict(int)
    kept: list[RankedStory] = []
    for r in ranked:
        if len(kept) >= max_stories or per_theme[r.primary_theme] >= MAX_PER_THEME:
            continue
        per_theme[r.primary_theme] += 1
        kept.append(r)
    return kept, len(ranked) - len(kept)


def _sections(kept: list[RankedStory], pack: Pack) -> tuple[ThemeSection, ...]:
    grouped: dict[str, list[RankedStory]] = defaultdict(list)
    for r in kept:  # already best first, so sections are ordered by their best story
        grouped[r.primary_theme].append(r)
    sections = []
    for theme_id, stories in grouped.items():
        theme = pack.theme(theme_id)
        name = theme.name if theme else "Other Meta AI news"
        sections.append(
            ThemeSection(
                theme_id=theme_id if theme else UNTHEMED,
                theme_name=name,
                stories=tuple(s.story for s in stories),
            )
        )
    return tuple(sections)


def _hours(delta: timedelta) -> float:
    return max(delta.total_seconds() / 3600, 1.0)


# -- per channel ------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedDigest:
    key: str
    queued: bool  # False: this channel's digest for that day was already queued
    stories: int


def channel_destination(channel: Channel) -> Destination:
    return Destination(platform=channel.platform, workspace=channel.workspace, ref=channel.ref)


def queue_digest(
    db: Database, pack: Pack, channel_id: int, now: datetime | None = None, *, manual: bool = False
) -> QueuedDigest | None:
    """Queue the channel's digest and move its watermark, in one transaction.

    Idempotent per channel and local date (scheduled runs), so a misfired job that runs
    late, or twice, never posts a second digest. ``manual`` (digest now) keys by minute.
    """
    now = now or utcnow()
    with db.session() as session:
        channel = session.get(Channel, channel_id)
        if channel is None:
            return None
        tz = ZoneInfo(channel.digest_tz)
        dest = f"{channel.platform}:{channel.workspace}:{channel.ref}"
        day = now.astimezone(tz).date()
        key = f"digest-now:{dest}:{now:%Y-%m-%dT%H:%M}" if manual else f"digest:{dest}:{day}"
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)):
            # Already queued (a late or repeated run): skip building it, LLM calls included.
            return QueuedDigest(key=key, queued=False, stories=0)
        since = channel.watermark_at or now - FIRST_DIGEST_WINDOW
        digest = build_digest(session, pack, since=since, until=now, tz=tz)
        if digest.total_stories == 0 and channel.empty_digest == "skip" and not manual:
            channel.watermark_at = now
            return QueuedDigest(key=key, queued=False, stories=0)
        queued = enqueue(
            session,
            key=key,
            dest=channel_destination(channel),
            kind="digest",
            message=digest,
            now=now,
        )
        if queued:
            channel.watermark_at = now
        return QueuedDigest(key=key, queued=queued, stories=digest.total_stories)


def digest_now(db: Database, pack: Pack, channel_id: int) -> Notice:
    result = queue_digest(db, pack, channel_id, manual=True)
    if result is None:
        return Notice(level="error", text="This channel has no digest settings yet.")
    if not result.queued:
        return Notice(level="info", text="A digest for this channel is already on its way.")
    if result.stories == 0:
        return Notice(level="info", text=EMPTY_LINE)
    return Notice(level="ok", text=f"Posting the digest here: {result.stories} new stories.")

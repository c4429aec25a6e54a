"""Topic alerts: match newly stored items against subscriptions, then batch per
subscription into at most one message per window, never repeating a story."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.delivery import Destination
from bot.messages import Alert, Notice
from bot.outbox import enqueue
from bot.pack import Pack
from bot.stories import load_items, stories_from_items
from bot.summaries import with_llm_summaries
from storage.db import Database
from storage.items import StoreReport
from storage.models import AlertHit, Channel, Feed, Item, Subscription
from storage.types import utcnow

ALERT_WINDOW = timedelta(minutes=15)
MAX_ALERT_STORIES = 10


@lru_cache(maxsize=1024)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in phrase.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def matches(sub: Subscription, item: Item) -> bool:
    if sub.kind == "theme":
        return any(t.theme_id == sub.value for t in item.themes)
    pattern = _phrase_pattern(sub.value)
    return bool(pattern.search(item.title) or pattern.search(item.summary))


def match_new_items(session: Session, report: StoreReport) -> None:
    """Ingest hook: record which subscriptions each new relevant, alertable item hits."""
    if not report.stored:
        return
    subs = list(session.scalars(select(Subscription)))
    if not subs:
        return
    items = [
        i
        for i in load_items(session, [s.item_id for s in report.stored])
        if i.relevant and i.alertable
    ]
    for item in items:
        if item.cluster_id is None:
            continue
        for sub in subs:
            if matches(sub, item) and session.get(AlertHit, (sub.id, item.cluster_id)) is None:
                session.add(
                    AlertHit(subscription_id=sub.id, cluster_id=item.cluster_id, item_id=item.id)
                )
        session.flush()


def flush_alerts(
    db: Database, pack: Pack, now: datetime | None = None, *, window: timedelta = ALERT_WINDOW
) -> int:
    """Queue one alert per subscription whose window has passed; returns how many."""
    now = now or utcnow()
    queued = 0
    with db.session() as session:
        pending: dict[int, list[AlertHit]] = defaultdict(list)
        for hit in session.scalars(select(AlertHit).where(AlertHit.batched.is_(False))):
            pending[hit.subscription_id].append(hit)
        for sub_id, hits in pending.items():
            sub = session.get(Subscription, sub_id)
            if sub is None or (sub.last_sent_at and now - sub.last_sent_at < window):
                continue
            if _queue_alert(session, pack, sub, hits, now):
                queued += 1
        report_paused_feeds(session, now)
    return queued


def report_paused_feeds(session: Session, now: datetime) -> int:
    """Tell the channels that have a digest (set up by their admins) about feeds paused
    after repeated failures; once per pause. Returns how many notices were queued."""
    paused = session.scalars(
        select(Feed).where(Feed.enabled.is_(False), Feed.paused_reason.is_not(None))
    ).all()
    if not paused:
        return 0
    channels = session.scalars(select(Channel).where(Channel.digest_enabled.is_(True))).all()
    queued = 0
    for feed in paused:
        when = feed.last_error_at or now
        text = (
            f"Feed paused: {feed.title or feed.url} ({feed.url}): {feed.paused_reason}. "
            f"An admin can check it with `/brief feeds list`."
        )
        for channel in channels:
            queued += enqueue(
                session,
                key=f"feed-paused:{feed.id}:{when:%Y%m%dT%H%M%S}:{channel.id}",
                dest=Destination(channel.platform, channel.workspace, channel.ref),
                kind="notice",
                message=Notice(level="error", text=text),
                now=now,
            )
    return queued


def _queue_alert(
    session: Session, pack: Pack, sub: Subscription, hits: list[AlertHit], now: datetime
) -> bool:
    ranked = stories_from_items(load_items(session, [h.item_id for h in hits]), now=now)
    stories = tuple(r.story for r in with_llm_summaries(ranked[:MAX_ALERT_STORIES]))
    theme = pack.theme(sub.value) if sub.kind == "theme" else None
    alert = Alert(
        subscription_id=sub.id,
        label=theme.name if theme else f"“{sub.value}”",
        theme_id=theme.id if theme else None,
        stories=stories,
        left_out=max(0, len(ranked) - len(stories)),
    )
    clusters = ",".join(str(c) for c in sorted(h.cluster_id for h in hits))
    digest = hashlib.sha256(clusters.encode()).hexdigest()[:16]
    dest = Destination(
        platform=sub.platform,
        workspace=sub.workspace,
        ref=sub.dest_ref,
        direct=sub.delivery == "dm",
    )
    queued = enqueue(
        session, key=f"alert:{sub.id}:{digest}", dest=dest, kind="alert", message=alert, now=now
    )
    for hit in hits:
        hit.batched = True
    sub.last_sent_at = now
    return queued

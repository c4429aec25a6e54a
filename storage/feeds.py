"""Feed repository: the feed list, due feeds, and the outcome of each fetch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Update, bindparam, func, or_, select, true, update
from sqlalchemy.orm import Session

from storage.models import Feed, table_of
from storage.types import utcnow


class FeedExists(ValueError):
    pass


class FeedNotFound(LookupError):
    pass


def add_feed(session: Session, url: str, *, title: str | None = None) -> Feed:
    if session.scalar(select(Feed).where(Feed.url == url)) is not None:
        raise FeedExists(f"already following {url}")
    feed = Feed(url=url, title=title, next_fetch_at=utcnow())
    session.add(feed)
    session.flush()
    return feed


def get_feed_by_url(session: Session, url: str) -> Feed:
    feed = session.scalar(select(Feed).where(Feed.url == url))
    if feed is None:
        raise FeedNotFound(f"not following {url}")
    return feed


def remove_feed(session: Session, url: str) -> None:
    session.delete(get_feed_by_url(session, url))


def list_feeds(session: Session) -> Sequence[Feed]:
    return session.scalars(select(Feed).order_by(Feed.id)).all()


def resume_feed(session: Session, url: str) -> Feed:
    feed = get_feed_by_url(session, url)
    feed.enabled = True
    feed.paused_reason = None
    feed.consecutive_errors = 0
    feed.next_fetch_at = utcnow()
    return feed


def claim_due_feeds(
    session: Session,
    now: datetime,
    *,
    owner: str,
    lease: timedelta = timedelta(minutes=5),
    limit: int = 500,
    force: bool = False,
) -> list[Feed]:
    """Lease the feeds due now, so no other replica fetches them at the same time.

    On PostgreSQL rows locked by another replica are skipped (FOR UPDATE SKIP LOCKED);
    the lease columns keep the claim after this transaction commits.
    """
    query = select(Feed).where(
        Feed.enabled.is_(True),
        or_(Feed.lease_until.is_(None), Feed.lease_until < now),
    )
    if not force:
        query = query.where(or_(Feed.next_fetch_at.is_(None), Feed.next_fetch_at <= now))
    query = query.order_by(Feed.next_fetch_at).limit(limit)
    if session.bind is not None and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    feeds = list(session.scalars(query))
    for feed in feeds:
        feed.lease_owner = owner
        feed.lease_until = now + lease
    return feeds


@dataclass(frozen=True)
class FetchOutcome:
    """What the fetcher learned; applied to the feed row after entries are stored."""

    fetched_at: datetime
    next_fetch_at: datetime
    ok: bool
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    title: str | None = None
    site_url: str | None = None
    ttl_minutes: int | None = None
    new_url: str | None = None
    error: str | None = None
    pause: bool = False


_feeds = table_of(Feed)


def _success_update(*, validators: bool) -> Update:
    """record_outcome's success without a new URL, as one UPDATE: what a fetch brought
    replaces the title, site URL and TTL only when it has one (NULL keeps the stored)."""
    c = _feeds.c
    # Bind names unlike any column's: a parameter named after a column joins the SET.
    values: dict[Column[Any], Any] = {
        c.last_fetched_at: bindparam("p_fetched_at", type_=c.last_fetched_at.type),
        c.next_fetch_at: bindparam("p_next_fetch_at", type_=c.next_fetch_at.type),
        c.lease_owner: None,
        c.lease_until: None,
        c.consecutive_errors: 0,
        c.last_error: None,
        c.last_success_at: bindparam("p_fetched_at", type_=c.last_success_at.type),
        c.backlog_done: true(),
        c.title: func.coalesce(bindparam("p_title", type_=c.title.type), c.title),
        c.site_url: func.coalesce(bindparam("p_site_url", type_=c.site_url.type), c.site_url),
        c.ttl_minutes: func.coalesce(bindparam("p_ttl", type_=c.ttl_minutes.type), c.ttl_minutes),
    }
    if validators:
        values[c.etag] = bindparam("p_etag", type_=c.etag.type)
        values[c.last_modified] = bindparam("p_last_modified", type_=c.last_modified.type)
    return update(_feeds).where(c.id == bindparam("p_id")).values(values)


# Built once: a statement executed again skips SQLAlchemy's cache-key work.
_SUCCESS = _success_update(validators=True)
_SUCCESS_NOT_MODIFIED = _success_update(validators=False)


def record_outcome(session: Session, feed_id: int, outcome: FetchOutcome) -> None:
    if outcome.ok and not outcome.new_url and _not_loaded(session, feed_id):
        # The writer records thousands of fetches: one UPDATE, not the ORM's load and
        # flush. A feed this session holds goes through the ORM, so it stays current.
        params = {
            "p_id": feed_id,
            "p_fetched_at": outcome.fetched_at,
            "p_next_fetch_at": outcome.next_fetch_at,
            "p_title": outcome.title or None,
            "p_site_url": outcome.site_url or None,
            "p_ttl": outcome.ttl_minutes or None,
        }
        if outcome.not_modified:
            result = session.connection().execute(_SUCCESS_NOT_MODIFIED, params)
        else:
            # Validators are saved only now, after the entries of this response are stored.
            params |= {"p_etag": outcome.etag, "p_last_modified": outcome.last_modified}
            result = session.connection().execute(_SUCCESS, params)
        if result.rowcount != 1:
            raise FeedNotFound(f"feed {feed_id} vanished")
        return
    _record_with_orm(session, feed_id, outcome)


def _not_loaded(session: Session, feed_id: int) -> bool:
    return session.identity_key(Feed, feed_id) not in session.identity_map


def _record_with_orm(session: Session, feed_id: int, outcome: FetchOutcome) -> None:
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise FeedNotFound(f"feed {feed_id} vanished")
    feed.last_fetched_at = outcome.fetched_at
    feed.next_fetch_at = outcome.next_fetch_at
    feed.lease_owner = None
    feed.lease_until = None
    if outcome.ok:
        feed.consecutive_errors = 0
        feed.last_error = None
        feed.last_success_at = outcome.fetched_at
        feed.backlog_done = True
        if not outcome.not_modified:
            # Validators are saved only now, after the entries of this response are stored.
            feed.etag = outcome.etag
            feed.last_modified = outcome.last_modified
        feed.title = outcome.title or feed.title
        feed.site_url = outcome.site_url or feed.site_url
        feed.ttl_minutes = outcome.ttl_minutes if outcome.ttl_minutes else feed.ttl_minutes
        if outcome.new_url and outcome.new_url != feed.url:
            clash = session.scalar(select(Feed.id).where(Feed.url == outcome.new_url))
            if clash is None:
                feed.url = outcome.new_url
        return
    feed.consecutive_errors += 1
    feed.last_error = outcome.error
    feed.last_error_at = outcome.fetched_at
    if outcome.pause:
        feed.enabled = False
        feed.paused_reason = (
            f"paused after {feed.consecutive_errors} consecutive failures: {outcome.error}"
        )

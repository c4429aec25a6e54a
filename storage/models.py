"""SQLAlchemy 2.0 typed models: the whole schema of briefbot.

Platform-neutral: a destination is (platform, workspace, ref) strings; the core never
interprets them, adapters do.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


def table_of(model: type[Base]) -> Table:
    """A model's table for Core statements (``__table__`` is typed as any FromClause)."""
    return cast(Table, model.__table__)


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    title: Mapped[str | None] = mapped_column(String(500))
    site_url: Mapped[str | None] = mapped_column(String(2048))
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    ttl_minutes: Mapped[int | None]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_fetch_at: Mapped[datetime | None] = mapped_column(index=True)
    last_fetched_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    consecutive_errors: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    # False until the first successful fetch is stored: that backlog is never alerted.
    backlog_done: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]


class Cluster(Base):
    """A story: one or more items (syndicated copies) about the same event."""

    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    item_count: Mapped[int] = mapped_column(Integer, default=1)
    source_count: Mapped[int] = mapped_column(Integer, default=1)
    # The index keys of its items (space-separated): a story is found by any of them. Read
    # into memory by storage.story_index, never searched in SQL.
    band_keys: Mapped[str] = mapped_column(Text, default="")


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("feed_id", "guid", name="uq_items_feed_guid"),
        Index("ix_items_title_key", "source", "title_key"),
        Index("ix_items_relevant_fetched", "relevant", "fetched_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    guid: Mapped[str | None] = mapped_column(String(1000))
    url: Mapped[str | None] = mapped_column(String(2048))
    canonical_url: Mapped[str | None] = mapped_column(String(2048), unique=True)
    source: Mapped[str] = mapped_column(String(300))
    title: Mapped[str] = mapped_column(String(500))
    title_key: Mapped[str] = mapped_column(String(500))
    author: Mapped[str | None] = mapped_column(String(300))
    published_at: Mapped[datetime]
    published_was_missing: Mapped[bool] = mapped_column(Boolean, default=False)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    text: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(Text)
    cluster_id: Mapped[int | None] = mapped_column(
        ForeignKey("clusters.id", ondelete="SET NULL"), index=True
    )
    relevance: Mapped[float] = mapped_column(Float, default=0.0)
    relevant: Mapped[bool] = mapped_column(Boolean, default=False)
    relevance_reasons: Mapped[list[Any]] = mapped_column(default=list)
    # Backlog of a newly added feed: stored, shown in digests, never alerted.
    alertable: Mapped[bool] = mapped_column(Boolean, default=True)
    alerts_matched: Mapped[bool] = mapped_column(Boolean, default=False)

    feed: Mapped[Feed] = relationship()
    cluster: Mapped[Cluster | None] = relationship()
    themes: Mapped[list[ItemTheme]] = relationship(
        back_populates="item", cascade="all, delete-orphan", order_by="ItemTheme.score.desc()"
    )


class ItemTheme(Base):
    __tablename__ = "item_themes"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    theme_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[list[Any]] = mapped_column(default=list)

    item: Mapped[Item] = relationship(back_populates="themes")


class StoryEpoch(Base):
    """A single row whose counter every story-assigning transaction bumps (and so holds
    locked until it commits: replicas assign stories one at a time)."""

    __tablename__ = "story_epoch"

    id: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class Claim(Base):
    """A tracked claim: from the pack's ledger, or a candidate extracted from coverage."""

    __tablename__ = "claims"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    origin: Mapped[str] = mapped_column(String(20), default="ledger")  # ledger | coverage
    statement: Mapped[str] = mapped_column(Text)
    speaker: Mapped[str | None] = mapped_column(String(200))
    claimed_on: Mapped[date | None] = mapped_column(Date)
    publication: Mapped[str] = mapped_column(String(300), default="")
    source_title: Mapped[str] = mapped_column(String(500), default="")
    source_author: Mapped[str | None] = mapped_column(String(300))
    source_url: Mapped[str | None] = mapped_column(String(2048))
    seed: Mapped[str | None] = mapped_column(String(200))
    themes: Mapped[list[Any]] = mapped_column(default=list)
    figures: Mapped[list[Any]] = mapped_column(default=list)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default="open")
    superseded_by: Mapped[str | None] = mapped_column(String(200))
    status_note: Mapped[str | None] = mapped_column(Text)
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), index=True
    )
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClaimCoverage(Base):
    __tablename__ = "claim_coverage"

    claim_id: Mapped[str] = mapped_column(
        ForeignKey("claims.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    score: Mapped[float] = mapped_column(Float)
    updates_figure: Mapped[bool] = mapped_column(Boolean, default=False)
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


class Channel(Base):
    """A chat destination that gets a scheduled digest."""

    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("platform", "workspace", "ref", name="uq_channels_dest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    workspace: Mapped[str] = mapped_column(String(100), default="")
    ref: Mapped[str] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(200))
    digest_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    digest_time: Mapped[str | None] = mapped_column(String(5))  # HH:MM
    digest_tz: Mapped[str] = mapped_column(String(64), default="UTC")
    digest_days: Mapped[str] = mapped_column(String(40), default="mon-sun")
    empty_digest: Mapped[str] = mapped_column(String(10), default="line")  # line | skip
    # Items fetched up to this instant were covered by the last digest.
    watermark_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint(
            "platform", "workspace", "user_ref", "kind", "value", "dest_ref", name="uq_subs_unique"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    workspace: Mapped[str] = mapped_column(String(100), default="")
    user_ref: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))  # theme | phrase
    value: Mapped[str] = mapped_column(String(200))
    delivery: Mapped[str] = mapped_column(String(10))  # dm | here
    dest_ref: Mapped[str] = mapped_column(String(100))  # user id for dm, channel id for here
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sent_at: Mapped[datetime | None]


class AlertHit(Base):
    """A story matched by a subscription; batched into one alert per window."""

    __tablename__ = "alert_hits"

    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    cluster_id: Mapped[int] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    matched_at: Mapped[datetime] = mapped_column(default=utcnow)
    batched: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class OutboxMessage(Base):
    """Every outgoing message, written before it is sent."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    platform: Mapped[str] = mapped_column(String(20))
    workspace: Mapped[str] = mapped_column(String(100), default="")
    dest_ref: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # digest | alert | reply | notice
    payload: Mapped[dict[str, Any]] = mapped_column()
    # pending -> sending -> sent | failed (permanent)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    platform_message_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]

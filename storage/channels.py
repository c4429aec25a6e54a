"""Channel repository: chat destinations and their digest schedules."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import Channel


def get_channel(session: Session, platform: str, workspace: str, ref: str) -> Channel | None:
    return session.scalar(
        select(Channel).where(
            Channel.platform == platform, Channel.workspace == workspace, Channel.ref == ref
        )
    )


def ensure_channel(
    session: Session, platform: str, workspace: str, ref: str, *, name: str | None = None
) -> Channel:
    """The channel row, created on first use. Safe when two replicas create it at once."""
    channel = get_channel(session, platform, workspace, ref)
    if channel is not None:
        return channel
    try:
        with session.begin_nested():
            channel = Channel(platform=platform, workspace=workspace, ref=ref, name=name)
            session.add(channel)
    except IntegrityError:
        # Someone else inserted it between our SELECT and INSERT: use theirs.
        channel = get_channel(session, platform, workspace, ref)
        if channel is None:
            raise
    return channel


def set_schedule(
    session: Session,
    platform: str,
    workspace: str,
    ref: str,
    *,
    time: str,
    timezone: str | None = None,
    days: str | None = None,
) -> Channel:
    """Enable the channel's digest at ``time``; None for zone or days keeps the current one."""
    channel = ensure_channel(session, platform, workspace, ref)
    channel.digest_enabled = True
    channel.digest_time = time
    channel.digest_tz = timezone or channel.digest_tz or "UTC"
    channel.digest_days = days or channel.digest_days or "mon-sun"
    session.flush()
    return channel


def disable_digest(session: Session, platform: str, workspace: str, ref: str) -> Channel | None:
    channel = get_channel(session, platform, workspace, ref)
    if channel is not None:
        channel.digest_enabled = False
        session.flush()
    return channel


def scheduled_channels(session: Session) -> Sequence[Channel]:
    """Channels with an enabled digest and a time: what the scheduler runs."""
    return session.scalars(
        select(Channel)
        .where(Channel.digest_enabled.is_(True), Channel.digest_time.is_not(None))
        .order_by(Channel.id)
    ).all()

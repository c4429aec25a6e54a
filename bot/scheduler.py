"""Timed work: the fetch loop, alert batching, and one digest job per channel.

APScheduler 3 runs on the bot's event loop and keeps its jobs in the bot's own database
(table ``apscheduler_jobs``), so a digest that fell due while the bot was down still runs
once when it comes back within the grace time. Jobs are module-level functions taking only
ids; they reach the live objects through ``bot.runtime.current()``.

The outbox is not a job: the deliverer runs as its own task in the runtime (it polls every
second and must not be skipped as a "still running" job instance).
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.engine import make_url

from storage.db import Database
from storage.models import Channel
from storage.types import utcnow

log = logging.getLogger(__name__)

DIGEST_PREFIX = "digest:"
FETCH_JOB_ID = "fetch-feeds"
ALERTS_JOB_ID = "flush-alerts"
RESYNC_JOB_ID = "sync-digests"
# Down at 09:00 and back by noon: the digest still goes out (once).
DIGEST_MISFIRE_GRACE = timedelta(hours=3)
_HH_MM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


# -- the jobs (module level, simple arguments: they are stored by reference) ----------------


async def fetch_feeds_job() -> None:
    from bot.runtime import current

    host = current()
    if host is not None and host.is_leader():
        await host.fetch_due()


async def flush_alerts_job() -> None:
    from bot.runtime import current

    host = current()
    if host is not None and host.is_leader():
        await host.flush_alerts(utcnow())


async def resync_digests_job() -> None:
    from bot.runtime import current

    host = current()
    if host is not None and host.is_leader():
        host.resync_digests()


async def digest_job(channel_id: int) -> None:
    from bot.runtime import current

    host = current()
    if host is None:
        log.warning("digest for channel %s fell due with no runtime running", channel_id)
        return
    if host.is_leader():
        await host.queue_digest(channel_id, utcnow())


# -- building and filling the scheduler ----------------------------------------------------


def build_scheduler(db_url: str) -> AsyncIOScheduler:
    """A scheduler whose job store lives in the bot's database. Start it on the running loop."""
    options: dict[str, Any] = {}
    if make_url(db_url).get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": 30}
    store = SQLAlchemyJobStore(url=db_url, engine_options=options)
    return AsyncIOScheduler(jobstores={"default": store}, timezone=ZoneInfo("UTC"))


def install_interval_jobs(
    scheduler: AsyncIOScheduler,
    *,
    fetch_every_s: float = 60.0,
    alerts_every_s: float = 60.0,
    resync_every_s: float = 60.0,
) -> None:
    for job_id, func, seconds in (
        (FETCH_JOB_ID, fetch_feeds_job, fetch_every_s),
        (ALERTS_JOB_ID, flush_alerts_job, alerts_every_s),
        # Schedule changes made on a follower reach the leader's jobs this way.
        (RESYNC_JOB_ID, resync_digests_job, resync_every_s),
    ):
        scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            id=job_id,
            name=job_id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(seconds)),
        )


def digest_job_id(channel_id: int) -> str:
    return f"{DIGEST_PREFIX}{channel_id}"


def digest_trigger(channel: Channel) -> CronTrigger | None:
    """The channel's cron trigger, or None when it has no (valid) digest schedule."""
    if not channel.digest_enabled or not channel.digest_time:
        return None
    match = _HH_MM.match(channel.digest_time.strip())
    try:
        if match is None:
            raise ValueError(f"digest time {channel.digest_time!r} is not HH:MM")
        return CronTrigger(
            hour=int(match.group(1)),
            minute=int(match.group(2)),
            day_of_week=channel.digest_days or "*",
            timezone=ZoneInfo(channel.digest_tz),
        )
    except (ValueError, ZoneInfoNotFoundError) as exc:
        log.warning("channel %s: no digest job, bad schedule: %s", channel.id, exc)
        return None


@dataclass(frozen=True)
class SyncReport:
    added: tuple[int, ...] = ()  # added or replaced (schedule changed)
    kept: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()


def sync_digest_jobs(scheduler: AsyncIOScheduler, db: Database) -> SyncReport:
    """Make the digest jobs match the channels table.

    A job whose schedule did not change is left alone: replacing it would recompute its
    next run from now and lose a digest that fell due while the bot was down.
    """
    with db.session() as session:
        wanted = {
            channel.id: trigger
            for channel in session.scalars(select(Channel))
            if (trigger := digest_trigger(channel)) is not None
        }
    added: list[int] = []
    kept: list[int] = []
    removed: list[int] = []
    for job in scheduler.get_jobs():
        channel_id = _channel_of(job.id)
        if channel_id is not None and channel_id not in wanted:
            job.remove()
            removed.append(channel_id)
    for channel_id, trigger in wanted.items():
        (added if _put_digest_job(scheduler, channel_id, trigger) else kept).append(channel_id)
    return SyncReport(added=tuple(added), kept=tuple(kept), removed=tuple(removed))


def reschedule_channel(scheduler: AsyncIOScheduler, db: Database, channel_id: int) -> None:
    """After ``/brief digest schedule|off``: add, replace or remove that channel's job."""
    with db.session() as session:
        channel = session.get(Channel, channel_id)
        trigger = digest_trigger(channel) if channel is not None else None
    if trigger is None:
        with contextlib.suppress(JobLookupError):
            scheduler.remove_job(digest_job_id(channel_id))
        return
    _put_digest_job(scheduler, channel_id, trigger)


def _put_digest_job(scheduler: AsyncIOScheduler, channel_id: int, trigger: CronTrigger) -> bool:
    """Add or replace the job unless an identical one is stored; True if it was written."""
    job_id = digest_job_id(channel_id)
    existing = scheduler.get_job(job_id)
    grace = int(DIGEST_MISFIRE_GRACE.total_seconds())
    if (
        existing is not None
        and _same_schedule(existing.trigger, trigger)
        and existing.misfire_grace_time == grace
        and existing.coalesce
    ):
        return False
    scheduler.add_job(
        digest_job,
        trigger,
        args=[channel_id],
        id=job_id,
        name=f"digest for channel {channel_id}",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=grace,
    )
    return True


def _same_schedule(old: Any, new: CronTrigger) -> bool:
    # CronTrigger's str() lists its fields but not its zone.
    return (
        isinstance(old, CronTrigger)
        and str(old) == str(new)
        and str(old.timezone) == str(new.timezone)
    )


def _channel_of(job_id: str) -> int | None:
    if not job_id.startswith(DIGEST_PREFIX):
        return None
    tail = job_id[len(DIGEST_PREFIX) :]
    return int(tail) if tail.isdigit() else None

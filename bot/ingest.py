"""The ingest half of the pipeline: fetch -> parse -> normalise -> tag -> summarise -> store.

Every feed is hostile and isolated: one feed's failure is recorded on that feed and never
delays or breaks the others. Validators (ETag / Last-Modified) are saved only after the
entries of that response are stored.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import cluster, metrics
from bot.claim_sync import store_claims
from bot.fetch_policy import FetchPolicy
from bot.fetcher import Fetcher, FetchResult
from bot.pack import Pack
from bot.prepare import PreparedFeed, parse_and_prepare
from bot.ssrf import Allowlist
from storage.db import Database
from storage.feeds import FetchOutcome, claim_due_feeds, record_outcome
from storage.items import StoreReport, store_items
from storage.models import Feed, Item
from storage.story_index import StoryIndex
from storage.types import utcnow
from storage.writer import GroupWriter

log = logging.getLogger(__name__)

# Called inside the storing transaction with what was stored (claims linking, alerts...).
StoredHook = Callable[[Session, StoreReport], None]

# Fetched feeds being prepared or waiting to be stored at once: enough to keep the parse
# workers and the group writer busy, few enough that a slow store bounds memory. A feed
# holds its place from the start of its fetch, so bodies never pile up unprocessed.
IN_FLIGHT = 24
# How many of a feed's newest stored guids the worker is told about, so it skips them.
KNOWN_GUIDS_LIMIT = 2000


@dataclass
class FeedReport:
    feed_id: int
    url: str
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0  # duplicates recognised by guid before preparing (part of duplicates)
    not_modified: bool = False
    error: str | None = None
    paused: bool = False
    parse_problem: str | None = None


@dataclass
class RunReport:
    feeds: list[FeedReport] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(f.stored for f in self.feeds)

    @property
    def failed(self) -> list[FeedReport]:
        return [f for f in self.feeds if f.error]


@dataclass(frozen=True)
class FeedJob:
    """A snapshot of the feed row taken when it was leased (no ORM object crosses tasks)."""

    id: int
    url: str
    title: str | None
    etag: str | None
    last_modified: str | None
    consecutive_errors: int
    backlog_done: bool


class Ingestor:
    def __init__(
        self,
        db: Database,
        pack: Pack,
        *,
        policy: FetchPolicy | None = None,
        allowlist: Allowlist | None = None,
        executor: Executor | None = None,
        hooks: Sequence[StoredHook] = (),
        owner: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.pack = pack
        self.policy = policy or FetchPolicy()
        self.allowlist = allowlist or Allowlist.empty()
        self.executor = executor
        self.hooks = list(hooks)
        self.owner = owner or f"{socket.gethostname()}:{id(self)}"
        self.rng = rng or random.Random()
        # One writer (SQLite takes one at a time) committing ready feeds together, and
        # the recent stories' keys in memory for it.
        self._writer = GroupWriter(db)
        self._stories = StoryIndex()

    # -- fetch loop ---------------------------------------------------------------------

    async def fetch_due(
        self,
        *,
        force: bool = False,
        on_feed_done: Callable[[FeedReport], None] | None = None,
    ) -> RunReport:
        now = utcnow()
        with self.db.session() as session:
            jobs = [_job(f) for f in claim_due_feeds(session, now, owner=self.owner, force=force)]
        report = RunReport()
        if not jobs:
            return report
        async with Fetcher(self.policy, self.allowlist) as fetcher:
            in_flight = asyncio.Semaphore(self.policy.concurrency + IN_FLIGHT)

            async def one(job: FeedJob) -> None:
                feed_report = await self._fetch_one(fetcher, job, in_flight)
                report.feeds.append(feed_report)
                if on_feed_done is not None:
                    on_feed_done(feed_report)

            # Each job ends in one write: announced, the writer batches them.
            with self._writer.expecting(len(jobs)):
                await asyncio.gather(*(one(job) for job in jobs))
        return report

    async def _fetch_one(
        self, fetcher: Fetcher, job: FeedJob, in_flight: asyncio.Semaphore
    ) -> FeedReport:
        report = FeedReport(feed_id=job.id, url=job.url)
        try:
            async with in_flight:
                result = await fetcher.fetch(
                    job.url, etag=job.etag, last_modified=job.last_modified
                )
                await self._apply(job, result, report)
        except Exception as exc:  # one feed never breaks the others
            log.exception("feed %s failed unexpectedly", job.url)
            await self._record_failure(job, f"internal error: {type(exc).__name__}", None, report)
        (metrics.FEEDS_FAILED if report.error else metrics.FEEDS_FETCHED).inc()
        return report

    async def _apply(self, job: FeedJob, result: FetchResult, report: FeedReport) -> None:
        now = utcnow()
        if result.error is not None:
            await self._record_failure(job, result.error.message, result.hints.retry_after, report)
            return
        if result.not_modified or result.body is None:
            report.not_modified = True
            outcome = FetchOutcome(
                fetched_at=now,
                next_fetch_at=self.policy.after_success(now, result.hints, None, rng=self.rng),
                ok=True,
                not_modified=True,
                new_url=result.permanent_redirect,
            )
            await self._writer.write(partial(_record, job.id, outcome))
            return
        parsed = await self._parse_and_prepare(
            result.body, result.final_url, result.content_type, now, job
        )
        report.parse_problem = parsed.problem
        outcome = FetchOutcome(
            fetched_at=now,
            next_fetch_at=self.policy.after_success(
                now, result.hints, parsed.ttl_minutes, rng=self.rng
            ),
            ok=True,
            etag=result.etag,
            last_modified=result.last_modified,
            title=parsed.title or None,
            site_url=parsed.link,
            ttl_minutes=parsed.ttl_minutes,
            new_url=result.permanent_redirect,
        )
        stored = await self._write_entries(job, parsed, outcome)
        _count(report, parsed, stored)

    async def _record_failure(
        self, job: FeedJob, error: str, retry_after: timedelta | None, report: FeedReport
    ) -> None:
        now = utcnow()
        errors = job.consecutive_errors + 1
        pause = self.policy.should_pause(errors)
        outcome = FetchOutcome(
            fetched_at=now,
            next_fetch_at=self.policy.after_failure(
                now,
                errors,
                retry_after=retry_after,
                rng=self.rng,
            ),
            ok=False,
            error=error,
            pause=pause,
        )
        report.error, report.paused = error, pause
        await self._writer.write(partial(_record, job.id, outcome))

    async def _parse_and_prepare(
        self, body: bytes, url: str, content_type: str | None, now: datetime, job: FeedJob
    ) -> PreparedFeed:
        """Parse, tag, summarise, sign and link claims in the worker pool."""
        # A feed's first stored response sets backlog_done in the same transaction as its
        # entries, so before that the feed has stored nothing and there is nothing to ask.
        known = await asyncio.to_thread(self._known_guids, job.id) if job.backlog_done else None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor,
            parse_and_prepare,
            body,
            url,
            content_type,
            now,
            str(self.pack.path),
            job.title,
            job.backlog_done,
            known or frozenset(),
        )

    def _known_guids(self, feed_id: int) -> frozenset[str]:
        """The feed's newest stored guids: entries carrying one need no preparing."""
        with self.db.reading() as session:
            guids = session.scalars(
                select(Item.guid)
                .where(Item.feed_id == feed_id, Item.guid.is_not(None))
                .order_by(Item.id.desc())
                .limit(KNOWN_GUIDS_LIMIT)
            )
            return frozenset(g for g in guids if g)

    async def _write_entries(
        self, job: FeedJob, parsed: PreparedFeed, outcome: FetchOutcome
    ) -> StoreReport:
        try:
            return await self._writer.write(partial(self._store, job, parsed, outcome))
        except BaseException:
            self._stories.invalidate()  # it may hold stories that were rolled back
            raise

    def _store(
        self, job: FeedJob, parsed: PreparedFeed, outcome: FetchOutcome, session: Session
    ) -> StoreReport:
        """Entries, their claims and the feed's new validators, all or nothing."""
        entries = parsed.entries
        report = store_items(session, job.id, [p.item for p in entries], _same_story, self._stories)
        store_claims(session, [(s.item_id, entries[s.index]) for s in report.stored])
        for hook in self.hooks:
            hook(session, report)
        record_outcome(session, job.id, outcome)
        return report

    # -- operator ingest of local files -------------------------------------------------

    async def ingest_document(self, url: str, body: bytes) -> FeedReport:
        """Store a feed document read by the operator (a local file) as if fetched.

        Never reachable from chat: only the CLI reads local paths.
        """
        with self.db.session() as session:
            feed = session.scalar(select(Feed).where(Feed.url == url))
            if feed is None:
                feed = Feed(url=url, enabled=False, backlog_done=True)
                session.add(feed)
                session.flush()
            job = _job(feed)
        report = FeedReport(feed_id=job.id, url=url)
        now = utcnow()
        parsed = await self._parse_and_prepare(body, url, None, now, job)
        report.parse_problem = parsed.problem
        outcome = FetchOutcome(
            fetched_at=now, next_fetch_at=now, ok=True, title=parsed.title or None
        )
        stored = await self._write_entries(job, parsed, outcome)
        _count(report, parsed, stored)
        return report


def _record(feed_id: int, outcome: FetchOutcome, session: Session) -> None:
    record_outcome(session, feed_id, outcome)


def _job(feed: Feed) -> FeedJob:
    return FeedJob(
        id=feed.id,
        url=feed.url,
        title=feed.title,
        etag=feed.etag,
        last_modified=feed.last_modified,
        consecutive_errors=feed.consecutive_errors,
        backlog_done=feed.backlog_done,
    )


def _count(report: FeedReport, parsed: PreparedFeed, stored: StoreReport) -> None:
    """The feed's figures once its entries are committed (also into the metrics)."""
    metrics.ITEMS_INGESTED.inc(len(stored.stored))
    for prepared in parsed.entries:
        metrics.TAG_SECONDS.observe(prepared.tag_seconds)
    report.stored = len(stored.stored)
    report.skipped = parsed.skipped
    report.duplicates = stored.duplicates + parsed.skipped


class _SameStory:
    """storage.items.ManyAtOnce: an entry's signature is read once for all its candidates."""

    def __call__(self, stored: str, new: str, /) -> bool:
        return cluster.is_same_story(cluster.decoded(stored), cluster.decoded(new))

    def first_copy(self, stories: Sequence[Sequence[str]], new: str, /) -> int | None:
        return cluster.first_stored_copy(stories, new)


_same_story = _SameStory()

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
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import cluster, metrics, normalise
from bot.fetch_policy import FetchPolicy
from bot.fetcher import Fetcher, FetchResult
from bot.parse import ParsedEntry, ParsedFeed, parse_feed
from bot.ssrf import Allowlist
from bot.summarise import extractive_summary
from bot.tagger import Tagger
from storage.db import Database
from storage.feeds import FetchOutcome, claim_due_feeds, record_outcome
from storage.items import NewItem, StoreReport, ThemeTag, store_items
from storage.models import Feed
from storage.types import utcnow

log = logging.getLogger(__name__)

# Called inside the storing transaction with what was stored (claims linking, alerts...).
StoredHook = Callable[[Session, StoreReport], None]


@dataclass
class FeedReport:
    feed_id: int
    url: str
    stored: int = 0
    duplicates: int = 0
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
        tagger: Tagger,
        *,
        policy: FetchPolicy | None = None,
        allowlist: Allowlist | None = None,
        executor: Executor | None = None,
        hooks: Sequence[StoredHook] = (),
        owner: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.tagger = tagger
        self.policy = policy or FetchPolicy()
        self.allowlist = allowlist or Allowlist.empty()
        self.executor = executor
        self.hooks = list(hooks)
        self.owner = owner or f"{socket.gethostname()}:{id(self)}"
        self.rng = rng or random.Random()
        # SQLite allows one writer; serialising our own writes avoids busy waits.
        self._write_lock = asyncio.Lock()

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

            async def one(job: FeedJob) -> None:
                feed_report = await self._fetch_one(fetcher, job)
                report.feeds.append(feed_report)
                if on_feed_done is not None:
                    on_feed_done(feed_report)

            await asyncio.gather(*(one(job) for job in jobs))
        return report

    async def _fetch_one(self, fetcher: Fetcher, job: FeedJob) -> FeedReport:
        report = FeedReport(feed_id=job.id, url=job.url)
        try:
            result = await fetcher.fetch(job.url, etag=job.etag, last_modified=job.last_modified)
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
            async with self._write_lock:
                await asyncio.to_thread(self._record, job.id, outcome)
            return
        parsed = await parse_feed(
            result.body,
            url=result.final_url,
            content_type=result.content_type,
            fetched_at=now,
            executor=self.executor,
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
        async with self._write_lock:
            stored = await asyncio.to_thread(self._store, job, parsed, outcome)
        report.stored, report.duplicates = len(stored.stored), stored.duplicates

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
        async with self._write_lock:
            await asyncio.to_thread(self._record, job.id, outcome)

    def _record(self, feed_id: int, outcome: FetchOutcome) -> None:
        with self.db.session() as session:
            record_outcome(session, feed_id, outcome)

    def _store(self, job: FeedJob, parsed: ParsedFeed, outcome: FetchOutcome) -> StoreReport:
        """Entries and the feed's new validators in one transaction."""
        source = parsed.title or job.title or _host(job.url)
        items = [
            self.prepare(entry, source=source, alertable=job.backlog_done)
            for entry in parsed.entries
        ]
        with self.db.session() as session:
            report = store_items(session, job.id, items, _same_story)
            for hook in self.hooks:
                hook(session, report)
            record_outcome(session, job.id, outcome)
        metrics.ITEMS_INGESTED.inc(len(report.stored))
        return report

    # -- one entry ----------------------------------------------------------------------

    def prepare(self, entry: ParsedEntry, *, source: str, alertable: bool) -> NewItem:
        text = entry.content_text if len(entry.content_text) > len(entry.summary_text) else ""
        text = text or entry.summary_text
        tags = metrics.timed(metrics.TAG_SECONDS, lambda: self.tagger.tag(entry.title, text))
        sig = cluster.signature(entry.title, text, published=entry.published)
        return NewItem(
            guid=entry.guid,
            url=entry.link,
            canonical_url=normalise.canonical_url(entry.link) if entry.link else None,
            source=source,
            title=entry.title,
            title_key=normalise.normalise_title(entry.title),
            author=entry.author,
            published_at=entry.published,
            published_was_missing=entry.published_was_missing,
            fetched_at=utcnow(),
            text=text,
            summary=extractive_summary(entry.title, text),
            content_hash=normalise.content_hash(entry.title, text),
            signature=sig.dumps(),
            band_keys=cluster.band_keys(sig),
            relevance=tags.relevance,
            relevant=tags.relevant,
            reasons=tags.reasons,
            themes=[ThemeTag(t.id, t.score, t.evidence) for t in tags.themes],
            alertable=alertable,
        )

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
        parsed = await parse_feed(
            body, url=url, content_type=None, fetched_at=now, executor=self.executor
        )
        report.parse_problem = parsed.problem
        outcome = FetchOutcome(
            fetched_at=now, next_fetch_at=now, ok=True, title=parsed.title or None
        )
        async with self._write_lock:
            stored = await asyncio.to_thread(self._store, job, parsed, outcome)
        report.stored, report.duplicates = len(stored.stored), stored.duplicates
        return report


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


def _same_story(a: str, b: str) -> bool:
    return cluster.is_same_story(cluster.Signature.loads(a), cluster.Signature.loads(b))


def _host(url: str) -> str:
    return urlsplit(url).hostname or url

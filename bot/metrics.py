"""Prometheus metrics and the health report of the HTTP side.

Counters live in one dedicated registry (never the client library's global one), are
incremented at their call sites, and are per process: each replica reports its own. Figures
that belong to the database (outbox depth, last successful fetch) are read at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from storage.db import Database
from storage.models import Feed, OutboxMessage
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.claims.lookup import LookupResult
    from bot.outbox import DrainReport

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = CollectorRegistry(auto_describe=True)

FEEDS_FETCHED = Counter(
    "briefbot_feeds_fetched",
    "Feed fetches that succeeded (new entries or not modified)",
    registry=REGISTRY,
)
FEEDS_FAILED = Counter("briefbot_feeds_failed", "Feed fetches that failed", registry=REGISTRY)
ITEMS_INGESTED = Counter(
    "briefbot_items_ingested", "New entries stored by ingest", registry=REGISTRY
)
TAG_SECONDS = Histogram(
    "briefbot_tag_seconds",
    "Time to score relevance and tag themes of one entry",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    registry=REGISTRY,
)
LOOKUPS = Counter("briefbot_lookups", "Claim lookups answered", ["result"], registry=REGISTRY)
LOOKUP_SECONDS = Histogram(
    "briefbot_lookup_seconds",
    "Time to answer one claim lookup",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "briefbot_deliveries",
    "Outbox deliveries by outcome (sent, recovered, retried, failed)",
    ["outcome"],
    registry=REGISTRY,
)
LEADER = Gauge("briefbot_leader", "1 while this replica runs the scheduler", registry=REGISTRY)

for _outcome in ("sent", "recovered", "retried", "failed"):
    DELIVERIES.labels(outcome=_outcome)  # exported at 0 before the first delivery
for _result in ("found", "none"):
    LOOKUPS.labels(result=_result)


# -- call-site hooks -------------------------------------------------------------------


def record_drain(report: DrainReport) -> None:
    for outcome in ("sent", "recovered", "retried", "failed"):
        count = getattr(report, outcome)
        if count:
            DELIVERIES.labels(outcome=outcome).inc(count)


class Lookup(Protocol):
    def lookup(self, query: str, limit: int = ...) -> LookupResult: ...


class TimedLookups:
    """Wraps the lookup engine: counts lookups and times each one."""

    def __init__(self, engine: Lookup) -> None:
        self.engine = engine

    def lookup(self, query: str, limit: int = 5) -> LookupResult:
        start = time.perf_counter()
        result = self.engine.lookup(query, limit)
        LOOKUP_SECONDS.observe(time.perf_counter() - start)
        LOOKUPS.labels(result="found" if result.matches else "none").inc()
        return result


T = TypeVar("T")


def timed(histogram: Histogram, func: Callable[[], T]) -> T:
    start = time.perf_counter()
    try:
        return func()
    finally:
        histogram.observe(time.perf_counter() - start)


# -- scrape ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DbFigures:
    outbox: Mapping[str, int]
    last_fetch_success: datetime | None
    enabled_feeds: int


def read_db_figures(db: Database) -> DbFigures:
    with db.session() as session:
        counts = dict(
            session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            ).all()
        )
        last = session.scalar(select(func.max(Feed.last_success_at)))
        enabled = session.scalar(select(func.count()).where(Feed.enabled.is_(True))) or 0
    return DbFigures(
        outbox={str(k): int(v) for k, v in counts.items()},
        last_fetch_success=last,
        enabled_feeds=int(enabled),
    )


def age_seconds(when: datetime | None, now: datetime | None = None) -> float | None:
    if when is None:
        return None
    return max(0.0, ((now or utcnow()) - when).total_seconds())


class _Scrape:
    """This process's counters plus the database figures read now."""

    def __init__(self, figures: DbFigures | None) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()
        if self.figures is None:
            return
        depth = GaugeMetricFamily(
            "briefbot_outbox_depth",
            "Outbox messages not yet delivered, by status",
            labels=["status"],
        )
        for status in ("pending", "sending"):
            depth.add_metric([status], self.figures.outbox.get(status, 0))
        yield depth
        age = age_seconds(self.figures.last_fetch_success)
        yield GaugeMetricFamily(
            "briefbot_last_fetch_success_age_seconds",
            "Seconds since any feed was last fetched successfully (-1: never)",
            value=-1.0 if age is None else age,
        )


def render_metrics(db: Database | None) -> bytes:
    """The Prometheus text exposition; database figures are left out if it is unreachable."""
    try:
        figures = read_db_figures(db) if db is not None else None
    except Exception:  # a scrape must still answer when the database is down
        figures = None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(figures))
    data: bytes = generate_latest(registry)
    return data


# -- health ----------------------------------------------------------------------------


class RoleProbe(Protocol):
    """What the health check asks of the runtime."""

    def is_leader(self) -> bool: ...

    def scheduler_running(self) -> bool: ...

    def leadership_alive(self) -> bool: ...


def health_report(db: Database, role: RoleProbe | None) -> tuple[int, dict[str, object]]:
    """(HTTP status, JSON body). 503 when the database does not answer, when the leader
    has no running scheduler, or when a follower stopped campaigning."""
    problems: list[str] = []
    body: dict[str, object] = {}
    try:
        figures = read_db_figures(db)
    except Exception as exc:
        problems.append(f"database unreachable: {type(exc).__name__}")
        body["database"] = "unreachable"
    else:
        body["database"] = "ok"
        body["last_fetch_success_age_s"] = age_seconds(figures.last_fetch_success)
        body["enabled_feeds"] = figures.enabled_feeds
        body["outbox_pending"] = figures.outbox.get("pending", 0)
    if role is None:
        body["role"] = "starting"
        problems.append("runtime not running")
    elif role.is_leader():
        body["role"] = "leader"
        body["scheduler"] = "running" if role.scheduler_running() else "stopped"
        if not role.scheduler_running():
            problems.append("leader without a running scheduler")
    else:
        body["role"] = "follower"
        body["scheduler"] = "not here"
        if not role.leadership_alive():
            problems.append("follower no longer campaigning for leadership")
    body["ok"] = not problems
    body["problems"] = problems
    return (200 if not problems else 503), body

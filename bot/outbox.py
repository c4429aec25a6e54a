"""The outbox: every outgoing message is written here first, then delivered.

A row moves ``pending -> sending -> sent | failed``. The deliverer commits ``sending`` (with a
lease) before it calls the platform, so a crash mid-send leaves a row that says "maybe
posted". Such a row is *uncertain*: before posting it again the deliverer asks the platform
(``Sender.find_sent``) whether a message under that idempotency key already exists.

Uncertain rows are ``sending`` rows whose lease has run out. The deliverer also leaves a row
uncertain on purpose when a send ended without a clear answer (a timeout, a dropped
connection, any exception that is not a ``TransientSendError`` / ``PermanentSendError``):
the platform may have stored the message, so the retry checks first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot import metrics
from bot.delivery import Destination, PermanentSendError, Sender, TransientSendError
from bot.messages import Message, dump_message, load_message
from storage.db import Database
from storage.models import OutboxMessage
from storage.types import utcnow

log = logging.getLogger(__name__)

# Marks a direct message in the stored payload (the outbox table has no column for it).
DIRECT_FLAG = "_direct"
# A platform with no sender in this process is retried at this pace, without using attempts.
NO_SENDER_RETRY = timedelta(seconds=30)


def enqueue(
    session: Session,
    *,
    key: str,
    dest: Destination,
    kind: str,
    message: Message,
    now: datetime | None = None,
) -> bool:
    """Queue ``message`` in the caller's transaction; False if ``key`` was queued before.

    Race-safe across replicas: the unique key decides, via INSERT ... ON CONFLICT DO NOTHING.
    """
    now = now or utcnow()
    payload = dump_message(message)
    if dest.direct:
        payload[DIRECT_FLAG] = True
    values: dict[str, Any] = {
        "idempotency_key": key,
        "platform": dest.platform,
        "workspace": dest.workspace,
        "dest_ref": dest.ref,
        "kind": kind,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(OutboxMessage).values(**values)
    stmt = stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])
    inserted = session.execute(stmt.returning(OutboxMessage.id)).scalar_one_or_none()
    return inserted is not None


@dataclass(frozen=True)
class Claimed:
    """A snapshot of a leased row; no ORM object crosses an await."""

    id: int
    key: str
    dest: Destination
    kind: str
    payload: dict[str, Any]
    attempts: int
    uncertain: bool


@dataclass
class DrainReport:
    claimed: int = 0
    sent: int = 0
    recovered: int = 0  # uncertain rows the platform already had: marked sent, not re-posted
    retried: int = 0
    failed: int = 0


class Deliverer:
    """Drains due outbox rows to the senders, one platform call per row at most per claim."""

    def __init__(
        self,
        db: Database,
        senders: Mapping[str, Sender],
        *,
        owner: str,
        lease: timedelta = timedelta(minutes=2),
        base_backoff: timedelta = timedelta(seconds=5),
        max_backoff: timedelta = timedelta(hours=1),
        max_attempts: int = 10,
        pace_per_destination: float = 1.0,
        batch: int = 50,
    ) -> None:
        self.db = db
        self.senders = senders
        self.owner = owner
        self.lease = lease
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        self.pace = pace_per_destination
        self.batch = batch
        # Half the lease: a send that takes longer is abandoned (as uncertain) before
        # another replica may claim the row.
        self.send_timeout = lease.total_seconds() / 2
        self._last_send: dict[Destination, float] = {}
        self._warned_platforms: set[str] = set()
        self._lease_ends = 0.0  # monotonic time when the current claim's leases run out

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        while not stop.is_set():
            try:
                report = await self.drain_once()
            except Exception:
                log.exception("outbox drain failed; trying again in %.0f s", interval)
                report = DrainReport()
            if report.claimed >= self.batch:
                continue  # more may be due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def drain_once(self, now: datetime | None = None) -> DrainReport:
        now = now or utcnow()
        claimed_at = time.monotonic()
        rows = self._claim(now)
        report = DrainReport(claimed=len(rows))
        self._lease_ends = claimed_at + self.lease.total_seconds()
        by_dest: dict[Destination, list[Claimed]] = defaultdict(list)
        for row in rows:
            by_dest[row.dest].append(row)
        await asyncio.gather(
            *(self._deliver_chain(chain, now, report) for chain in by_dest.values())
        )
        metrics.record_drain(report)
        return report

    # -- claiming ----------------------------------------------------------------------

    def _claim(self, now: datetime) -> list[Claimed]:
        M = OutboxMessage
        due_pending = and_(
            M.status == "pending",
            M.next_attempt_at <= now,
            or_(M.lease_until.is_(None), M.lease_until < now),
        )
        uncertain = and_(M.status == "sending", M.lease_until < now)
        query = (
            select(M)
            .where(or_(due_pending, uncertain))
            .order_by(M.next_attempt_at, M.id)
            .limit(self.batch)
        )
        with self.db.session() as session:
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            claimed = []
            for row in session.scalars(query):
                claimed.append(_snapshot(row))
                row.status = "sending"
                row.attempts += 1
                row.lease_owner = self.owner
                row.lease_until = now + self.lease
        return claimed

    # -- delivering --------------------------------------------------------------------

    async def _deliver_chain(
        self, chain: Sequence[Claimed], now: datetime, report: DrainReport
    ) -> None:
        for row in chain:
            try:
                await self._deliver(row, now, report)
            except Exception:  # a bug or a database hiccup must not stop the other rows
                log.exception("outbox row %s: delivery step failed", row.id)

    async def _deliver(self, row: Claimed, now: datetime, report: DrainReport) -> None:
        sender = self.senders.get(row.dest.platform)
        if sender is None:
            self._no_sender(row, now)
            report.retried += 1
            return
        try:
            message = load_message({k: v for k, v in row.payload.items() if k != DIRECT_FLAG})
        except ValidationError as exc:
            self._fail(row, now, f"unreadable payload: {exc.error_count()} validation errors")
            report.failed += 1
            return
        if row.uncertain:
            try:
                found = await asyncio.wait_for(
                    sender.find_sent(row.dest, row.key), timeout=self.send_timeout
                )
            except Exception as exc:
                self._retry(
                    row,
                    now,
                    f"could not check for an earlier send: {_describe(exc)}",
                    uncertain=True,
                )
                report.retried += 1
                return
            if found is not None:
                self._mark_sent(row, found, now)
                report.recovered += 1
                return
        await self._wait_for_pace(row.dest)
        if self._lease_ends - time.monotonic() < self.send_timeout:
            # A long chain for one destination: the lease could run out during this send
            # and another replica take the row. Hand it back untouched instead.
            self._give_back(row, now)
            report.retried += 1
            return
        try:
            sent = await asyncio.wait_for(
                sender.send(row.dest, message, row.key), timeout=self.send_timeout
            )
        except PermanentSendError as exc:
            self._fail(row, now, exc.reason)
            report.failed += 1
        except TransientSendError as exc:
            self._retry(row, now, exc.reason, retry_after=exc.retry_after)
            report.retried += 1
        except Exception as exc:
            # No clear answer: the platform may have the message. Check before resending.
            self._retry(row, now, _describe(exc), uncertain=True)
            report.retried += 1
        else:
            self._mark_sent(row, sent.message_id, utcnow())
            report.sent += 1

    async def _wait_for_pace(self, dest: Destination) -> None:
        last = self._last_send.get(dest)
        if last is not None:
            wait = last + self.pace - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        self._last_send[dest] = time.monotonic()

    def _no_sender(self, row: Claimed, now: datetime) -> None:
        platform = row.dest.platform
        if platform not in self._warned_platforms:
            self._warned_platforms.add(platform)
            log.warning("no sender for platform %r; its messages wait until one starts", platform)
        self._give_back(row, now + NO_SENDER_RETRY, f"no sender for platform {platform!r}")

    def _give_back(self, row: Claimed, at: datetime, reason: str | None = None) -> None:
        """Undo the claim: the attempt is not counted and an uncertain row stays uncertain."""
        values: dict[str, Any] = {"attempts": OutboxMessage.attempts - 1, "lease_owner": None}
        if row.uncertain:
            values.update(status="sending", lease_until=at)
        else:
            values.update(status="pending", lease_until=None, next_attempt_at=at)
        if reason is not None:
            values["last_error"] = reason
        with self.db.session() as session:
            session.execute(self._ours(row).values(**values))

    # -- recording ---------------------------------------------------------------------

    def _ours(self, row: Claimed) -> Any:
        M = OutboxMessage
        return update(M).where(M.id == row.id, M.lease_owner == self.owner, M.status == "sending")

    def _mark_sent(self, row: Claimed, message_id: str, when: datetime) -> None:
        # Recorded even if our lease ran out meanwhile: the platform has the message.
        M = OutboxMessage
        with self.db.session() as session:
            session.execute(
                update(M)
                .where(M.id == row.id, M.status != "sent")
                .values(
                    status="sent",
                    platform_message_id=message_id,
                    sent_at=when,
                    last_error=None,
                    lease_owner=None,
                    lease_until=None,
                )
            )

    def _fail(self, row: Claimed, now: datetime, reason: str) -> None:
        log.warning("outbox row %s to %s failed for good: %s", row.id, row.dest.ref, reason)
        with self.db.session() as session:
            # next_attempt_at keeps the moment of failure (shown by `briefbot status`).
            session.execute(
                self._ours(row).values(
                    status="failed",
                    last_error=reason,
                    next_attempt_at=now,
                    lease_owner=None,
                    lease_until=None,
                )
            )

    def _retry(
        self,
        row: Claimed,
        now: datetime,
        reason: str,
        *,
        retry_after: float | None = None,
        uncertain: bool = False,
    ) -> None:
        if row.attempts >= self.max_attempts:
            self._fail(row, now, f"gave up after {row.attempts} attempts: {reason}")
            return
        at = now + self.backoff(row.attempts, retry_after)
        values: dict[str, Any] = {"last_error": reason}
        if uncertain:
            # Stays "sending" with a lease that runs out at the retry time: the next claim
            # treats it as uncertain and asks the platform first.
            values.update(status="sending", lease_owner=None, lease_until=at, next_attempt_at=at)
        else:
            values.update(status="pending", lease_owner=None, lease_until=None, next_attempt_at=at)
        with self.db.session() as session:
            session.execute(self._ours(row).values(**values))

    def backoff(self, attempts: int, retry_after: float | None = None) -> timedelta:
        """Delay before attempt ``attempts + 1``: doubling from the base, capped; never
        shorter than the platform's Retry-After."""
        exponent = min(max(attempts - 1, 0), 30)
        delay: timedelta = min(self.base_backoff * (2**exponent), self.max_backoff)
        if retry_after is not None and retry_after > 0:
            delay = max(delay, timedelta(seconds=retry_after))
        return delay


def _snapshot(row: OutboxMessage) -> Claimed:
    payload = dict(row.payload)
    dest = Destination(
        platform=row.platform,
        workspace=row.workspace,
        ref=row.dest_ref,
        direct=bool(payload.get(DIRECT_FLAG, False)),
    )
    return Claimed(
        id=row.id,
        key=row.idempotency_key,
        dest=dest,
        kind=row.kind,
        payload=payload,
        attempts=row.attempts + 1,
        uncertain=row.status == "sending",
    )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- status ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedMessage:
    dest: Destination
    kind: str
    error: str
    when: datetime
    key: str


@dataclass
class OutboxStatus:
    counts: dict[str, int] = field(default_factory=dict)
    oldest_pending_age: timedelta | None = None
    failures: list[FailedMessage] = field(default_factory=list)


def outbox_status(
    session: Session, *, now: datetime | None = None, failures_limit: int = 20
) -> OutboxStatus:
    """Counts per status, how long the oldest undelivered message has waited, and the most
    recent permanent failures."""
    now = now or utcnow()
    M = OutboxMessage
    counts = {
        status: int(n)
        for status, n in session.execute(select(M.status, func.count()).group_by(M.status))
    }
    oldest = session.scalar(
        select(func.min(M.created_at)).where(M.status.in_(("pending", "sending")))
    )
    failed_rows = session.scalars(
        select(M)
        .where(M.status == "failed")
        .order_by(M.next_attempt_at.desc())
        .limit(failures_limit)
    )
    failures = [
        FailedMessage(
            dest=_snapshot(row).dest,
            kind=row.kind,
            error=row.last_error or "",
            when=row.next_attempt_at,
            key=row.idempotency_key,
        )
        for row in failed_rows
    ]
    return OutboxStatus(
        counts=counts,
        oldest_pending_age=(now - oldest) if oldest is not None else None,
        failures=failures,
    )

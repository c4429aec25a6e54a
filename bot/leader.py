"""Leader election: of several replicas on one database, exactly one runs the scheduler.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own,
open for as long as it leads. When the process dies, even by SIGKILL, its socket closes, the
server ends the session and drops the lock; a follower's next try takes it over. TCP
keepalives bound how long a vanished host (no FIN, no RST) can keep the lock.

On SQLite there is one process: it always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

# "briefbot" read as a big-endian 64-bit number: one lock per database, shared by replicas.
LOCK_KEY = int.from_bytes(b"briefbot", "big") & 0x7FFF_FFFF_FFFF_FFFF
RETRY_S = 5.0
# Keepalives: a silent peer is declared dead after about idle + interval * count seconds.
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 10, 5, 3

OnChange = Callable[[bool], Awaitable[None]]


class Leadership(Protocol):
    @property
    def is_leader(self) -> bool: ...

    @property
    def alive(self) -> bool:
        """True while ``run`` is running (a follower keeps trying)."""
        ...

    async def run(self, stop: asyncio.Event, on_change: OnChange) -> None:
        """Campaign until ``stop``; ``on_change(True)`` when elected, ``on_change(False)``
        when leadership ends (also at stop, before the lock is let go)."""
        ...


class AlwaysLeader:
    """One process on SQLite: it leads from the start."""

    def __init__(self) -> None:
        self._running = False

    @property
    def is_leader(self) -> bool:
        return True

    @property
    def alive(self) -> bool:
        return self._running

    async def run(self, stop: asyncio.Event, on_change: OnChange) -> None:
        self._running = True
        try:
            while not await _start_leading(on_change):
                await _wait(stop, RETRY_S)
                if stop.is_set():
                    return
            await stop.wait()
            await on_change(False)
        finally:
            self._running = False


class AdvisoryLockLeader:
    """Leader while holding ``pg_try_advisory_lock(key)`` on a dedicated connection."""

    def __init__(
        self,
        conninfo: str,
        *,
        key: int = LOCK_KEY,
        retry_s: float = RETRY_S,
        check_s: float | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.conninfo = conninfo
        self.key = key
        self.retry_s = retry_s
        self.check_s = check_s if check_s is not None else retry_s
        self.connect_timeout = connect_timeout
        self._leading = False
        self._running = False
        self._last_problem: str | None = None

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def alive(self) -> bool:
        return self._running

    async def run(self, stop: asyncio.Event, on_change: OnChange) -> None:
        self._running = True
        try:
            while not stop.is_set():
                conn = await self._try_acquire()
                if conn is not None:
                    await self._lead(conn, stop, on_change)
                if not stop.is_set():
                    await _wait(stop, self.retry_s)
        finally:
            self._running = False

    async def _lead(
        self, conn: psycopg.AsyncConnection[object], stop: asyncio.Event, on_change: OnChange
    ) -> None:
        self._leading = True
        log.info("elected leader: this replica runs the scheduler")
        try:
            if await _start_leading(on_change):
                problem = await self._hold(conn, stop)
                if problem is not None:
                    log.warning("lost leadership: %s", problem)
        finally:
            self._leading = False
            # Stop the scheduler first, then let the lock go: never two schedulers at once.
            try:
                await on_change(False)
            finally:
                await _close(conn)

    async def _try_acquire(self) -> psycopg.AsyncConnection[object] | None:
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.conninfo,
                autocommit=True,
                connect_timeout=max(1, int(self.connect_timeout)),
                application_name="briefbot-leader",
                keepalives=1,
                keepalives_idle=KEEPALIVE_IDLE_S,
                keepalives_interval=KEEPALIVE_INTERVAL_S,
                keepalives_count=KEEPALIVE_COUNT,
            )
        except (psycopg.Error, OSError) as exc:
            self._note_problem(f"cannot connect for leader election: {type(exc).__name__}")
            return None
        try:
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
            row = await cursor.fetchone()
        except psycopg.Error as exc:
            self._note_problem(f"leader lock query failed: {type(exc).__name__}")
            await _close(conn)
            return None
        self._last_problem = None
        if row is not None and row[0] is True:
            return conn
        await _close(conn)
        return None

    async def _hold(self, conn: psycopg.AsyncConnection[object], stop: asyncio.Event) -> str | None:
        """Wait for stop while checking the session is alive; the reason if it is not."""
        while not stop.is_set():
            await _wait(stop, self.check_s)
            if stop.is_set():
                return None
            try:
                await asyncio.wait_for(conn.execute("SELECT 1"), timeout=self.connect_timeout)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                return f"leader connection failed: {type(exc).__name__}"
        return None

    def _note_problem(self, problem: str) -> None:
        if problem != self._last_problem:  # one line per new problem, not one per retry
            log.warning("%s; retrying every %.0f s", problem, self.retry_s)
            self._last_problem = problem


def libpq_conninfo(db_url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://...``) as a libpq connection URI."""
    url = make_url(db_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def leadership_for(db_url: str, *, retry_s: float = RETRY_S) -> Leadership:
    """Advisory-lock election on PostgreSQL; a sole, permanent leader on SQLite."""
    if make_url(db_url).get_backend_name() == "postgresql":
        return AdvisoryLockLeader(libpq_conninfo(db_url), retry_s=retry_s)
    return AlwaysLeader()


async def _start_leading(on_change: OnChange) -> bool:
    try:
        await on_change(True)
    except Exception:
        log.exception("could not start the scheduler; stepping down to retry")
        return False
    return True


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _close(conn: psycopg.AsyncConnection[object]) -> None:
    with contextlib.suppress(psycopg.Error, OSError):
        await conn.close()


__all__ = [
    "LOCK_KEY",
    "AdvisoryLockLeader",
    "AlwaysLeader",
    "Leadership",
    "leadership_for",
    "libpq_conninfo",
]

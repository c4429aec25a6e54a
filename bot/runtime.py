"""The running bot: scheduler, outbox deliverer and the adapters' own loops, on one event loop.

Scheduled jobs reach the live objects through ``current()``: the runtime registers itself
while it runs. Every replica runs the deliverer and the adapters' tasks; only the elected
leader (``bot.leader``) runs the scheduler, started and stopped as leadership comes and goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot import metrics
from bot import scheduler as jobs
from bot.delivery import Sender
from bot.leader import Leadership, leadership_for
from bot.outbox import Deliverer
from storage.db import Database

log = logging.getLogger(__name__)

# An adapter's own loop (console prompt, Slack socket mode...): runs until ``stop`` is set.
AdapterTask = Callable[[asyncio.Event], Awaitable[None]]
# bot.alerts.flush_alerts(db, pack, now) and bot.digest.queue_digest(db, pack, channel_id, now)
AlertsFn = Callable[[Database, Any, datetime], object]
DigestFn = Callable[[Database, Any, int, datetime], object]

SHUTDOWN_GRACE_S = 5.0


class FeedFetcher(Protocol):
    async def fetch_due(self) -> object: ...


class RuntimeApp(Protocol):
    """What the runtime needs of ``bot.app.App``."""

    @property
    def db(self) -> Database: ...

    @property
    def pack(self) -> object: ...

    def ingestor(self) -> FeedFetcher: ...


class JobHost(Protocol):
    """What scheduled jobs may call on the live runtime."""

    def is_leader(self) -> bool: ...

    async def fetch_due(self) -> None: ...

    async def flush_alerts(self, now: datetime) -> None: ...

    async def queue_digest(self, channel_id: int, now: datetime) -> None: ...

    def reschedule_channel(self, channel_id: int) -> None: ...

    def resync_digests(self) -> None: ...


_current: JobHost | None = None


def current() -> JobHost | None:
    """The runtime running in this process, if any."""
    return _current


def set_current(host: JobHost | None) -> None:
    global _current
    _current = host


def _default_flush_alerts() -> AlertsFn:
    from bot.alerts import flush_alerts

    return flush_alerts


def _default_queue_digest() -> DigestFn:
    from bot.digest import queue_digest

    return queue_digest


class BotRuntime:
    def __init__(
        self,
        app: RuntimeApp,
        senders: Mapping[str, Sender],
        *,
        tasks: Sequence[AdapterTask] = (),
        owner: str | None = None,
        flush_alerts: AlertsFn | None = None,
        queue_digest: DigestFn | None = None,
        fetch_every_s: float = 60.0,
        alerts_every_s: float = 60.0,
        drain_interval_s: float = 1.0,
        deliverer: Deliverer | None = None,
        leadership: Leadership | None = None,
        resync_every_s: float = 60.0,
    ) -> None:
        self.app = app
        self.tasks = list(tasks)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.deliverer = deliverer or Deliverer(app.db, senders, owner=self.owner)
        self._flush_alerts = flush_alerts or _default_flush_alerts()
        self._queue_digest = queue_digest or _default_queue_digest()
        self.fetch_every_s = fetch_every_s
        self.alerts_every_s = alerts_every_s
        self.drain_interval_s = drain_interval_s
        self.resync_every_s = resync_every_s
        self.leadership = leadership or leadership_for(app.db.url)
        self.scheduler: AsyncIOScheduler | None = None
        self._ingestor: FeedFetcher | None = None

    # -- leadership and health -----------------------------------------------------------

    def is_leader(self) -> bool:
        return self.leadership.is_leader

    def scheduler_running(self) -> bool:
        return self.scheduler is not None and self.scheduler.running

    def leadership_alive(self) -> bool:
        return self.leadership.alive

    # -- what jobs call ------------------------------------------------------------------

    async def fetch_due(self) -> None:
        if self._ingestor is None:
            self._ingestor = self.app.ingestor()
        await self._ingestor.fetch_due()

    async def flush_alerts(self, now: datetime) -> None:
        await _call(self._flush_alerts, self.app.db, self.app.pack, now)

    async def queue_digest(self, channel_id: int, now: datetime) -> None:
        await _call(self._queue_digest, self.app.db, self.app.pack, channel_id, now)

    def reschedule_channel(self, channel_id: int) -> None:
        """Call after a channel's digest schedule changed (``/brief digest schedule|off``)."""
        if self.scheduler is not None:
            jobs.reschedule_channel(self.scheduler, self.app.db, channel_id)

    def resync_digests(self) -> None:
        """Pick up schedule changes made on other replicas (they have no scheduler)."""
        if self.scheduler is not None:
            jobs.sync_digest_jobs(self.scheduler, self.app.db)

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (or SIGTERM / SIGINT arrive), then shut down in order."""
        loop = asyncio.get_running_loop()
        handled = _handle_signals(loop, stop)
        set_current(self)
        running: list[asyncio.Task[None]] = []
        try:
            running.append(_spawn(self.leadership.run(stop, self._on_leadership), "leadership"))
            running.append(_spawn(self.deliverer.run(stop, self.drain_interval_s), "deliverer"))
            running.extend(_spawn(task(stop), f"adapter {i}") for i, task in enumerate(self.tasks))
            await stop.wait()
        finally:
            await _finish(running)
            await self._stop_scheduler()
            for sig in handled:
                loop.remove_signal_handler(sig)
            set_current(None)

    async def _on_leadership(self, leading: bool) -> None:
        metrics.LEADER.set(1 if leading else 0)
        if leading:
            self._start_scheduler()
        else:
            await self._stop_scheduler()

    def _start_scheduler(self) -> None:
        if self.scheduler is not None:
            return
        scheduler = jobs.build_scheduler(self.app.db.url)
        scheduler.start(paused=True)
        self.scheduler = scheduler
        jobs.install_interval_jobs(
            scheduler,
            fetch_every_s=self.fetch_every_s,
            alerts_every_s=self.alerts_every_s,
            resync_every_s=self.resync_every_s,
        )
        report = jobs.sync_digest_jobs(scheduler, self.app.db)
        log.info("digest jobs: %d new, %d kept", len(report.added), len(report.kept))
        scheduler.resume()

    async def _stop_scheduler(self) -> None:
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn


async def _call(func: Callable[..., Any], *args: object) -> None:
    """Run a job's target: awaited if async, in a worker thread if it is blocking."""
    if inspect.iscoroutinefunction(func):
        result = func(*args)
    else:
        result = await asyncio.to_thread(func, *args)
    if inspect.isawaitable(result):
        await result


def _spawn(coro: Awaitable[None], name: str) -> asyncio.Task[None]:
    async def guarded() -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s stopped with an error", name)

    return asyncio.create_task(guarded(), name=name)


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_S)
    for task in pending:
        log.warning("%s did not stop within %.0f s; cancelling", task.get_name(), SHUTDOWN_GRACE_S)
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _handle_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[signal.Signals]:
    handled = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    return handled


__all__ = [
    "AdapterTask",
    "BotRuntime",
    "JobHost",
    "RuntimeApp",
    "current",
    "set_current",
]

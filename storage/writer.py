"""Group commit: writes queued by many tasks share one transaction.

Ingest finishes feeds faster than a database commits them one by one (a commit is the
costliest statement of a small write, and SQLite takes one writer at a time). The writer
takes whatever is queued, runs each write in its own SAVEPOINT, so one failing write is
rolled back alone and reported to its caller only, and commits them together.

A writer that keeps up would still commit one write at a time, and a transaction's fixed
cost (its WAL pages: the same index pages written again every commit) makes storing a
feed's entries ~15% dearer alone than in a batch. So while callers have announced more
writes (`expect`), a small batch lingers briefly for them; a lone write commits at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from storage.db import Database

T = TypeVar("T")
Work = Callable[[Session], Any]
# How a write ended: (True, its result) or (False, its exception).
_Outcome = tuple[bool, Any]

DEFAULT_MAX_BATCH = 8
# How long a batch smaller than max_batch may wait for announced writes.
DEFAULT_LINGER_S = 0.05


class GroupWriter:
    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        linger: float = DEFAULT_LINGER_S,
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self.linger = linger
        self.expected = 0  # writes announced by callers and not made yet
        self._queue: list[tuple[Work, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._arrival: asyncio.Future[None] | None = None  # what a lingering batch awaits

    @contextmanager
    def expecting(self, count: int) -> Iterator[None]:
        """Announce `count` writes on their way (each `write` counts one off); leaving the
        block forgets those that never came."""
        self.expected += count
        try:
            yield
        finally:
            self.expected = 0

    async def write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a transaction shared with other queued writes; its result or its
        exception comes back here once that transaction is committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((work, future))
        self.expected = max(0, self.expected - 1)
        if self._arrival is not None and not self._arrival.done():
            self._arrival.set_result(None)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            await self._gather()
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            try:
                outcomes = await asyncio.to_thread(self._commit, [work for work, _ in batch])
            except BaseException as exc:  # cancelled, or the thread could not run
                outcomes = [(False, exc)] * len(batch)
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    async def _gather(self) -> None:
        """Wait (up to `linger`) while the batch is not full and more writes are expected."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger
        while len(self._queue) < self.max_batch and self.expected > 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrival = loop.create_future()
            try:
                await asyncio.wait_for(self._arrival, remaining)
            except TimeoutError:
                return
            finally:
                self._arrival = None

    def _commit(self, works: list[Work]) -> list[_Outcome]:
        try:
            with self.db.session() as session:
                return [_in_savepoint(session, work) for work in works]
        except Exception as exc:
            if len(works) == 1:
                return [(False, exc)]
        # The shared commit failed (the database went away, a deferred constraint...):
        # each write again on its own, so the others are not lost with the culprit.
        return [self._alone(work) for work in works]

    def _alone(self, work: Work) -> _Outcome:
        try:
            with self.db.session() as session:
                return (True, work(session))
        except Exception as exc:
            return (False, exc)


def _in_savepoint(session: Session, work: Work) -> _Outcome:
    try:
        with session.begin_nested():
            return (True, work(session))
    except Exception as exc:
        return (False, exc)

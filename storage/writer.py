"""Group commit: writes queued by many tasks share one transaction.

Ingest finishes feeds faster than a database commits them one by one (a commit is the
costliest statement of a small write, and SQLite takes one writer at a time). The writer
takes whatever is queued, runs each write in its own SAVEPOINT, so one failing write is
rolled back alone and reported to its caller only, and commits them together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from storage.db import Database

T = TypeVar("T")
Work = Callable[[Session], Any]
# How a write ended: (True, its result) or (False, its exception).
_Outcome = tuple[bool, Any]

DEFAULT_MAX_BATCH = 16


class GroupWriter:
    def __init__(self, db: Database, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: list[tuple[Work, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a transaction shared with other queued writes; its result or its
        exception comes back here once that transaction is committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((work, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
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

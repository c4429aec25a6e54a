"""Parse workers started with the bot: every worker spawned and loaded before any fetch."""

from __future__ import annotations

import gc
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bot.app import open_app
from bot.config import Settings
from bot.parse import WORKER_NICENESS


def test_every_process_worker_is_up_before_the_first_fetch(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'b.db'}", parse_pool="process", parse_workers=2
    )
    app = open_app(settings)
    try:
        pids = app.start_workers()
        executor = app.executor
        assert isinstance(executor, ProcessPoolExecutor)
        assert len(pids) == 2
        assert pids == set(executor._processes)  # the pool's own workers, both of them
        # ...and each has its loaded pack out of the garbage collector's walks (bot.heap).
        settled = [executor.submit(_heap_settled) for _ in range(4)]
        assert all(future.result() for future in settled)
    finally:
        app.close()


def test_workers_yield_the_cpu_to_the_main_process(tmp_path: Path) -> None:
    """The main process (chat, the writer) keeps its priority; the workers run lower."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'b.db'}", parse_pool="process", parse_workers=2
    )
    app = open_app(settings)
    try:
        app.start_workers()
        niceness = [app.executor.submit(os.nice, 0).result() for _ in range(4)]
        assert set(niceness) == {os.nice(0) + WORKER_NICENESS}
    finally:
        app.close()


def test_a_thread_pool_has_nothing_to_start(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}", parse_pool="thread")
    app = open_app(settings)
    try:
        assert app.start_workers() == set()
    finally:
        app.close()


def _heap_settled() -> bool:
    """Runs in a worker."""
    return gc.get_freeze_count() > 10_000 and gc.get_threshold()[0] >= 10_000

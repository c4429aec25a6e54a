"""Parse workers started with the bot: every worker spawned and loaded before any fetch."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bot.app import open_app
from bot.config import Settings


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
    finally:
        app.close()


def test_a_thread_pool_has_nothing_to_start(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}", parse_pool="thread")
    app = open_app(settings)
    try:
        assert app.start_workers() == set()
    finally:
        app.close()

"""Wiring: settings -> database, topic pack, worker pool, ingestor. One place builds them."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from bot.alerts import match_new_items
from bot.claim_sync import sync_ledger
from bot.config import Settings, load_settings
from bot.fetch_policy import FetchPolicy
from bot.ingest import Ingestor, StoredHook
from bot.pack import Pack, load_pack
from bot.parse import make_parse_executor
from bot.prepare import ledger_records
from bot.ssrf import Allowlist, parse_allowlist
from storage.db import Database


@dataclass
class App:
    settings: Settings
    db: Database
    pack: Pack
    hooks: list[StoredHook] = field(default_factory=list)

    @cached_property
    def executor(self) -> Executor:
        """The worker pool that parses and prepares entries (see bot/prepare.py)."""
        return make_parse_executor(self.settings.parse_pool, self.settings.parse_workers)

    def start_workers(self) -> set[int]:
        """Spawn the parse workers and load the pack in each now rather than on the first
        fetch; the workers' pids."""
        from bot.workers import start_workers

        return start_workers(self.executor, str(self.pack.path), self.settings.parse_workers)

    @cached_property
    def allowlist(self) -> Allowlist:
        return parse_allowlist(self.settings.allow_private_feeds)

    @cached_property
    def fetch_policy(self) -> FetchPolicy:
        s = self.settings
        return FetchPolicy(
            interval=timedelta(minutes=s.fetch_interval_minutes),
            concurrency=s.fetch_concurrency,
            per_host=s.fetch_per_host,
            total_timeout=s.fetch_timeout_s,
            max_body_bytes=s.max_feed_bytes,
            pause_threshold=s.pause_after_errors,
            user_agent=s.user_agent,
        )

    def ingestor(self) -> Ingestor:
        return Ingestor(
            self.db,
            self.pack,
            policy=self.fetch_policy,
            allowlist=self.allowlist,
            executor=self.executor,
            hooks=self.hooks,
        )

    def close(self) -> None:
        if "executor" in self.__dict__:
            self.executor.shutdown(wait=False, cancel_futures=True)
        self.db.dispose()


def open_app(settings: Settings | None = None, *, migrate: bool = True) -> App:
    """Open the database (migrating it), load the pack and sync its claim ledger."""
    settings = settings or load_settings()
    pack = load_pack(settings.pack)
    db = Database(settings.database_url, migrate=migrate)
    if migrate:
        sync_ledger(db, ledger_records(pack))
    return App(settings=settings, db=db, pack=pack, hooks=[match_new_items])

"""The HTTP side of a running bot: /healthz and /metrics over real HTTP on 127.0.0.1.

The bot's own parts do the work (runtime, ingestor over a loopback feed server, outbox
deliverer against the loopback chat server, /claim through the command layer); the test
reads what an operator's probe or Prometheus would read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import App, open_app
from bot.commands.requests import Caller
from bot.config import Settings
from bot.delivery import Destination
from bot.launch import http_side
from bot.leader import AdvisoryLockLeader, libpq_conninfo
from bot.messages import Notice
from bot.outbox import enqueue
from bot.runtime import BotRuntime
from bot.services import build_services
from storage.db import Database
from storage.feeds import add_feed
from tests.chatserver import ChatServer, HttpSender, running_chat_server
from tests.conftest import free_port, reset_pg_schema
from tests.feedserver import FeedServer, running_feed_server

ALICE = Caller("test", "", "U1", "C1")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def make_app(db_url: str) -> App:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        http_port=free_port(),
        allow_private_feeds="127.0.0.1",
    )
    return open_app(settings)


@pytest.fixture
async def chat() -> AsyncIterator[ChatServer]:
    async with running_chat_server() as server:
        yield server


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with running_feed_server() as server:
        yield server


class Running:
    """A BotRuntime with its HTTP side, on the current event loop."""

    def __init__(self, app: App, runtime: BotRuntime) -> None:
        self.runtime = runtime
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.base = f"http://127.0.0.1:{app.settings.http_port}"

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.runtime.run(self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, timeout=10)

    async def get(self, path: str) -> tuple[int, str, str]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for _ in range(100):  # the server starts with the runtime
                try:
                    async with http.get(self.base + path) as response:
                        return response.status, response.content_type, await response.text()
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.05)
        raise AssertionError(f"{path} never answered")

    async def health(
        self, *, until_role: str | None = None, until_status: int | None = None
    ) -> tuple[int, dict[str, object]]:
        """/healthz, polled until it reports `until_role` (and `until_status`): a replica
        that has just won the lock answers 503 until its scheduler is up."""
        for _ in range(100):
            status, _, text = await self.get("/healthz")
            body = json.loads(text)
            if (until_role is None or body.get("role") == until_role) and (
                until_status is None or status == until_status
            ):
                return status, body
            await asyncio.sleep(0.05)
        raise AssertionError(f"never {until_role} with {until_status}: {status} {body}")

    async def samples(self) -> Samples:
        status, content_type, text = await self.get("/metrics")
        assert status == 200 and content_type == "text/plain"
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


def runtime_for(app: App, senders: dict[str, HttpSender] | None = None) -> BotRuntime:
    runtime = BotRuntime(app, senders or {}, drain_interval_s=0.05, fetch_every_s=3600)
    runtime.deliverer.pace = 0.0
    runtime.tasks.append(http_side(app, [], runtime))
    return runtime


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_healthz_reports_a_healthy_leader_with_its_last_fetch(
    tmp_path: Path, feeds: FeedServer
) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'bot.db'}")
    try:
        async with Running(app, runtime_for(app)) as bot:
            status, body = await bot.health()
            assert status == 200 and body["ok"] is True
            assert body["role"] == "leader" and body["scheduler"] == "running"
            assert body["database"] == "ok" and body["last_fetch_success_age_s"] is None

            feeds.static("/feed.xml")
            with app.db.session() as session:
                add_feed(session, feeds.url("/feed.xml"))
            await app.ingestor().fetch_due()
            _, body = await bot.health()
            age = body["last_fetch_success_age_s"]
            assert isinstance(age, float) and 0 <= age < 5
    finally:
        app.close()


async def test_metrics_count_what_the_bot_did(
    tmp_path: Path, feeds: FeedServer, chat: ChatServer
) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'bot.db'}")
    try:
        async with Running(app, runtime_for(app, {"test": HttpSender(chat.url)})) as bot:
            before = await bot.samples()
            assert before[("briefbot_leader", ())] == 1.0

            feeds.static("/good.xml")  # one entry
            feeds.static("/gone.xml", b"nope", status=404)
            with app.db.session() as session:
                add_feed(session, feeds.url("/good.xml"))
                add_feed(session, feeds.url("/gone.xml"))
            await app.ingestor().fetch_due()
            answer = await build_services(app).handler.handle_text(ALICE, "/claim", "350k H100s")
            assert answer.kind == "claim_answer"
            with app.db.session() as session:
                for n in range(3):
                    where = Destination(platform="test", workspace="", ref="C1")
                    note = Notice(level="info", text=f"note {n}")
                    enqueue(session, key=f"n{n}", dest=where, kind="notice", message=note)
                # No sender for this platform here: it waits in the outbox.
                stuck = replace(where, platform="elsewhere")
                enqueue(session, key="stuck", dest=stuck, kind="notice", message=note)
            for _ in range(100):
                if len(chat.posted) == 3:
                    break
                await asyncio.sleep(0.05)
            after = await bot.samples()
    finally:
        app.close()

    assert delta(after, before, "briefbot_feeds_fetched_total") == 1
    assert delta(after, before, "briefbot_feeds_failed_total") == 1
    assert delta(after, before, "briefbot_items_ingested_total") == 1
    assert delta(after, before, "briefbot_tag_seconds_count") == 1
    assert delta(after, before, "briefbot_lookups_total", result="found") == 1
    assert delta(after, before, "briefbot_lookup_seconds_count") == 1
    assert delta(after, before, "briefbot_deliveries_total", outcome="sent") == 3
    assert after[("briefbot_outbox_depth", (("status", "pending"),))] == 1
    assert 0 <= after[("briefbot_last_fetch_success_age_seconds", ())] < 5


async def test_healthz_is_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'bot.db'}")
    real_db = app.db
    app.db = Database("postgresql://nobody@127.0.0.1:9/none", migrate=False)  # port 9: closed
    try:
        async with Running(app, runtime_for(app)) as bot:
            status, body = await bot.health()
            _, _, metrics_text = await bot.get("/metrics")
    finally:
        app.db.dispose()
        real_db.dispose()
    assert status == 503 and body["ok"] is False
    assert body["database"] == "unreachable"
    assert "briefbot_leader" in metrics_text  # a scrape still answers, without DB figures
    assert "briefbot_outbox_depth" not in metrics_text
    assert "nobody" not in str(body)  # no connection details leak


async def test_a_follower_is_healthy_and_takes_over_when_the_lock_is_free(pg_url: str) -> None:
    import psycopg

    reset_pg_schema(pg_url)
    app = make_app(pg_url)
    holder = await psycopg.AsyncConnection.connect(libpq_conninfo(app.db.url), autocommit=True)
    try:
        key = 4242
        await holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        runtime = runtime_for(app)
        leader = AdvisoryLockLeader(libpq_conninfo(app.db.url), key=key, retry_s=0.1)
        runtime.leadership = leader
        async with Running(app, runtime) as bot:
            status, body = await bot.health(until_role="follower")
            assert status == 200 and body["scheduler"] == "not here"
            assert runtime.scheduler is None
            assert (await bot.samples())[("briefbot_leader", ())] == 0.0

            await holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
            status, body = await bot.health(until_role="leader", until_status=200)
            assert status == 200 and body["scheduler"] == "running"
            assert (await bot.samples())[("briefbot_leader", ())] == 1.0
        assert runtime.scheduler is None and not leader.is_leader
    finally:
        await holder.close()
        app.close()

"""Three replicas on one PostgreSQL database: one scheduler, no double posts, no losses.

Each replica is a real process (tests/replica_worker.py) running the bot's runtime against
a loopback feed server and a loopback chat platform. The leader is found through each
replica's /healthz and killed with SIGKILL halfway; a follower must take over within 30 s,
and every digest and alert must reach the chat server exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select, update

from bot.app import open_app
from bot.config import Settings
from storage.channels import set_schedule
from storage.db import Database
from storage.feeds import add_feed
from storage.models import AlertHit, Feed, Item, OutboxMessage
from storage.subscriptions import Owner, add_subscription
from tests.chatserver import ChatServer, running_chat_server
from tests.conftest import free_port, reset_pg_schema
from tests.feedserver import FeedServer, running_feed_server

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "replica_worker.py"
TAKEOVER_LIMIT_S = 30.0

# (feed path, title, text): backlog first (never alerted), then one batch before the kill
# and one after it.
BACKLOG = [
    ("/a.xml", "Meta releases Llama 3.1 405B with open weights",
     "Meta released Llama 3.1, its largest open-weights model at 405 billion parameters."),
    ("/a.xml", "Zuckerberg says Meta will own 350,000 Nvidia H100 GPUs by year end",
     "Mark Zuckerberg said Meta is building compute with 350,000 H100 graphics cards."),
    ("/b.xml", "Meta raises capital spending forecast to fund AI data centers",
     "Meta told investors its capex will rise as it builds data centers for AI training."),
]  # fmt: skip
BEFORE_KILL = [
    ("/a.xml", "Meta AI assistant reaches new users across WhatsApp and Instagram",
     "Meta said its Meta AI assistant, built on Llama 3, now answers questions in WhatsApp."),
]  # fmt: skip
AFTER_KILL = [
    ("/a.xml", "Meta trains Llama 4 on a cluster of 100,000 GPUs",
     "Mark Zuckerberg said Llama 4 is being trained on a cluster bigger than 100,000 H100 GPUs."),
    ("/b.xml", "Meta's FAIR lab publishes new open-source Llama research",
     "Meta's AI research group FAIR released new open source model weights and code for Llama."),
]  # fmt: skip


def rss(entries: list[tuple[str, str, str]], path: str) -> bytes:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>{escape(title)}</title><link>http://news.test{path}/{n}</link>"
        f"<guid>{path}/{n}</guid><pubDate>{format_datetime(now)}</pubDate>"
        f"<description>{escape(text)}</description></item>"
        for n, (p, title, text) in enumerate(entries)
        if p == path
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Desk {path}</title>'
        f"<link>http://news.test/</link>{items}</channel></rss>"
    ).encode()


class Feeds:
    """What the loopback feed server publishes now; ``publish`` adds entries."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.entries: list[tuple[str, str, str]] = []
        for path in ("/a.xml", "/b.xml"):
            server.add(path, self._handler)

    async def _handler(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=rss(self.entries, request.path))

    def publish(self, db: Database, entries: list[tuple[str, str, str]]) -> None:
        self.entries.extend(entries)
        with db.session() as session:  # due now, instead of in half an hour
            session.execute(update(Feed).values(next_fetch_at=datetime.now(UTC)))


def seed(db: Database, feeds: FeedServer) -> None:
    with db.session() as session:
        for path in ("/a.xml", "/b.xml"):
            add_feed(session, feeds.url(path))
        for ref in ("C1", "C2"):
            set_schedule(session, "test", "", ref, time="09:00", timezone="UTC")
        owner = Owner(platform="test", workspace="", user_ref="U1")
        add_subscription(
            session, owner, kind="theme", value="llama-models", delivery="here", dest_ref="C1"
        )
        add_subscription(session, owner, kind="phrase", value="Llama", delivery="dm", dest_ref="U1")
        add_subscription(
            session, owner, kind="theme", value="compute", delivery="here", dest_ref="C2"
        )


class Replica:
    def __init__(self, n: int, log_dir: Path) -> None:
        self.name = f"replica-{n}"
        self.port = free_port()
        self.log = log_dir / f"{self.name}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, db_url: str, chat_url: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with self.log.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, str(WORKER), db_url, chat_url, str(self.port), self.name,
                env=env, stdout=log, stderr=log,
            )  # fmt: skip

    async def health(self, http: aiohttp.ClientSession) -> dict[str, object] | None:
        try:
            async with http.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                body: dict[str, object] = await response.json()
                body["status"] = response.status
                return body
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def metric(self, http: aiohttp.ClientSession, name: str) -> float:
        async with http.get(f"http://127.0.0.1:{self.port}/metrics") as response:
            for line in (await response.text()).splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"{name} not in /metrics of {self.name}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


async def the_leader(
    replicas: list[Replica], http: aiohttp.ClientSession, within: float
) -> Replica:
    """Poll every replica's /healthz until one leads; never more than one at a time."""
    deadline = time.monotonic() + within
    bodies: list[tuple[Replica, dict[str, object] | None]] = []
    while time.monotonic() < deadline:
        bodies = [(r, await r.health(http)) for r in replicas]
        leaders = [r for r, b in bodies if b is not None and b.get("role") == "leader"]
        assert len(leaders) <= 1, f"two leaders at once: {[r.name for r in leaders]}"
        ready = all(b is not None and b["status"] == 200 for _, b in bodies)
        if leaders and ready:
            return leaders[0]
        await asyncio.sleep(0.2)
    silent = {r.name: r.tail() for r, b in bodies if b is None}  # why they never answered
    raise AssertionError(f"no leader elected: {[b for _, b in bodies]}; logs: {silent}")


async def until(
    what: str, check: Callable[[], bool], replicas: list[Replica], within: float
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n" + "\n".join(r.tail() for r in replicas))


def posted_kinds(chat: ChatServer, kind: str) -> list[tuple[str, str]]:
    return [(p.dest, p.key) for p in chat.posted if p.payload.get("kind") == kind]


def alerted_titles(chat: ChatServer, dest: str) -> set[str]:
    return {
        story["title"]
        for p in chat.posted
        if p.payload.get("kind") == "alert" and p.dest == dest
        for story in p.payload["stories"]
    }


def all_delivered(db: Database) -> bool:
    with db.session() as session:
        statuses = set(session.scalars(select(OutboxMessage.status)))
        unbatched = session.scalar(select(AlertHit).where(AlertHit.batched.is_(False)).limit(1))
    return statuses == {"sent"} and unbatched is None


def stored_items(db: Database) -> int:
    with db.session() as session:
        return len(session.scalars(select(Item.id)).all())


async def test_three_replicas_one_scheduler_kill_the_leader_nothing_twice_nothing_lost(
    pg_url: str, tmp_path: Path
) -> None:
    reset_pg_schema(pg_url)
    app = open_app(Settings(_env_file=None, database_url=pg_url))  # type: ignore[call-arg]
    db = app.db
    replicas = [Replica(n, tmp_path) for n in range(3)]
    try:
        async with (
            running_chat_server() as chat,
            running_feed_server() as server,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
        ):
            feeds = Feeds(server)
            feeds.entries.extend(BACKLOG)
            seed(db, server)
            for replica in replicas:
                await replica.start(pg_url, chat.url)

            first = await the_leader(replicas, http, within=30)
            await until("the backlog", lambda: stored_items(db) == 3, replicas, 20)
            await until(
                "digests in C1 and C2",
                lambda: {d for d, _ in posted_kinds(chat, "digest")} == {"C1", "C2"},
                replicas,
                20,
            )
            feeds.publish(db, BEFORE_KILL)
            await until(
                "alerts before the kill",
                lambda: {"C1", "U1"} <= {d for d, _ in posted_kinds(chat, "alert")},
                replicas,
                20,
            )
            assert await first.metric(http, "briefbot_leader") == 1.0

            assert first.proc is not None
            first.proc.kill()
            killed_at = time.monotonic()
            assert await first.proc.wait() == -signal.SIGKILL
            survivors = [r for r in replicas if r is not first]
            second = await the_leader(survivors, http, within=TAKEOVER_LIMIT_S)
            takeover_s = time.monotonic() - killed_at

            # A schedule change and new coverage, both handled by the new leader.
            with db.session() as session:
                set_schedule(session, "test", "", "C3", time="09:00", timezone="UTC")
            feeds.publish(db, AFTER_KILL)
            await until(
                "everything after the kill",
                lambda: (
                    stored_items(db) == 6
                    and "C3" in {d for d, _ in posted_kinds(chat, "digest")}
                    and all_delivered(db)
                ),
                replicas,
                30,
            )
            await asyncio.sleep(2.5)  # digest jobs fire again: a double post would show now
            leader_gauges = [await r.metric(http, "briefbot_leader") for r in survivors]
            for replica in survivors:
                assert replica.proc is not None
                replica.proc.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(r.proc.wait(), 15) for r in survivors if r.proc]
    finally:
        for replica in replicas:
            if replica.proc is not None and replica.proc.returncode is None:
                replica.proc.kill()
                await replica.proc.wait()
        app.close()

    assert second is not first and takeover_s < TAKEOVER_LIMIT_S
    assert sorted(leader_gauges) == [0.0, 1.0]
    assert codes == [0, 0], [r.tail() for r in survivors]
    with db.session() as session:
        outbox = {row.idempotency_key: row.status for row in session.scalars(select(OutboxMessage))}
    counts = chat.count_by_key()
    assert counts == dict.fromkeys(outbox, 1), "every queued message posted exactly once"
    assert set(outbox.values()) == {"sent"}
    digests = posted_kinds(chat, "digest")
    assert sorted(d for d, _ in digests) == ["C1", "C2", "C3"]
    new = {title for _, title, _ in BEFORE_KILL + AFTER_KILL}
    assert alerted_titles(chat, "U1") == new  # phrase "Llama": every new story, once
    assert {title for _, title, _ in AFTER_KILL} <= alerted_titles(chat, "C1")
    assert alerted_titles(chat, "C2") == {AFTER_KILL[0][1]}  # compute: the GPU cluster story

"""The proof that a crash mid-send neither loses nor duplicates a message.

A real worker process drains the outbox against the loopback chat server. The server
stores one message and never answers, and the worker is SIGKILLed while it waits: the
platform has the message, the database still says "sending". A second worker starts,
finds the row uncertain, asks the platform, and finishes the rest.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.delivery import Destination
from bot.messages import Notice
from bot.outbox import enqueue
from storage.db import Database
from storage.models import OutboxMessage
from tests.chatserver import ChatServer, running_chat_server

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "crash_worker.py"
KEYS = [f"alert:{i}" for i in range(8)]
HANG_ON_POST = 3
# Long enough that the first worker cannot give up on the hung send before it is killed
# (it abandons a send after half the lease), short enough that the second one soon may
# take the leftover rows over.
LEASE_S = "3"


@pytest.fixture
async def chat() -> AsyncIterator[ChatServer]:
    async with running_chat_server() as server:
        yield server


async def start_worker(db_url: str, chat: ChatServer, owner: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        db_url,
        chat.url,
        owner,
        LEASE_S,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def rows(db: Database) -> dict[str, OutboxMessage]:
    with db.session() as session:
        return {r.idempotency_key: r for r in session.scalars(select(OutboxMessage))}


async def test_killed_mid_send_every_message_arrives_exactly_once(
    tmp_path: Path, chat: ChatServer
) -> None:
    db_url = f"sqlite:///{tmp_path / 'crash.db'}"
    db = Database(db_url)
    try:
        with db.session() as session:
            for i, key in enumerate(KEYS):
                where = Destination(platform="test", workspace="W", ref=f"C{i % 2}")
                message = Notice(level="info", text=f"story {i}")
                enqueue(session, key=key, dest=where, kind="alert", message=message)
        chat.hang_after_store(HANG_ON_POST)

        first = await start_worker(db_url, chat, "worker-1")
        await asyncio.wait_for(chat.hung.wait(), timeout=10)
        first.kill()
        assert await first.wait() == -9

        hung = chat.posted[HANG_ON_POST - 1]
        assert rows(db)[hung.key].status == "sending", "stored by the platform, not recorded"
        posted_before_restart = len(chat.posted)

        second = await start_worker(db_url, chat, "worker-2")
        out, err = await asyncio.wait_for(second.communicate(), timeout=20)
        assert second.returncode == 0, err.decode()
        totals = json.loads(out)

        assert chat.count_by_key() == dict.fromkeys(KEYS, 1)
        final = rows(db)
        assert {r.status for r in final.values()} == {"sent"}
        assert final[hung.key].platform_message_id == hung.id
        assert totals["recovered"] >= 1
        assert totals["sent"] == len(KEYS) - posted_before_restart
    finally:
        db.dispose()

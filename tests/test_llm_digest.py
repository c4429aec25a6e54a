"""Digests use the optional LLM summariser (a loopback OpenAI-compatible endpoint) and
keep the extractive summary whenever it fails."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from bot.digest import build_digest
from bot.pack import load_pack
from bot.summarise import extractive_summary
from storage import feeds as feed_repo
from storage.db import Database
from storage.items import NewItem, ThemeTag, store_items
from storage.models import Feed

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


class FakeLLM:
    """POST /v1/chat/completions on 127.0.0.1, in its own thread and loop."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.url = ""
        self._stop = threading.Event()
        self._ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True).start()
        assert self._ready.wait(10)

    async def _answer(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        if self.status != 200:
            return web.Response(status=self.status, text="overloaded")
        content = "An LLM wrote this: Meta shipped a new Llama model."
        return web.json_response({"choices": [{"message": {"content": content}}]})

    async def _main(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        self._ready.set()
        await asyncio.to_thread(self._stop.wait)
        await runner.cleanup()

    def close(self) -> None:
        self._stop.set()


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    fake = FakeLLM()
    monkeypatch.setenv("BRIEFBOT_LLM_BASE_URL", fake.url)
    monkeypatch.setenv("BRIEFBOT_LLM_MODEL", "llama3.1:8b")
    yield fake
    fake.close()


def stored_story(db: Database, n: int = 0, at: datetime = T0) -> None:
    with db.session() as s:
        feed = s.scalar(select(Feed)) or feed_repo.add_feed(s, "https://desk.example/feed")
        item = NewItem(
            guid=f"g{n}",
            url=f"https://desk.example/{n}",
            canonical_url=f"https://desk.example/{n}",
            source="Desk",
            title="Meta ships Llama 5" if n == 0 else f"Meta ships Llama 5, part {n}",
            title_key=f"meta ships llama 5 {n}",
            author=None,
            published_at=at,
            published_was_missing=False,
            fetched_at=at,
            text="Meta released Llama 5 today. It comes in three sizes.",
            summary="Meta released Llama 5 today.",
            content_hash=f"h{n}",
            signature=f"s{n}",
            band_keys=(f"k{n}",),
            relevance=0.9,
            relevant=True,
            themes=(ThemeTag("llama-models", 0.9, ("Llama 5",)),),
        )
        store_items(s, feed.id, [item], lambda a, b: a == b)


def digest_summary(db: Database) -> str:
    with db.session() as s:
        digest = build_digest(
            s, load_pack(), since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1)
        )
    return digest.sections[0].stories[0].summary


def test_digest_uses_the_llm_summary(sqlite_db: Database, llm: FakeLLM) -> None:
    stored_story(sqlite_db)
    assert digest_summary(sqlite_db) == "An LLM wrote this: Meta shipped a new Llama model."
    [request] = llm.requests
    assert request["model"] == "llama3.1:8b"
    assert "three sizes" in str(request["messages"]), "the item's own text is the input"


def test_llm_failure_keeps_the_extractive_summary(sqlite_db: Database, llm: FakeLLM) -> None:
    stored_story(sqlite_db)
    llm.status = 500
    text = "Meta released Llama 5 today. It comes in three sizes."
    assert digest_summary(sqlite_db) == extractive_summary("Meta ships Llama 5", text)
    assert llm.requests, "the endpoint was tried"


def test_a_repeated_scheduled_run_asks_the_llm_nothing(sqlite_db: Database, llm: FakeLLM) -> None:
    from bot.digest import queue_digest
    from storage.models import Channel

    stored_story(sqlite_db)
    with sqlite_db.session() as s:
        channel = Channel(platform="console", workspace="w", ref="general", digest_enabled=True)
        s.add(channel)
        s.flush()
        channel_id = channel.id
    first = queue_digest(sqlite_db, load_pack(), channel_id, T0 + timedelta(minutes=30))
    asked = len(llm.requests)
    stored_story(sqlite_db, 1, T0 + timedelta(minutes=35))  # news after the digest, same day
    again = queue_digest(sqlite_db, load_pack(), channel_id, T0 + timedelta(minutes=40))
    assert first and first.queued and asked == 1
    assert again and not again.queued and len(llm.requests) == asked

"""The ingest pipeline over real HTTP on 127.0.0.1 into real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from bot.app import App, open_app
from bot.config import Settings
from bot.fetch_policy import FetchPolicy
from bot.ingest import Ingestor
from storage.feeds import add_feed
from storage.models import Claim, ClaimCoverage, Feed, Item
from tests.feedserver import FeedServer, running_feed_server


def rss(*entries: tuple[str, str, str], title: str = "Loopback AI desk") -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>https://desk.example/{g}?utm_source=rss</link>"
        f"<guid>{g}</guid><pubDate>Thu, 19 Nov 2026 10:00:00 GMT</pubDate>"
        f"<description>{d}</description></item>"
        for g, t, d in entries
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://desk.example/</link>{items}</channel></rss>"
    ).encode()


LLAMA = (
    "llama-5",
    "Meta releases Llama 5 with open weights",
    "Meta released Llama 5, an open-weight model with 405 billion parameters, and "
    "Zuckerberg said it beats GPT-5 on coding benchmarks.",
)
OFF_TOPIC = (
    "alpaca",
    "Farm reports record llama wool prices",
    "A Peruvian cooperative says llama and alpaca fleece fetched record prices this year.",
)


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with running_feed_server() as s:
        yield s


@pytest.fixture
def app(db_url: str) -> Iterator[App]:
    application = open_app(Settings(database_url=db_url, allow_private_feeds="127.0.0.1"))
    yield application
    application.close()


def follow(app: App, *urls: str) -> None:
    with app.db.session() as s:
        for url in urls:
            add_feed(s, url)


def count(app: App, model: type[object]) -> int:
    with app.db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


async def test_worker_processes_parse_and_prepare(server: FeedServer, tmp_path: Path) -> None:
    server.static("/feed", rss(LLAMA, OFF_TOPIC))
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'p.db'}",
        allow_private_feeds="127.0.0.1",
        parse_pool="process",
    )
    app = open_app(settings)
    try:
        follow(app, server.url("/feed"))
        report = await app.ingestor().fetch_due(force=True)
        assert report.stored == 2 and not report.failed
        assert isinstance(app.executor, ProcessPoolExecutor)
        with app.db.session() as s:
            linked = s.scalar(
                select(func.count()).select_from(Claim).where(Claim.item_id.is_not(None))
            )
        assert linked, "claims extracted in the worker reach the database"
    finally:
        app.close()


async def test_fetch_store_tag_then_304(server: FeedServer, app: App) -> None:
    server.conditional("/feed", rss(LLAMA, OFF_TOPIC), etag='"v1"')
    follow(app, server.url("/feed"))
    first = await app.ingestor().fetch_due(force=True)
    assert first.stored == 2 and not first.failed
    with app.db.session() as s:
        items = {i.title: i for i in s.scalars(select(Item))}
        feed = s.scalars(select(Feed)).one()
        llama = items[LLAMA[1]]
        assert llama.relevant and not items[OFF_TOPIC[1]].relevant
        assert "llama-models" in {t.theme_id for t in llama.themes}
        assert llama.canonical_url == "https://desk.example/llama-5"
        assert feed.etag == '"v1"' and feed.title == "Loopback AI desk"
        coverage_claims = s.scalar(
            select(func.count()).select_from(Claim).where(Claim.item_id == llama.id)
        )
        assert coverage_claims, "Zuckerberg's statement becomes a candidate claim"
    second = await app.ingestor().fetch_due(force=True)
    assert second.feeds[0].not_modified and second.stored == 0
    assert server.hits_for("/feed")[-1].headers.get("If-None-Match") == '"v1"'


async def test_duplicates_across_feeds_and_restart(server: FeedServer, app: App) -> None:
    server.static("/a", rss(LLAMA, title="Desk A"))
    server.static("/b", rss(LLAMA, title="Desk B"))  # same canonical URL: a duplicate
    follow(app, server.url("/a"), server.url("/b"))
    report = await app.ingestor().fetch_due(force=True)
    assert report.stored == 1 and sum(f.duplicates for f in report.feeds) == 1
    restarted = open_app(app.settings)  # a new process on the same database
    try:
        again = await restarted.ingestor().fetch_due(force=True)
    finally:
        restarted.close()
    assert again.stored == 0 and count(app, Item) == 1


async def test_one_failing_feed_never_hurts_the_others(server: FeedServer, app: App) -> None:
    server.static("/broken", b"oops", status=500)
    server.static("/good", rss(LLAMA))
    follow(app, server.url("/broken"), server.url("/good"))
    ingestor = Ingestor(
        app.db,
        app.pack,
        policy=FetchPolicy(pause_threshold=2),
        allowlist=app.allowlist,
        hooks=app.hooks,
    )
    first = await ingestor.fetch_due(force=True)
    assert first.stored == 1 and len(first.failed) == 1
    with app.db.session() as s:
        broken = s.scalars(select(Feed).where(Feed.url.endswith("/broken"))).one()
        assert broken.consecutive_errors == 1 and "500" in (broken.last_error or "")
        assert broken.next_fetch_at is not None and broken.enabled
        assert broken.next_fetch_at - (broken.last_fetched_at or broken.next_fetch_at) >= (
            timedelta(minutes=4)
        ), "a failure backs off"
    await ingestor.fetch_due(force=True)
    with app.db.session() as s:
        broken = s.scalars(select(Feed).where(Feed.url.endswith("/broken"))).one()
        assert not broken.enabled and "2 consecutive failures" in (broken.paused_reason or "")
    third = await ingestor.fetch_due(force=True)
    assert all(not f.url.endswith("/broken") for f in third.feeds), "a paused feed is skipped"


async def test_malformed_and_hostile_feeds_are_recorded_not_raised(
    server: FeedServer, app: App
) -> None:
    server.static("/junk", b"<rss><channel><item><title>unclosed")
    hostile = (
        "xss",
        "Meta AI &lt;script&gt;alert(1)&lt;/script&gt; launches",
        "&lt;img src=x onerror=alert(1)&gt;Meta's Llama team &lt;a href='javascript:x'&gt;"
        "click&lt;/a&gt; ships a model.",
    )
    server.static("/hostile", rss(hostile))
    follow(app, server.url("/junk"), server.url("/hostile"))
    report = await app.ingestor().fetch_due(force=True)
    assert not report.failed
    with app.db.session() as s:
        for item in s.scalars(select(Item)):
            for text in (item.title, item.text, item.summary):
                lowered = text.lower()
                assert "<script" not in lowered and "javascript:" not in lowered
                assert "onerror=" not in lowered


async def test_local_file_ingest_links_claims(app: App) -> None:
    story = (
        "h100",
        "Meta now has 600,000 H100-equivalents of compute",
        "Zuckerberg said Meta now runs about 600,000 H100-equivalent GPUs, after buying "
        "350,000 Nvidia H100s last year.",
    )
    report = await app.ingestor().ingest_document("file:///tmp/sample.xml", rss(story))
    assert report.stored == 1
    with app.db.session() as s:
        linked = set(s.scalars(select(ClaimCoverage.claim_id)))
    assert "meta-350k-h100-2024" in linked


async def test_refetch_without_validators_skips_stored_entries(
    server: FeedServer, app: App
) -> None:
    server.static("/feed", rss(LLAMA, OFF_TOPIC))  # no ETag: every fetch is a full body
    follow(app, server.url("/feed"))
    first = await app.ingestor().fetch_due(force=True)
    assert first.stored == 2 and first.feeds[0].skipped == 0
    fresh = (
        "llama-6",
        "Meta previews Llama 6 for researchers",
        "Meta showed an early Llama 6 model to outside researchers this week.",
    )
    server.static("/feed", rss(LLAMA, OFF_TOPIC, fresh))
    second = (await app.ingestor().fetch_due(force=True)).feeds[0]
    assert second.skipped == 2, "entries already stored are not prepared again"
    assert second.duplicates == 2 and second.stored == 1
    with app.db.session() as s:
        titles = set(s.scalars(select(Item.title)))
    assert fresh[1] in titles and count(app, Item) == 3


async def test_first_fetch_asks_for_no_stored_guids(server: FeedServer, app: App) -> None:
    """A feed that never stored a response has no guids to skip: its first fetch does not
    read them (one query per feed saved on a large first import); later fetches do."""
    server.static("/feed", rss(LLAMA, OFF_TOPIC))
    follow(app, server.url("/feed"))
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(app.db.engine, "before_cursor_execute", record)
    try:
        assert (await app.ingestor().fetch_due(force=True)).stored == 2
        guid_reads = [s for s in statements if s.lstrip().startswith("SELECT items.guid")]
        assert len(guid_reads) == 1, "only the store's duplicate check reads guids"
        statements.clear()
        second = (await app.ingestor().fetch_due(force=True)).feeds[0]
    finally:
        event.remove(app.db.engine, "before_cursor_execute", record)
    assert second.skipped == 2
    assert sum(s.lstrip().startswith("SELECT items.guid") for s in statements) == 1

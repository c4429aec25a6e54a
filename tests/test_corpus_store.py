"""feedparser's own test corpus (2,100 feeds, many broken on purpose) through the whole
ingest path: parse, normalise, tag, store. Nothing may escape; nothing unsafe is stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from bot.app import open_app
from bot.config import Settings
from storage.models import Item
from tests.conftest import SHARED

CORPUS = SHARED / "corpus" / "feedparser-tests"
UNSAFE = ("<script", "javascript:", " onerror=", " onload=", " onclick=", " onmouseover=")


def test_every_corpus_feed_is_stored_without_escaping_errors(tmp_path: Path) -> None:
    files = sorted(CORPUS.rglob("*.xml"))
    assert len(files) > 2000, f"feedparser corpus missing at {CORPUS}"
    app = open_app(Settings(database_url=f"sqlite:///{tmp_path / 'corpus.db'}"))
    ingestor = app.ingestor()

    async def ingest_all() -> int:
        problems = 0
        for path in files:
            report = await ingestor.ingest_document(path.as_uri(), path.read_bytes())
            problems += report.parse_problem is not None
        return problems

    try:
        problems = asyncio.run(ingest_all())
        with app.db.session() as s:
            stored = s.scalar(select(func.count()).select_from(Item)) or 0
            texts = s.execute(select(Item.title, Item.text, Item.summary, Item.author)).all()
    finally:
        app.close()
    assert stored > 500, "the corpus holds hundreds of entries"
    assert problems > 100, "broken feeds are recorded as problems, not raised"
    for row in texts:
        for text in row:
            lowered = (text or "").lower()
            assert not any(marker in lowered for marker in UNSAFE), text

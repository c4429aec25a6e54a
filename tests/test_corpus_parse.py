"""Every feed of feedparser's own test corpus goes through parse + normalise unharmed."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from bot.htmltext import html_to_text, plain_text
from bot.normalise import canonical_url, content_hash, title_key
from bot.parse import ParsedFeed, parse_feed_sync

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "feedparser-tests"
FETCHED_AT = datetime(2024, 7, 24, 12, 0, tzinfo=UTC)
DANGER = re.compile(r"<\s*script|javascript\s*:|\bon[a-z]+\s*=", re.IGNORECASE)


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.fail(
            f"feedparser test corpus not found at {CORPUS}; "
            "it is expected in ../shared/corpus/feedparser-tests beside the repository"
        )
    files = sorted(CORPUS.rglob("*.xml"))
    assert len(files) > 2000, f"corpus at {CORPUS} looks incomplete ({len(files)} files)"
    return files


def texts_of(feed: ParsedFeed) -> list[str]:
    texts = [feed.title, feed.problem or ""]
    for entry in feed.entries:
        texts += [entry.title, entry.author or "", entry.summary_text, entry.content_text]
        texts += entry.categories
    return texts


def test_whole_corpus_parses_without_escaping_exceptions_or_script() -> None:
    files = corpus_files()
    dangerous: list[str] = []
    entries = 0
    problems = 0
    for path in files:
        feed = parse_feed_sync(
            path.read_bytes(),
            url=f"https://corpus.example/{path.name}",
            content_type=None,
            fetched_at=FETCHED_AT,
        )
        problems += feed.bozo
        for entry in feed.entries:
            entries += 1
            assert entry.published.tzinfo is not None
            assert entry.published <= FETCHED_AT.replace(day=25)
            canonical_url(entry.link)
            title_key("corpus", entry.title)
            content_hash(entry.title, entry.content_text or entry.summary_text)
            for link in entry.links:
                assert link.startswith(("http://", "https://")), (path, link)
        dangerous += [
            f"{path.relative_to(CORPUS)}: {t[:120]!r}" for t in texts_of(feed) if DANGER.search(t)
        ]
    assert not dangerous, "\n".join(dangerous[:20])
    # The corpus holds hundreds of entries and a good share of deliberately broken feeds.
    assert entries > 1000
    assert problems > 50


def test_text_conversion_alone_defuses_unsanitised_corpus_html() -> None:
    """Our own layer must hold even if feedparser's sanitiser let something through."""
    dangerous: list[str] = []
    for path in corpus_files():
        raw = feedparser.parse(io.BytesIO(path.read_bytes()), sanitize_html=False)
        for item in [raw.get("feed", {}), *raw.get("entries", [])]:
            values = [item.get("title"), item.get("summary")]
            values += [block.get("value") for block in item.get("content", [])]
            for value in values:
                if not isinstance(value, str):
                    continue
                for text in (html_to_text(value), plain_text(value)):
                    if DANGER.search(text):
                        dangerous.append(f"{path.relative_to(CORPUS)}: {text[:120]!r}")
    assert not dangerous, "\n".join(dangerous[:20])

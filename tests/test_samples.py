"""The shipped feed list and the offline sample feeds."""

from __future__ import annotations

import calendar
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import feedparser
import pytest

from bot.samples import SAMPLE_NOW, sample_dir, sample_files

OPML = Path(__file__).resolve().parents[1] / "bot" / "packs" / "meta_ai" / "feeds.opml"


@cache
def parsed(path: Path) -> Any:
    return feedparser.parse(path.read_bytes())


def all_entries() -> list[tuple[str, Any]]:
    return [(p.name, e) for p in sample_files() for e in parsed(p).entries]


def feed_outlines() -> list[ET.Element]:
    root = ET.parse(OPML).getroot()
    return [o for o in root.iter("outline") if o.get("xmlUrl")]


def test_opml_is_valid_and_complete() -> None:
    root = ET.parse(OPML).getroot()
    assert root.tag == "opml" and root.get("version") == "2.0"
    outlines = feed_outlines()
    assert 15 <= len(outlines) <= 25
    for outline in outlines:
        for attribute in ("text", "title", "type", "xmlUrl", "htmlUrl", "category"):
            assert outline.get(attribute), (outline.get("text"), attribute)
        assert outline.get("type") == "rss"


def test_opml_feed_urls_are_https_and_distinct() -> None:
    urls = [o.get("xmlUrl", "") for o in feed_outlines()]
    assert all(urlsplit(u).scheme == "https" and urlsplit(u).netloc for u in urls)
    assert len(set(urls)) == len(urls)


def test_opml_covers_first_party_press_search_and_community() -> None:
    hosts = {urlsplit(o.get("xmlUrl", "")).netloc for o in feed_outlines()}
    assert {"about.fb.com", "news.google.com", "hnrss.org", "www.reddit.com"} <= hosts


def test_sample_helpers_list_the_bundled_files() -> None:
    files = sample_files()
    assert files == sorted(files)
    assert all(f.parent == sample_dir() and f.suffix == ".xml" for f in files)


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: p.name)
def test_every_sample_parses_cleanly(path: Path) -> None:
    feed = parsed(path)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.feed.get("title")
    assert len(feed.entries) >= 8
    for entry in feed.entries:
        assert entry.get("title")
        assert entry.get("summary")


def test_sample_set_size_and_formats() -> None:
    versions = Counter(parsed(p).version for p in sample_files())
    outlets = {urlsplit(parsed(p).feed.link).netloc for p in sample_files()}
    assert len(all_entries()) >= 70
    assert len(outlets) >= 6
    assert versions["rss20"] >= 1 and versions["atom10"] >= 1


def test_dates_fall_inside_the_sample_window() -> None:
    earliest = SAMPLE_NOW - timedelta(hours=84)
    for name, entry in all_entries():
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        if stamp is None:
            continue
        when = datetime.fromtimestamp(calendar.timegm(stamp), UTC)
        assert earliest <= when <= SAMPLE_NOW, (name, entry.title, when)


def test_awkward_entries_are_present() -> None:
    undated = [e for _, e in all_entries() if not e.get("published_parsed")]
    unlinked = [e for _, e in all_entries() if not e.get("link")]
    assert len(undated) == 1 and len(unlinked) == 1
    repeated = [
        name
        for name in (p.name for p in sample_files())
        if max(Counter(e.id for e in parsed(sample_dir() / name).entries).values()) > 1
    ]
    assert repeated == ["openweights-atom.xml"]


def strip_query(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(query="", fragment=""))


def test_wire_copies_with_tracking_params_match_the_original() -> None:
    by_link: dict[str, set[tuple[str, str]]] = {}
    for name, entry in all_entries():
        if entry.get("link"):
            by_link.setdefault(strip_query(entry.link), set()).add((name, entry.title))
    tracked = [e.link for _, e in all_entries() if "utm_source=" in e.get("link", "")]
    tracked += [e.link for _, e in all_entries() if "fbclid=" in e.get("link", "")]
    assert len(tracked) >= 3
    for link in tracked:
        copies = by_link[strip_query(link)]
        assert len({name for name, _ in copies}) >= 2
        assert len({title for _, title in copies}) == 1


@pytest.mark.parametrize(
    ("needles", "min_outlets"),
    [(("Llama 5",), 5), (("2.2", "Ohio"), 4), (("170", "2027"), 4)],
)
def test_big_stories_are_syndicated_across_outlets(
    needles: tuple[str, ...], min_outlets: int
) -> None:
    def mentions(entry: Any) -> bool:
        text = f"{entry.title} {entry.summary}"
        return all(n in text for n in needles)

    outlets = {name for name, entry in all_entries() if mentions(entry)}
    assert len(outlets) >= min_outlets, outlets


def test_samples_carry_hostile_html_and_boilerplate() -> None:
    raw = "\n".join(p.read_text(encoding="utf-8") for p in sample_files())
    assert raw.count("<script") >= 2
    assert "appeared first on" in raw
    assert "Read more" in raw and "Continue reading" in raw
    assert "content:encoded" in raw

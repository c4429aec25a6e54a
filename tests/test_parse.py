from __future__ import annotations

import asyncio
import calendar
import pickle
import time
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot import parse as parse_module
from bot.parse import (
    ParsedFeed,
    make_parse_executor,
    neutralise_dtd,
    parse_feed,
    parse_feed_sync,
)

FETCHED_AT = datetime(2024, 7, 24, 12, 0, tzinfo=UTC)
FEED_URL = "https://news.example/ai/feed.xml"

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Example AI Desk</title>
  <link>https://news.example/ai/</link>
  <ttl>45</ttl>
  <item>
    <title>Meta ships Llama 3.1 &amp; its 405B model</title>
    <link>/ai/2024/07/llama-31?utm_source=rss</link>
    <guid isPermaLink="false">story-8812</guid>
    <dc:creator>A. Reporter</dc:creator>
    <pubDate>Tue, 23 Jul 2024 17:30:00 +0200</pubDate>
    <category>Llama</category><category>Open source</category><category>Llama</category>
    <description>&lt;p&gt;The largest open model yet, says
      &lt;a href="https://ai.meta.com/blog/"&gt;Meta&lt;/a&gt;.&lt;/p&gt;</description>
    <content:encoded><![CDATA[<p>Meta released <b>Llama 3.1</b> on Tuesday.</p>
      <script>steal()</script><p>Read <a href="https://example.org/405b">more</a>.</p>]]>
    </content:encoded>
  </item>
  <item>
    <title>No date on this one</title>
    <link>javascript:alert(1)</link>
    <description>plain words</description>
  </item>
  <item>
    <title>From the future</title>
    <pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate>
  </item>
  <item>
    <title>From the distant past</title>
    <pubDate>Mon, 01 Jan 1990 00:00:00 GMT</pubDate>
  </item>
  <item>
    <title>Slightly ahead clock</title>
    <pubDate>Wed, 24 Jul 2024 18:00:00 GMT</pubDate>
  </item>
</channel>
</rss>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="text">Atom desk</title>
  <link href="https://atom.example/"/>
  <entry>
    <id>urn:uuid:5e0c</id>
    <title type="html">Zuckerberg sets an &lt;em&gt;AGI&lt;/em&gt; goal</title>
    <link href="https://atom.example/agi"/>
    <updated>2024-01-18T20:00:00-05:00</updated>
    <author><name>B. Writer</name></author>
    <summary type="text">FAIR moves closer to the product group.</summary>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">
      <p>Meta plans about 350,000 H100 GPUs by the end of 2024.</p></div></content>
  </entry>
</feed>
"""


def parse(body: bytes, content_type: str | None = "application/rss+xml") -> ParsedFeed:
    return parse_feed_sync(body, url=FEED_URL, content_type=content_type, fetched_at=FETCHED_AT)


def all_text(feed: ParsedFeed) -> str:
    parts = [feed.title, feed.problem or ""]
    for entry in feed.entries:
        parts += [entry.title, entry.author or "", entry.summary_text, entry.content_text]
        parts += [*entry.categories, *entry.links, entry.link or "", entry.guid or ""]
    return "\n".join(parts)


def test_rss_feed_and_first_entry() -> None:
    feed = parse(RSS)
    assert (feed.title, feed.link, feed.ttl_minutes, feed.problem) == (
        "Example AI Desk",
        "https://news.example/ai/",
        45,
        None,
    )
    entry = feed.entries[0]
    assert entry.guid == "story-8812"
    assert entry.link == "https://news.example/ai/2024/07/llama-31?utm_source=rss"
    assert entry.title == "Meta ships Llama 3.1 & its 405B model"
    assert entry.author == "A. Reporter"
    assert entry.published == datetime(2024, 7, 23, 15, 30, tzinfo=UTC)
    assert entry.published_was_missing is False
    assert entry.summary_text == "The largest open model yet, says Meta."
    assert entry.content_text == "Meta released Llama 3.1 on Tuesday.\n\nRead more."
    assert entry.links == ("https://ai.meta.com/blog/", "https://example.org/405b")
    assert entry.categories == ("Llama", "Open source")


def test_dates_missing_future_and_ancient_fall_back_to_fetch_time() -> None:
    entries = {entry.title: entry for entry in parse(RSS).entries}
    for title in ("No date on this one", "From the future", "From the distant past"):
        assert entries[title].published == FETCHED_AT, title
        assert entries[title].published_was_missing, title
    ahead = entries["Slightly ahead clock"]
    assert ahead.published == datetime(2024, 7, 24, 18, 0, tzinfo=UTC)
    assert not ahead.published_was_missing
    assert entries["No date on this one"].link is None
    assert entries["No date on this one"].guid is None


def test_atom_entry_with_html_title_and_xhtml_content() -> None:
    feed = parse(ATOM, "application/atom+xml")
    entry = feed.entries[0]
    assert entry.title == "Zuckerberg sets an AGI goal"
    assert entry.guid == "urn:uuid:5e0c"
    assert entry.published == datetime(2024, 1, 19, 1, 0, tzinfo=UTC)
    assert entry.published.tzinfo is UTC
    assert entry.author == "B. Writer"
    assert entry.summary_text == "FAIR moves closer to the product group."
    assert entry.content_text == "Meta plans about 350,000 H100 GPUs by the end of 2024."


def test_naive_fetch_time_is_taken_as_utc() -> None:
    feed = parse_feed_sync(
        RSS, url=FEED_URL, content_type=None, fetched_at=datetime(2024, 7, 24, 12, 0)
    )
    assert feed.entries[1].published == FETCHED_AT


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/rss+xml"),
        (b"<html><body><p>Not a feed</p></body></html>", "text/html"),
        (bytes(range(256)) * 40, "application/octet-stream"),
        (RSS[: len(RSS) // 2], "application/rss+xml"),
        (RSS.replace(b"</title>", b"</titel>", 1), "application/rss+xml"),
        (b"<?xml version='1.0'?><rss><channel><item><title>x" * 1000, None),
    ],
)
def test_broken_input_is_recorded_not_raised(body: bytes, content_type: str | None) -> None:
    feed = parse(body, content_type)
    assert feed.bozo
    assert "Traceback" not in (feed.problem or "")
    assert len(feed.problem or "") <= 300


def test_truncated_feed_still_yields_complete_entries() -> None:
    feed = parse(RSS[: RSS.index(b"<title>From the future")])
    assert feed.bozo
    assert feed.entries[0].title == "Meta ships Llama 3.1 & its 405B model"


def _billion_laughs(one_line: bool) -> bytes:
    sep = "" if one_line else "\n"
    levels = [f'<!ENTITY lol0 "{"lol" * 10}">']
    levels += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return (
        f'<?xml version="1.0"?>{sep}<!DOCTYPE rss [{sep}{sep.join(levels)}{sep}]>{sep}'
        '<rss version="2.0"><channel><title>&lol9;</title>'
        "<item><title>laugh &lol9;</title><description>&lol9;&lol9;</description></item>"
        "</channel></rss>"
    ).encode()


@pytest.mark.parametrize("one_line", [True, False])
def test_billion_laughs_is_parsed_in_bounded_time_and_memory(one_line: bool) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    feed = parse(_billion_laughs(one_line))
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 2.0
    assert peak < 20 * 1024 * 1024
    assert "lollollol" not in all_text(feed)
    assert feed.bozo


def test_quadratic_blowup_entity_is_not_expanded() -> None:
    body = (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "' + "A" * 100_000 + '">\n]>\n'
        '<rss version="2.0"><channel><title>t</title><item><title>big</title><description>'
        + "&a;" * 1_000
        + "</description></item></channel></rss>"
    ).encode()
    tracemalloc.start()
    started = time.perf_counter()
    feed = parse(body)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 5.0
    assert peak < 50 * 1024 * 1024
    assert "AAAAAAAA" not in all_text(feed)


XXE_VARIANTS = [
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<rss version='2.0'><channel><title>&xxe;</title>"
    "<item><title>a &xxe;</title><description>&xxe;</description></item></channel></rss>",
    '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
    "<rss version='2.0'><channel><title>&xxe;</title>"
    "<item><title>a &xxe;</title><description>&xxe;</description></item></channel></rss>",
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % ext SYSTEM "file:///etc/passwd"> %ext;]>'
    "<rss version='2.0'><channel><title>t</title><item><title>p</title></item></channel></rss>",
    '<?xml version="1.0"?><!DOCTYPE rss SYSTEM "file:///etc/passwd">'
    "<rss version='2.0'><channel><title>t</title><item><title>s</title></item></channel></rss>",
]


@pytest.mark.parametrize("document", XXE_VARIANTS)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_external_entities_never_reach_output(document: str, encoding: str) -> None:
    passwd = Path("/etc/passwd").read_text()
    body = document.replace('"1.0"?>', f'"1.0" encoding="{encoding}"?>', 1).encode(encoding)
    feed = parse(body, None)
    text = all_text(feed)
    assert "root:" not in text
    assert passwd.splitlines()[0] not in text
    assert feed.entries, "the rest of the feed should still be read"


def test_safe_internal_entities_are_kept() -> None:
    body = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY co "Meta Platforms">\n'
        b'<!ENTITY cr "&#169;">\n<!ENTITY bad "&co;&co;">\n]>\n'
        b"<rss version='2.0'><channel><title>&co; &cr;</title>"
        b"<item><title>x</title></item></channel></rss>"
    )
    cleaned, problem = neutralise_dtd(body)
    assert b"&co;&co;" not in cleaned
    assert problem is not None
    assert parse(body).title.startswith("Meta Platforms")


def test_feed_without_dtd_is_untouched() -> None:
    assert neutralise_dtd(RSS) == (RSS, None)


def test_oversized_body_is_refused() -> None:
    feed = parse(b" " * (20 * 1024 * 1024 + 1))
    assert feed.entries == ()
    assert "limit" in (feed.problem or "")


def test_result_is_plain_picklable_data() -> None:
    feed = parse(RSS)
    assert pickle.loads(pickle.dumps(feed)) == feed
    assert type(feed.entries[0].published) is datetime


async def test_parse_feed_runs_in_default_thread_pool() -> None:
    feed = await parse_feed(RSS, url=FEED_URL, content_type=None, fetched_at=FETCHED_AT)
    assert feed == parse(RSS, None)


async def test_parse_feed_in_process_pool_matches_in_process_result() -> None:
    with make_parse_executor("process", workers=2) as pool:
        feeds = await asyncio.gather(
            *(
                parse_feed(
                    RSS, url=FEED_URL, content_type=None, fetched_at=FETCHED_AT, executor=pool
                )
                for _ in range(40)
            )
        )
    assert all(feed == parse(RSS, None) for feed in feeds)


async def test_event_loop_stays_responsive_while_parsing() -> None:
    # Big enough that parsing spans many of the interpreter's 5 ms thread switches, however
    # fast the parser gets: the loop must tick between them.
    big = RSS.replace(b"<item>", b"<item>" + b"<category>x</category>" * 2000)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    with make_parse_executor("thread", workers=2) as pool:
        results = await asyncio.gather(
            *(
                parse_feed(
                    big, url=FEED_URL, content_type=None, fetched_at=FETCHED_AT, executor=pool
                )
                for _ in range(8)
            )
        )
    task.cancel()
    assert all(len(feed.entries) == 5 for feed in results)
    assert ticks > 8


def test_fetch_time_with_offset_is_normalised_to_utc() -> None:
    berlin = FETCHED_AT.astimezone(timezone(timedelta(hours=2)))
    feed = parse_feed_sync(RSS, url=FEED_URL, content_type=None, fetched_at=berlin)
    undated = feed.entries[1]
    assert undated.published == FETCHED_AT
    assert undated.published.utcoffset() == timedelta(0)


def test_unknown_executor_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        make_parse_executor("fibre")


@pytest.mark.parametrize("body", [RSS, ATOM], ids=["rss", "atom"])
def test_fast_path_and_feedparser_agree(body: bytes) -> None:
    fast = parse(body)
    slow = parse_feed_sync(
        body,
        url=FEED_URL,
        content_type="application/rss+xml",
        fetched_at=FETCHED_AT,
        fast=False,
    )
    assert fast == slow


@pytest.mark.parametrize(
    "fields",
    [
        (2024, 7, 24, 12, 0, 0),
        (2024, 2, 29, 23, 59, 59),
        (2023, 2, 29, 0, 0, 0),  # no such day: timegm rolls it over
        (2024, 7, 24, 12, 0, 60),  # a leap second
        (1970, 1, 1, 0, 0, 0),
        (1, 1, 1, 0, 0, 0),
        (9999, 12, 31, 23, 59, 59),
        (10000, 1, 1, 0, 0, 0),
        (2024, 13, 1, 0, 0, 0),
        (2024, 7, 24.5, 12, 0, 0),
    ],
)
def test_time_tuples_convert_as_timegm_and_fromtimestamp_convert_them(
    fields: tuple[float, ...],
) -> None:
    value = time.struct_time((*fields, 0, 1, 0))
    try:
        expected: datetime | None = datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        expected = None
    assert parse_module._struct_to_utc(value) == expected

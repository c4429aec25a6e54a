"""The fast RSS/Atom path (bot.feedxml) gives exactly what the feedparser path gives.

Whenever the fast path accepts a feed, ``parse_feed_sync`` must return the same
ParsedFeed as with ``fast=False`` (feedparser): checked over feedparser's whole test
corpus, the bundled samples, the benchmark feeds and generated feeds. Everything it
does not reproduce exactly it must decline, and hostile input must stay harmless.
"""

from __future__ import annotations

import io
import re
import time
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from functools import cache
from pathlib import Path

import feedparser
import pytest
from feedparser.datetimes import _parse_date
from feedparser.sanitizer import _sanitize_html
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.ingest import make_feed
from bot import feedxml, htmltext
from bot.parse import ParsedFeed, parse_feed_sync
from bot.samples import sample_files

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "feedparser-tests"
FETCHED_AT = datetime(2024, 7, 24, 12, 0, tzinfo=UTC)
FEED_URL = "https://news.example/ai/feed.xml"
DANGER = re.compile(r"<\s*script|javascript\s*:|\bon[a-z]+\s*=", re.IGNORECASE)


def parse_both(
    body: bytes, content_type: str | None = "application/rss+xml", url: str = FEED_URL
) -> tuple[ParsedFeed, ParsedFeed]:
    """(feedparser path, default path) for one body."""
    slow, fast = (
        parse_feed_sync(
            body, url=url, content_type=content_type, fetched_at=FETCHED_AT, fast=use_fast
        )
        for use_fast in (False, True)
    )
    return slow, fast


def accepted(body: bytes, content_type: str | None = "application/rss+xml") -> bool:
    return feedxml.parse(body, url=FEED_URL, content_type=content_type) is not None


def texts_of(feed: ParsedFeed) -> list[str]:
    texts = [feed.title, feed.link or "", feed.problem or ""]
    for entry in feed.entries:
        texts += [entry.title, entry.author or "", entry.summary_text, entry.content_text]
        texts += [*entry.categories, *entry.links, entry.link or "", entry.guid or ""]
    return texts


@cache
def corpus_files() -> tuple[Path, ...]:
    if not CORPUS.is_dir():
        pytest.fail(
            f"feedparser test corpus not found at {CORPUS}; "
            "it is expected in ../shared/corpus/feedparser-tests beside the repository"
        )
    files = tuple(sorted(CORPUS.rglob("*.xml")))
    assert len(files) > 2000, f"corpus at {CORPUS} looks incomplete ({len(files)} files)"
    return files


@cache
def corpus_html() -> tuple[str, ...]:
    """Every title, summary and content value of the corpus, sanitised and not."""
    values: list[str] = []
    for path in corpus_files():
        for sanitize in (False, True):
            raw = feedparser.parse(
                io.BytesIO(path.read_bytes()), sanitize_html=sanitize, resolve_relative_uris=False
            )
            for item in [raw.get("feed", {}), *raw.get("entries", [])]:
                found = [item.get("title"), item.get("summary")]
                found += [block.get("value") for block in item.get("content", [])]
                values += [value for value in found if isinstance(value, str)]
    return tuple(dict.fromkeys(values))


# --- equivalence ---------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/xml"])
def test_every_corpus_feed_the_fast_path_accepts_parses_as_with_feedparser(
    content_type: str | None,
) -> None:
    taken = 0
    for path in corpus_files():
        body = path.read_bytes()
        if not accepted(body, content_type):
            continue
        taken += 1
        slow, fast = parse_both(body, content_type, url=f"https://corpus.example/{path.name}")
        assert fast == slow, path.relative_to(CORPUS)
    # Measured: 833 of 2106 files without a content type (the corpus is mostly edge
    # cases: Atom 0.3, RSS 1.0, CDF, xml:base, broken XML...); text/xml means ASCII.
    assert taken > (700 if content_type is None else 550), taken


def test_bundled_samples_take_the_fast_path_and_parse_identically() -> None:
    files = sample_files()
    assert len(files) >= 8
    for path in files:
        body = path.read_bytes()
        assert accepted(body), path.name
        slow, fast = parse_both(body)
        assert fast == slow, path.name
        assert fast.entries


def test_benchmark_feeds_take_the_fast_path_and_parse_identically() -> None:
    for n in range(0, 200, 20):
        body = make_feed(n, 50)
        assert accepted(body), n
        slow, fast = parse_both(body)
        assert fast == slow, n
        assert len(fast.entries) == 50


COMMON_RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
  xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"
  xmlns:slash="http://purl.org/rss/1.0/modules/slash/" xmlns:wfw="http://wellformedweb.org/commentAPI/"
  xmlns:media="http://search.yahoo.com/mrss/" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
<channel>
  <title>AI Desk &#8211; News</title>
  <atom:link href="https://desk.example/feed/" rel="self" type="application/rss+xml" />
  <link>https://desk.example</link>
  <description>Daily AI news</description>
  <lastBuildDate>Tue, 23 Jul 2024 18:00:00 +0000</lastBuildDate>
  <language>en-US</language>
  <sy:updatePeriod>hourly</sy:updatePeriod>
  <ttl>30</ttl>
  <image><url>https://desk.example/logo.png</url><title>AI Desk</title>
    <link>https://desk.example</link><width>32</width></image>
  <item>
    <title>Meta&#8217;s Llama 3.1 &amp; the 405B model</title>
    <link>https://desk.example/2024/07/llama-31/?utm_source=rss&amp;utm_medium=rss</link>
    <comments>https://desk.example/2024/07/llama-31/#respond</comments>
    <dc:creator><![CDATA[A. Reporter]]></dc:creator>
    <pubDate>Tue, 23 Jul 2024 17:30:00 +0200</pubDate>
    <category><![CDATA[Llama]]></category><category domain="tag">Open source</category>
    <guid isPermaLink="false">https://desk.example/?p=8812</guid>
    <description><![CDATA[<p>The largest open model yet, says
<a href="https://ai.meta.com/blog/">Meta</a>.</p>
<p>The post <a href="https://desk.example/2024/07/llama-31/">Llama 3.1</a>
appeared first.</p>]]></description>
    <content:encoded><![CDATA[<p>Meta released <b>Llama 3.1</b> on Tuesday.</p>
<figure><img src="https://desk.example/a.png" alt="chart" width="640" height="480"/>
<figcaption>Chart</figcaption></figure>
<p>Read <a href="/2024/07/more/" rel="nofollow">more</a>&hellip;</p>]]></content:encoded>
    <wfw:commentRss>https://desk.example/2024/07/llama-31/feed/</wfw:commentRss>
    <slash:comments>4</slash:comments>
    <media:thumbnail url="https://desk.example/t.png" width="150" height="150"/>
    <enclosure url="https://desk.example/a.mp3" length="1" type="audio/mpeg"/>
  </item>
  <item>
    <title>Zuckerberg: &lt;em&gt;AGI&lt;/em&gt; is the goal</title>
    <link>https://desk.example/2024/01/agi/</link>
    <guid>https://desk.example/2024/01/agi/</guid>
    <dc:date>2024-01-18T20:00:00-05:00</dc:date>
    <description>FAIR moves closer to the product group.</description>
  </item>
</channel>
</rss>
"""

COMMON_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
  <title type="text">Atom desk</title>
  <subtitle>News</subtitle>
  <id>tag:atom.example,2024:feed</id>
  <link rel="self" href="https://atom.example/feed.atom"/>
  <link rel="alternate" type="text/html" href="https://atom.example/"/>
  <updated>2024-01-19T08:00:00Z</updated>
  <author><name>Desk</name></author>
  <entry>
    <id>urn:uuid:5e0c</id>
    <title type="html">Zuckerberg sets an &lt;em&gt;AGI&lt;/em&gt; goal</title>
    <link href="https://atom.example/agi"/>
    <link rel="related" href="https://atom.example/other"/>
    <published>2024-01-18T20:00:00-05:00</published>
    <updated>2024-01-19T01:00:00Z</updated>
    <author><name>B. Writer</name><email>b@atom.example</email>
      <uri>https://atom.example/b</uri></author>
    <category term="AGI" scheme="https://atom.example/tags"/>
    <category term="FAIR" label="FAIR lab"/>
    <summary type="text">FAIR moves closer to the product group.</summary>
    <content type="html">&lt;p&gt;Meta plans about &lt;b&gt;350,000&lt;/b&gt;
      H100 GPUs.&lt;/p&gt;</content>
  </entry>
  <entry>
    <id>https://atom.example/second</id>
    <title>Second</title>
    <updated>2024-01-17T09:30:00+01:00</updated>
    <content type="text">Plain words only.</content>
  </entry>
</feed>
"""


@pytest.mark.parametrize("body", [COMMON_RSS, COMMON_ATOM], ids=["rss", "atom"])
def test_common_feed_shapes_take_the_fast_path(body: bytes) -> None:
    assert accepted(body)
    slow, fast = parse_both(body)
    assert fast == slow
    assert fast.problem is None and len(fast.entries) == 2 and fast.entries[0].title


# Each of these is something the fast path must hand to feedparser.
DECLINED = {
    "doctype": b'<?xml version="1.0"?><!DOCTYPE rss><rss version="2.0"><channel>'
    b"<title>t</title></channel></rss>",
    "xml:base": b'<rss version="2.0"><channel xml:base="https://b.example/"><title>t</title>'
    b"<item><link>/x</link></item></channel></rss>",
    "xhtml content": b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><content type="xhtml">'
    b'<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div></content></entry></feed>',
    "base64 content": b'<feed xmlns="http://www.w3.org/2005/Atom"><entry>'
    b'<content type="application/octet-stream">aGk=</content></entry></feed>',
    "atom 0.3": b'<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>t</title></feed>',
    "rss 1.0": b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
    b'xmlns="http://purl.org/rss/1.0/"><channel><title>t</title></channel></rdf:RDF>',
    "unknown root": b"<html><body><p>not a feed</p></body></html>",
    "markup in title": b'<rss version="2.0"><channel><item><title>a <b>b</b></title></item>'
    b"</channel></rss>",
    "media:title": b'<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
    b"<item><media:title>m</media:title></item></channel></rss>",
    "two authors": b'<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
    b"<item><author>a@x.example</author><dc:creator>B</dc:creator></item></channel></rss>",
    "itunes": b'<rss version="2.0" xmlns:itunes="http://www.itunes.com/DTDs/PodCast-1.0.dtd">'
    b"<channel><item><itunes:summary>s</itunes:summary></item></channel></rss>",
    "misdeclared encoding": '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
    "<title>caf\u00e9</title></channel></rss>".encode("latin-1"),
    "unknown element named like a field": b'<rss version="2.0"><channel><item>'
    b"<published_parsed>x</published_parsed></item></channel></rss>",
    "not well-formed": b'<rss version="2.0"><channel><title>t</titel></channel></rss>',
    "truncated": COMMON_RSS[: len(COMMON_RSS) // 2],
}


@pytest.mark.parametrize("name", DECLINED)
def test_what_the_fast_path_does_not_reproduce_goes_to_feedparser(name: str) -> None:
    body = DECLINED[name]
    assert not accepted(body)
    slow, default = parse_both(body)
    assert default == slow


# --- hostile input -------------------------------------------------------------------------


def billion_laughs() -> bytes:
    levels = [f'<!ENTITY lol0 "{"lol" * 10}">']
    levels += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n{chr(10).join(levels)}\n]>\n'
        '<rss version="2.0"><channel><title>&lol9;</title>'
        "<item><title>laugh &lol9;</title><description>&lol9;</description></item>"
        "</channel></rss>"
    ).encode()


EXTERNAL_ENTITIES = [
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<rss version='2.0'><channel><title>&xxe;</title><item><title>a</title></item>"
    b"</channel></rss>",
    b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "file:///etc/passwd">'
    b"<rss version='2.0'><channel><title>t</title><item><title>s</title></item></channel></rss>",
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % ext SYSTEM "file:///etc/passwd"> %ext;]>'
    b"<rss version='2.0'><channel><title>t</title><item><title>p</title></item></channel></rss>",
]


def test_billion_laughs_is_declined_and_stays_bounded() -> None:
    body = billion_laughs()
    assert not accepted(body)
    tracemalloc.start()
    started = time.process_time()
    feed = parse_feed_sync(body, url=FEED_URL, content_type=None, fetched_at=FETCHED_AT)
    elapsed = time.process_time() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 2.0 and peak < 20 * 1024 * 1024
    assert feed.bozo
    assert not any("lollollol" in text for text in texts_of(feed))


@pytest.mark.parametrize("body", EXTERNAL_ENTITIES)
def test_external_entity_declarations_are_declined(body: bytes) -> None:
    assert not accepted(body)
    feed = parse_feed_sync(body, url=FEED_URL, content_type=None, fetched_at=FETCHED_AT)
    assert feed.entries
    assert not any("root:" in text for text in texts_of(feed))


def test_entity_references_without_their_declaration_are_declined() -> None:
    body = b"<rss version='2.0'><channel><title>&xxe;</title><item/></channel></rss>"
    assert not accepted(body)
    slow, default = parse_both(body)
    assert default == slow


def test_malformed_xml_falls_back_and_the_problem_is_recorded_as_before() -> None:
    body = COMMON_RSS.replace(b"</title>", b"</titel>", 1)
    assert not accepted(body)
    slow, default = parse_both(body)
    assert default == slow
    assert default.bozo and default.problem and "Traceback" not in default.problem
    assert default.entries, "feedparser's loose parser still reads the entries"


HOSTILE_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>&lt;script&gt;alert(1)&lt;/script&gt;Desk</title><link>javascript:alert(1)</link>
<item>
  <title>&lt;img src=x onerror=alert(1)&gt;Headline</title>
  <link>javascript:alert(document.cookie)</link>
  <description>&lt;p&gt;Hello&lt;script&gt;steal()&lt;/script&gt; &lt;a href="javascript:x()"
    onclick="x()"&gt;click&lt;/a&gt;
    &amp;lt;script&amp;gt;escaped()&amp;lt;/script&amp;gt;&lt;/p&gt;
  </description>
  <content:encoded><![CDATA[<p onmouseover="x()">Body</p><script>alert(2)</script>
    <iframe src="javascript:alert(3)"></iframe><p>java&#x09;script:void(0) tail</p>]]>
  </content:encoded>
  <category>&lt;script&gt;c&lt;/script&gt;</category>
</item>
</channel></rss>
"""


def test_script_in_a_description_never_survives_the_fast_path() -> None:
    assert accepted(HOSTILE_RSS)
    slow, fast = parse_both(HOSTILE_RSS)
    assert fast == slow
    entry = fast.entries[0]
    assert "Hello" in entry.summary_text and "Body" in entry.content_text
    dangerous = [text for text in texts_of(fast) if DANGER.search(text)]
    assert not dangerous
    assert fast.link is None and entry.link is None


# --- generated feeds -----------------------------------------------------------------------

TEXTS = st.sampled_from(
    [
        "Meta ships Llama",
        "  spaced   out  ",
        "AT&amp;T &amp; co",
        "&lt;b&gt;bold&lt;/b&gt; text",
        "&lt;p&gt;one&lt;/p&gt;&lt;p&gt;two &lt;a href='/r'&gt;rel&lt;/a&gt;&lt;/p&gt;",
        "&lt;P CLASS='x'&gt;Upper&lt;br/&gt;&lt;/P&gt;",
        "&lt;script&gt;alert(1)&lt;/script&gt;x",
        "<![CDATA[<p>cdata <b>html</b> &amp; &nbsp;</p>]]>",
        "caf\u00e9",
        "caf\u00c3\u00a9",
        "\u0093quoted\u0094",
        "&#8217;curly&#x2019; &#150;",
        "",
        "https://example.org/a?b=1&amp;c=2",
        "/relative/path",
        "urn:uuid:1234",
        "Tue, 23 Jul 2024 17:30:00 +0200",
        "2024-01-18T20:00:00Z",
        "Fri, 31 Nov 2024 00:00:00 GMT",
        "23 Jul 2024",
        "45",
        "Name &lt;a@b.example&gt;",
        "Q&amp;A;",
    ]
)
ATTRS = st.sampled_from(
    [
        "",
        ' type="html"',
        ' type="text"',
        ' type="xhtml"',
        ' rel="alternate"',
        ' rel="self"',
        ' href="https://x.example/a"',
        ' href="/rel"',
        ' isPermaLink="false"',
        ' term="T"',
        ' domain="d"',
        ' xml:lang="en"',
        ' url="https://u.example/"',
    ]
)
ENTRY_TAGS = st.sampled_from(
    [
        "title", "link", "guid", "id", "description", "summary", "content", "content:encoded",
        "dc:creator", "dc:date", "pubDate", "published", "updated", "category", "dc:subject",
        "comments", "enclosure", "source", "media:content", "media:thumbnail", "atom:link",
        "dc:title", "ttl", "rights", "keywords", "author", "x:thing", "media:title",
    ]
)  # fmt: skip
FEED_TAGS = st.sampled_from(
    [
        "title", "link", "description", "subtitle", "ttl", "language", "lastBuildDate",
        "updated", "generator", "atom:link", "category", "id", "x:thing", "dc:title", "author",
    ]
)  # fmt: skip


@st.composite
def elements(draw: st.DrawFn, tags: st.SearchStrategy[str]) -> str:
    tag, attrs = draw(tags), draw(ATTRS)
    if tag == "author" and draw(st.booleans()):
        return f"<author><name>{draw(TEXTS)}</name><email>e@x.example</email></author>"
    return f"<{tag}{attrs}>{draw(TEXTS)}</{tag}>"


# Whole elements in the orders and repetitions where feedparser's rules get subtle:
# which title or link wins, description vs. summary vs. content, guid as link, image.
ENTRY_PIECES = [
    "<title>T1</title>", "<title></title>", "<title type='html'>&lt;b&gt;H&lt;/b&gt;</title>",
    "<description>&lt;p&gt;D2&lt;/p&gt;</description>", "<description></description>",
    "<summary type='html'>&lt;i&gt;S2&lt;/i&gt;</summary>", "<content>C1</content>",
    "<content:encoded>&lt;p&gt;E1&lt;/p&gt;</content:encoded>", "<link>/rel/2</link>",
    "<link href='https://a.example/3'/>", "<link rel='self' href='https://a.example/4'/>",
    "<atom:link rel='alternate' href='https://a.example/5'/>", "<guid>rel-guid</guid>",
    "<guid isPermaLink='false'>g2</guid>", "<id>urn:x:1</id>", "<dc:creator>B</dc:creator>",
    "<author><name>N</name><email>e@x.example</email></author>", "<author><uri>u</uri></author>",
    "<source url='https://s.example/'>Src</source>", "<pubDate>bad</pubDate>",
    "<category domain='d'></category>", "<category term='t'>c3</category>", "<category/>",
    "<media:group><media:content url='u'/><media:thumbnail url='t'/></media:group>",
    "<contributor><name>C</name></contributor>", "<x:thing><x:inner>z</x:inner></x:thing>",
]  # fmt: skip
FEED_PIECES = [
    "<title>F1</title>", "<title></title>", "<title type='html'>&lt;em&gt;F&lt;/em&gt;</title>",
    "<link>https://f.example/</link>", "<link href='https://f.example/h'/>", "<id>urn:f</id>",
    "<ttl a='1'/>", "<image><title>IT</title><link>https://i.example/</link><url>u</url></image>",
    "<image><language>en</language><title>IT2</title><link>https://i2.example/</link></image>",
    "<textInput><title>TT</title><name>n</name><link>https://t.example/</link></textInput>",
    "<author><name>FA</name></author>", "<dc:title>DT</dc:title>",
]  # fmt: skip


@st.composite
def feeds(draw: st.DrawFn) -> bytes:
    atom = draw(st.booleans())
    tag = "entry" if atom else "item"
    entry_parts = st.one_of(st.sampled_from(ENTRY_PIECES), elements(ENTRY_TAGS))
    feed_parts = st.one_of(st.sampled_from(FEED_PIECES), elements(FEED_TAGS))
    entries = [
        f"<{tag}>{''.join(draw(st.lists(entry_parts, min_size=1, max_size=8)))}</{tag}>"
        for _ in range(draw(st.integers(0, 3)))
    ]
    parts = draw(st.permutations(draw(st.lists(feed_parts, max_size=6)) + entries))
    namespaces = (
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:x="urn:x"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:media="http://search.yahoo.com/mrss/" xmlns:atom="http://www.w3.org/2005/Atom"'
    )
    if atom:
        document = f'<feed xmlns="http://www.w3.org/2005/Atom"{namespaces}>'
        document += "".join(parts) + "</feed>"
    else:
        document = f'<rss version="2.0"{namespaces}><channel>'
        document += "".join(parts) + "</channel></rss>"
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + document).encode()


@settings(max_examples=250, deadline=None)
@given(feeds())
def test_generated_feeds_parse_identically_when_accepted(body: bytes) -> None:
    if accepted(body):
        slow, fast = parse_both(body)
        assert fast == slow


# --- the pieces the fast path decides on its own -------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.none()
    ),
    st.integers(-14 * 60, 14 * 60),
)
def test_common_date_shapes_parse_as_feedparser_does(moment: datetime, offset: int) -> None:
    zone = timezone(timedelta(minutes=offset))
    stamp = moment.replace(microsecond=0, tzinfo=zone)
    shapes = [
        format_datetime(stamp),
        format_datetime(stamp.astimezone(UTC), usegmt=True),
        stamp.isoformat(),
        stamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        stamp.isoformat().replace("T", " "),
        format_datetime(stamp).replace(" 0", " 9", 1),
    ]
    for shape in shapes:
        assert feedxml.parse_date(shape) == _parse_date(shape), shape


@pytest.mark.parametrize(
    "value",
    [
        "Fri, 31 Nov 2024 00:00:00 GMT",
        "2024-02-30T00:00:00Z",
        "Mon, 01 Jan 0001 00:00:00 +0100",
        "9999-12-31T23:59:59-01:00",
        "Tue, 23 Jul 2024 17:30:00 +9999",
        "2024-07-23T17:30:00+05:99",
        "tue, 23 jul 2024 17:30:00 gmt",
        "",
    ],
)
def test_odd_dates_parse_as_feedparser_does(value: str) -> None:
    assert feedxml.parse_date(value) == _parse_date(value)


def extracted(markup: str, limit: int) -> tuple[str, tuple[str, ...]]:
    result = htmltext.extract(markup, limit=limit, base_url=FEED_URL)
    return result.text, result.links


def assert_sanitiser_is_neutral(markup: str) -> None:
    for field, limit in (("title", 1000), ("summary", 2000)):
        if feedxml.is_inert(markup, feedxml.INERT_LIMITS[field]):
            cleaned = _sanitize_html(markup, "utf-8", "text/html")
            raw, sanitised = feedxml.fix_characters(markup), feedxml.fix_characters(cleaned)
            assert extracted(raw, limit) == extracted(sanitised, limit), markup


def test_markup_left_unsanitised_extracts_as_if_sanitised_over_the_corpus() -> None:
    inert = 0
    for markup in corpus_html():
        assert_sanitiser_is_neutral(markup.strip())
        inert += feedxml.is_inert(markup.strip(), feedxml.INERT_LIMITS["summary"])
    assert inert > 700  # measured: 746 of the corpus's 888 distinct values


MARKUP_PIECES = [
    "<p>", "</p>", "<P>", "<br>", "<br/>", "<br />", "</br>", "<hr>", "</hr>", "<b>", "</b>",
    "<td>", "<td/>", "<pre>", "</pre>", "<a href=\"https://a.example/\">",
    "<a href='/rel' title=\"t\">", '<a href="javascript:x" href="https://ok.example/">', "</a>",
    "<img src=\"x.png\" alt=\"caf\u00e9\">", '<span style="color:red">', "<iframe>",
    "</iframe>", "<script>", "<noscript>", "&amp;", "&nbsp;", "&#150;", "&#39;", "&AMP;",
    "&bogus;", "&", "word", " ", "\n", "\t", "\r", "caf\u00c3\u00a9", "\u0093", "\xa0", ":", "=",
]  # fmt: skip
MARKUP = st.lists(st.sampled_from(MARKUP_PIECES), max_size=20).map("".join)


@settings(max_examples=400, deadline=None)
@given(MARKUP)
def test_markup_left_unsanitised_extracts_as_if_sanitised(markup: str) -> None:
    assert_sanitiser_is_neutral(markup.strip())


# --- the HTML fast path ----------------------------------------------------------------------


def walked(markup: str, *, fast: bool) -> tuple[list[str], list[str]] | None:
    """The text pieces and links the extraction collects, by either tokeniser."""
    if fast:
        sink = htmltext._TextSink(base_url=FEED_URL, inline_links=True)
        return (sink.parts, sink.links) if htmltext._walk_simple(markup, sink) else None
    walker = htmltext._TextWalker(base_url=FEED_URL, inline_links=True)
    walker.feed(markup)
    walker.close()
    return walker.parts, walker.links


def test_simple_markup_walks_as_html_parser_walks_it_over_the_corpus() -> None:
    taken = 0
    for markup in corpus_html():
        fast = walked(markup, fast=True)
        if fast is not None:
            taken += 1
            assert fast == walked(markup, fast=False), markup
    assert taken > 800  # measured: 832 of the corpus's 888 distinct values


@pytest.mark.parametrize(
    "markup",
    [
        "plain words &amp; entities &nbsp;&#8217;&#x2019;&bogus; AT&T",
        "<p>One</p><p>Two <b>bold <i>nested</i></b></p>",
        "<ul><li>a</li><li>b<br/>c</li></ul><hr><table><tr><td>x</td><td>y</td></tr></table>",
        "<a href=\"https://ai.meta.com/\">Meta</a> <a href='/relative'>rel</a> "
        '<a href="javascript:x">js</a><a href="">empty</a><a>none</a>',
        '<A HREF="https://x.example/" Title="t">upper</A>',
        "  lots \n of\t\twhitespace  <br>\n<br />  here\xa0and\u200bthere ",
        "<pre>keep\n  lines</pre> after",
        '<iframe>hidden</iframe><noscript>also</noscript>shown<img src="x"/>',
        "text with > and = and : in it",
        "<p>closing tags may end in spaces</p \n>",
    ],
)
def test_hand_written_markup_walks_as_html_parser_walks_it(markup: str) -> None:
    fast = walked(markup, fast=True)
    assert fast is not None
    assert fast == walked(markup, fast=False)


@pytest.mark.parametrize(
    "markup",
    [
        "<!-- comment --><p>x</p>",
        "<script>if (a < b) x()</script>",
        "<style>p > b {}</style>",
        "a < b",
        "<p class=unquoted>x</p>",
        '<a href="x?a=1&amp;b=2">entity in attribute</a>',
        "<![CDATA[x]]>",
        '</p class="x">',
        "</p/>",
        "<p>x</p >a < b",
        "<Style>p {}</Style>",
    ],
)
def test_markup_the_fast_tokeniser_does_not_take_goes_to_html_parser(markup: str) -> None:
    assert walked(markup, fast=True) is None
    reference = walked(markup, fast=False)
    assert reference is not None
    text = htmltext.extract(markup, base_url=FEED_URL, inline_links=True)
    assert text.links == tuple(reference[1])


UTF8_EDGE_BODIES = [
    b"<?xml version='1.0' encoding='UTF-8'?><rss/>",
    b"<?xml version='1.0' encoding=''?>\n<rss/>",
    b"<?xml version='1.0'?><rss>encoding='latin-1' ?></rss>",
    b"<?xml version='1.0'?>\n<rss>encoding='latin-1' ?></rss>",
    "<?xml version='1.0'?><rss>\u00e9</rss>".encode(),
    b"<rss>\xe9</rss>",
    b"<",
    b"<!DOCTYPE rss><rss/>",
    b"\xef\xbb\xbf<?xml version='1.0'?><rss/>",
    "<?xml version='1.0'?><rss/>".encode("utf-16-le"),
]


def test_plain_utf8_documents_convert_as_feedparser_converts_them() -> None:
    from feedparser.api import replace_doctype
    from feedparser.encodings import convert_to_utf8

    taken = 0
    bodies = [path.read_bytes() for path in corpus_files()] + UTF8_EDGE_BODIES
    content_types = ("application/xml", "application/rss+xml", "text/xml", "application/json")
    for body in bodies:
        for content_type in (*content_types, "application/atom+xml; charset=utf-8"):
            fast = feedxml._plain_utf8(body, content_type)
            result: dict[str, object] = {}
            slow = convert_to_utf8({"content-type": content_type}, body, result)
            if fast is not None:
                taken += 1
                assert fast == slow and result["encoding"] == "utf-8" and not result.get("bozo")
            if not feedxml._may_have_doctype(slow):
                assert replace_doctype(slow) == (None, slow, {})
    assert taken > 4000  # measured: 4102 of the corpus, and the edge bodies


@pytest.mark.parametrize(
    "url",
    [FEED_URL, "http://127.0.0.1:8080/feed?x=1", "https://a.example/../b/./c", "http://a.example"],
)
def test_a_plain_feed_url_is_its_own_base(url: str) -> None:
    from feedparser.urls import make_safe_absolute_uri

    assert htmltext.is_plain_url(url)
    assert make_safe_absolute_uri(url, url) == url
    assert feedxml._stable_base(url) == url


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_utc_time_tuple_is_what_datetime_gives(moment: datetime) -> None:
    fields = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    expected = moment.replace(microsecond=0).utctimetuple()
    made = feedxml._utc_time_tuple(fields, moment.weekday())
    assert made == expected
    assert (made.tm_zone, made.tm_gmtoff) == (expected.tm_zone, expected.tm_gmtoff)


INERT_PIECES = st.sampled_from(
    ["<p>", "</p>", "<br/>", "<p/>", "</br>", "<a href='x'>", '<a href="y" title="z">', "</a>",
     "<script>", "<b class='c' class='d'>", "<", ">", " ", "word", "&amp;", "&bogus;", "& ",
     "<img src=x>", "<P>", "</P >", "\r", "<!-- c -->", "<1>"]
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(st.lists(INERT_PIECES, max_size=12).map("".join))
def test_inert_means_every_bracket_opens_an_inert_tag(markup: str) -> None:
    # The definition the scan by "<" implements: as many inert-looking tags as "<".
    pattern = re.compile(feedxml._INERT_TAG.pattern)
    tags = pattern.findall(markup)
    plain = "\r" not in markup and ("&" not in markup or feedxml._entities_are_plain(markup))
    expected = plain and len(tags) == markup.count("<") and all(map(feedxml._tag_is_inert, tags))
    assert feedxml.is_inert(markup, 10_000) == expected

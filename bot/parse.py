"""Feed bytes -> ParsedFeed, with feedparser running in a worker pool.

``parse_feed_sync`` is what runs in the worker: it takes the raw body, defuses any
internal DTD subset, lets feedparser read it, and copies what we need into plain frozen
dataclasses (picklable, so a process pool can return them). Well-formed RSS 2.0 and
Atom 1.0 without a DTD first go through ``bot.feedxml``, which yields the same values
several times faster and hands anything it does not reproduce exactly back to
feedparser. Nothing from the feed is trusted: problems are recorded in
``ParsedFeed.problem``, never raised.
"""

from __future__ import annotations

import asyncio
import calendar
import io
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import feedparser

from bot import feedxml, htmltext
from bot.compiled import by_fields
from bot.htmltext import CONTENT_LIMIT, SUMMARY_LIMIT, TITLE_LIMIT

DEFAULT_WORKERS = 2
MAX_BODY_BYTES = 20 * 1024 * 1024
MAX_ENTRIES = 1_000
MAX_CATEGORIES = 30
AUTHOR_LIMIT = 200
CATEGORY_LIMIT = 100
GUID_LIMIT = 1_000
MAX_TTL_MINUTES = 7 * 24 * 60
EARLIEST_DATE = datetime(1995, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)
# Internal entities survive only as short literal text, so no expansion can grow.
ENTITY_VALUE_LIMIT = 64
_NO_TEXT = htmltext.ExtractedText("", ())


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    guid: str | None
    link: str | None
    title: str
    author: str | None
    published: datetime
    published_was_missing: bool  # True when ``published`` is the fetch time
    summary_text: str
    content_text: str
    links: tuple[str, ...]
    categories: tuple[str, ...]

    def __reduce__(self) -> tuple[type[Any], tuple[object, ...]]:
        return by_fields(self)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    url: str
    title: str
    link: str | None
    ttl_minutes: int | None
    entries: tuple[ParsedEntry, ...]
    problem: str | None  # feedparser's "bozo" text, or our own refusal

    def __reduce__(self) -> tuple[type[Any], tuple[object, ...]]:
        return by_fields(self)

    @property
    def bozo(self) -> bool:
        return self.problem is not None


# How much lower the parse workers' CPU priority is than the main process's (see
# _yield_to_main); 10 is what `nice` gives by default.
WORKER_NICENESS = 10


def make_parse_executor(kind: str = "process", workers: int | None = None) -> Executor:
    """The pool ``parse_feed`` should use; see bench/parse_pool.py for the figures.

    The default is a process pool: feedparser is pure Python, so threads add no throughput
    under the GIL and still take interpreter time from the event loop. Workers are spawned,
    never forked from a process that runs threads. (``max_tasks_per_child`` would recycle
    workers, but on Python 3.11 it can deadlock the pool once a worker retires: gh-115634.)
    """
    count = workers or min(DEFAULT_WORKERS, os.cpu_count() or 1)
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=count, thread_name_prefix="feed-parse")
    if kind != "process":
        raise ValueError(f"unknown executor kind {kind!r}")
    return ProcessPoolExecutor(
        max_workers=count,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_yield_to_main,
    )


def _yield_to_main() -> None:
    """Runs in each new worker: a lower CPU priority than the main process.

    The main process answers chat (a Slack command must be acknowledged within three
    seconds) and is ingest's only writer; when the workers fill every core, it should
    still get one at once. In a busy ingest the writer then keeps up with the workers
    instead of holding a backlog to store after the last feed is parsed.
    """
    os.nice(WORKER_NICENESS)


async def parse_feed(
    body: bytes,
    *,
    url: str,
    content_type: str | None,
    fetched_at: datetime,
    executor: Executor | None = None,
) -> ParsedFeed:
    """Parse off the event loop (``executor=None`` uses the loop's default thread pool)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        executor, _parse_positional, body, url, content_type, fetched_at
    )


def _parse_positional(
    body: bytes, url: str, content_type: str | None, fetched_at: datetime
) -> ParsedFeed:
    return parse_feed_sync(body, url=url, content_type=content_type, fetched_at=fetched_at)


def parse_feed_sync(
    body: bytes,
    *,
    url: str,
    content_type: str | None,
    fetched_at: datetime,
    fast: bool = True,
) -> ParsedFeed:
    """Parse one feed body; ``fast=False`` always uses feedparser (to compare the two)."""
    fetched_at = _as_utc(fetched_at)
    if len(body) > MAX_BODY_BYTES:
        return _empty(url, f"feed body of {len(body)} bytes is over the {MAX_BODY_BYTES} limit")
    if not body.strip():
        return _empty(url, "empty response body")
    cleaned, dtd_problem = neutralise_dtd(body)
    if fast and cleaned is body:  # no DTD or other declaration before the root
        raw = _parse_fast(body, url, content_type)
        if raw is not None:
            return _build(url, raw.feed, raw.entries, None, fetched_at)
    body = cleaned
    try:
        result = feedparser.parse(
            io.BytesIO(body),
            # Links are resolved by htmltext against the feed's base; feedparser's own
            # pass over every HTML field costs about a third of the parse time.
            resolve_relative_uris=False,
            # Kept on although htmltext alone defuses the whole sanitiser corpus: two layers.
            sanitize_html=True,
            response_headers={
                "content-type": content_type or "application/xml",
                "content-location": url,
            },
        )
    except Exception as exc:  # a hostile feed must not take the worker down
        return _empty(url, f"feed could not be parsed ({type(exc).__name__})")
    problems = [p for p in (dtd_problem, _bozo_text(result)) if p]
    feed = _get(result, "feed") or {}
    raw_entries = _get(result, "entries") or []
    return _build(url, feed, raw_entries, "; ".join(problems) or None, fetched_at)


def _parse_fast(body: bytes, url: str, content_type: str | None) -> feedxml.RawFeed | None:
    try:
        return feedxml.parse(body, url=url, content_type=content_type)
    except Exception:  # the fast path is an optimisation: any surprise goes to feedparser
        return None


def _build(
    url: str,
    feed: Mapping[str, Any],
    raw_entries: list[Any],
    problem: str | None,
    fetched_at: datetime,
) -> ParsedFeed:
    entries = tuple(
        _entry(raw, base=url, fetched_at=fetched_at) for raw in raw_entries[:MAX_ENTRIES]
    )
    return ParsedFeed(
        url=url,
        title=_text_field(_get(feed, "title"), _get(feed, "title_detail"), TITLE_LIMIT),
        link=_http_url(_get(feed, "link"), url),
        ttl_minutes=_ttl(_get(feed, "ttl")),
        entries=entries,
        problem=problem,
    )


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    # Plain dict lookup: FeedParserDict.get() remaps keys and warns about its fallbacks.
    return dict.get(mapping, key) if isinstance(mapping, dict) else mapping.get(key)


def _empty(url: str, problem: str) -> ParsedFeed:
    return ParsedFeed(url=url, title="", link=None, ttl_minutes=None, entries=(), problem=problem)


def _bozo_text(result: Mapping[str, Any]) -> str | None:
    if not _get(result, "bozo"):
        return None
    exc = _get(result, "bozo_exception")
    text = f"{type(exc).__name__}: {exc}" if exc is not None else "feed is not well-formed"
    return htmltext.one_line(htmltext.plain_text(text, limit=300))


def _entry(raw: Mapping[str, Any], *, base: str, fetched_at: datetime) -> ParsedEntry:
    get = _getter(raw)
    summary = _html_field(get("summary"), get("summary_detail"), SUMMARY_LIMIT, base)
    content = _content(get("content"), base)
    published, missing = entry_date(raw, fetched_at)
    return ParsedEntry(
        guid=_guid(get("id")),
        link=_http_url(get("link"), base),
        title=_text_field(get("title"), get("title_detail"), TITLE_LIMIT),
        author=_text_field(get("author"), get("author_detail"), AUTHOR_LIMIT) or None,
        published=published,
        published_was_missing=missing,
        summary_text=summary.text,
        content_text=content.text,
        links=_links(summary.links, content.links),
        categories=_categories(get("tags")),
    )


def _getter(mapping: Mapping[str, Any]) -> Callable[[str], Any]:
    """``_get`` bound to one mapping."""
    return partial(dict.get, mapping) if isinstance(mapping, dict) else mapping.get


def _is_plain(detail: Any) -> bool:
    # dict first: the common case, and much cheaper than the ABC check.
    return isinstance(detail, (dict, Mapping)) and detail.get("type") == "text/plain"


def _text_field(value: Any, detail: Any, limit: int) -> str:
    """A one-line field (title, author)."""
    if not isinstance(value, str) or not value:
        return ""
    if _is_plain(detail):
        text = htmltext.plain_text(value, limit=limit * 2)
    else:
        text = htmltext.html_to_text(value, limit=limit * 2)
    # Both leave single spaces between words: only line breaks are left to fold.
    if "\n" in text:
        text = htmltext.one_line(text)
    return htmltext.cap(text, limit)


def _html_field(value: Any, detail: Any, limit: int, base: str) -> htmltext.ExtractedText:
    if not isinstance(value, str):
        return _NO_TEXT
    return _extract(value, detail, limit, base)


def _content(blocks: Any, base: str) -> htmltext.ExtractedText:
    """The entry's full content (content:encoded, Atom content); the richest one wins."""
    best = _NO_TEXT
    if not isinstance(blocks, list):
        return best
    for block in blocks[:5]:
        if not isinstance(block, Mapping) or not isinstance(block.get("value"), str):
            continue
        extracted = _extract(_get(block, "value"), block, CONTENT_LIMIT, base)
        if len(extracted.text) > len(best.text):
            best = extracted
    return best


def _extract(value: str, detail: Any, limit: int, base: str) -> htmltext.ExtractedText:
    if _is_plain(detail):
        return htmltext.ExtractedText(htmltext.plain_text(value, limit=limit), ())
    return htmltext.extract(value, limit=limit, base_url=base)


def _links(summary: tuple[str, ...], content: tuple[str, ...]) -> tuple[str, ...]:
    if not content:  # extract's links are already unique and at most MAX_LINKS
        return summary
    return tuple(_unique([*summary, *content])[: htmltext.MAX_LINKS])


def entry_date(raw: Mapping[str, Any], fetched_at: datetime) -> tuple[datetime, bool]:
    """(published, was_missing): UTC; the fetch time stands in for a missing or absurd date."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = _struct_to_utc(_get(raw, key))
        if parsed is None or parsed < EARLIEST_DATE:
            continue
        if parsed > fetched_at + FUTURE_TOLERANCE:
            return fetched_at, True
        return parsed, False
    return fetched_at, True


# timegm() returns a float for float fields, though typed int: called through Any, a
# compiled caller does not insist on an int.
_timegm: Any = calendar.timegm


def _struct_to_utc(value: Any) -> datetime | None:
    # feedparser hands back time.struct_time already shifted to UTC.
    if isinstance(value, time.struct_time):
        # What timegm() and fromtimestamp() give whenever the fields make a valid date.
        try:  # not contextlib.suppress, which builds a context manager in Python per call
            return datetime(*value[:6], tzinfo=UTC)
        except (TypeError, ValueError):
            pass
    try:
        return datetime.fromtimestamp(_timegm(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _guid(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    guid = value.strip()
    return guid[:GUID_LIMIT] if guid else None


def _http_url(value: Any, base: str) -> str | None:
    return htmltext.safe_link(value, base) if isinstance(value, str) else None


def _ttl(value: Any) -> int | None:
    try:
        minutes = int(str(value).strip())
    except ValueError:
        return None
    return minutes if 0 < minutes <= MAX_TTL_MINUTES else None


def _categories(tags: Any) -> tuple[str, ...]:
    if not isinstance(tags, list):
        return ()
    names: list[str] = []
    for tag in tags:
        if not isinstance(tag, Mapping):
            continue
        term = _get(tag, "term") or _get(tag, "label")
        if isinstance(term, str):
            text = htmltext.one_line(htmltext.plain_text(term, limit=CATEGORY_LIMIT))
            if text:
                names.append(text)
    return tuple(_unique(names)[:MAX_CATEGORIES])


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- hostile DTDs -------------------------------------------------------------------------

_DOCTYPE_OPEN = re.compile(r"<!DOCTYPE", re.IGNORECASE)
_DOCTYPE_NAME = re.compile(r"<!DOCTYPE\s+([A-Za-z_][\w.:-]{0,100})", re.IGNORECASE)
_ENTITY_DECL = re.compile(r"<!ENTITY\s+([A-Za-z_][\w.-]{0,100})\s+(\"[^\"]*\"|'[^']*')\s*>")
_SAFE_VALUE = re.compile(r"&#(?:[0-9]{1,7}|x[0-9A-Fa-f]{1,6});|[^&%<\"]*")
_WIDE_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)


def neutralise_dtd(body: bytes) -> tuple[bytes, str | None]:
    """Remove DTD declarations that could expand entities or reach outside the document.

    The prolog's DOCTYPE is rebuilt as ``<!DOCTYPE name [...]>`` keeping only internal
    entities whose value is short literal text (or one character reference): no nesting,
    no parameter entities, no SYSTEM/PUBLIC identifiers. Other ``<!...>`` declarations
    in the prolog are dropped. Returns the new body and a problem note, if anything went.
    """
    bom, codec = _codec_of(body)
    text = body[len(bom) :].decode(codec, "replace")
    head_end = _prolog_end(text)
    head = text[:head_end]
    if "<!" not in head.replace("<!--", ""):
        return body, None
    rebuilt, removed = _rebuild_prolog(head)
    new_body = bom + (rebuilt + text[head_end:]).encode(codec, "replace")
    return new_body, "DTD declarations were removed before parsing" if removed else None


def _codec_of(body: bytes) -> tuple[bytes, str]:
    """The byte order mark and a codec that lets us find markup in the prolog.

    Single-byte decoding as latin-1 round-trips every byte unchanged, so ASCII-compatible
    encodings (UTF-8, GB18030, ...) come back exactly as they were.
    """
    for bom, codec in _WIDE_BOMS:
        if body.startswith(bom):
            return bom, codec
    first = body[:4]
    if len(first) == 4:
        if first[:3] == b"\x00\x00\x00":
            return b"", "utf-32-be"
        if first[1:] == b"\x00\x00\x00":
            return b"", "utf-32-le"
        if first[0] == 0 and first[2] == 0:
            return b"", "utf-16-be"
        if first[1] == 0 and first[3] == 0:
            return b"", "utf-16-le"
        if first == b"\x4c\x6f\xa7\x94":  # "<?xm" in EBCDIC
            return b"", "cp037"
    return b"", "latin-1"


def _prolog_end(text: str) -> int:
    """Index of the root element's ``<`` (or the end), skipping PIs, comments, declarations."""
    pos = 0
    while True:
        start = text.find("<", pos)
        if start < 0:
            return len(text)
        if text.startswith("<?", start):
            pos = _after(text, "?>", start)
        elif text.startswith("<!--", start):
            pos = _after(text, "-->", start + 4)
        elif text.startswith("<!", start):
            pos = _declaration_end(text, start)
        else:
            return start


def _after(text: str, marker: str, start: int) -> int:
    end = text.find(marker, start)
    return len(text) if end < 0 else end + len(marker)


def _declaration_end(text: str, start: int) -> int:
    """End of a ``<!...>`` declaration, honouring quotes, comments and a ``[...]`` subset."""
    pos, depth, quote = start + 2, 0, ""
    while pos < len(text):
        char = text[pos]
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif text.startswith("<!--", pos):
            pos = _after(text, "-->", pos + 4)
            continue
        elif char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        elif char == ">" and depth == 0:
            return pos + 1
        pos += 1
    return len(text)


def _rebuild_prolog(head: str) -> tuple[str, bool]:
    out: list[str] = []
    removed = False
    pos = 0
    while pos < len(head):
        start = head.find("<!", pos)
        if start < 0:
            break
        if head.startswith("<!--", start):
            end = _after(head, "-->", start + 4)
            out.append(head[pos:end])
            pos = end
            continue
        end = _declaration_end(head, start)
        out.append(head[pos:start])
        declaration = head[start:end]
        if _DOCTYPE_OPEN.match(declaration):
            safe_doctype, dropped = _safe_doctype(declaration)
            out.append(safe_doctype)
            removed = removed or dropped
        else:
            removed = True
        pos = end
    out.append(head[pos:])
    return "".join(out), removed


def _safe_doctype(declaration: str) -> tuple[str, bool]:
    """The rebuilt DOCTYPE, and whether any entity declaration was dropped from it."""
    name_match = _DOCTYPE_NAME.match(declaration)
    name = name_match.group(1) if name_match else "feed"
    safe = [
        f'<!ENTITY {entity} "{value[1:-1]}">'
        for entity, value in _ENTITY_DECL.findall(declaration)
        if len(value) - 2 <= ENTITY_VALUE_LIMIT and _SAFE_VALUE.fullmatch(value[1:-1])
    ]
    # One declaration per line: feedparser's own DOCTYPE handling looks for them there.
    subset = " [\n" + "\n".join(safe) + "\n]" if safe else ""
    dropped = declaration.upper().count("<!ENTITY") > len(safe)
    return f"\n<!DOCTYPE {name}{subset}>\n", dropped

"""Fast path for well-formed RSS 2.0 and Atom 1.0 feeds: expat straight to feed values.

feedparser (the general path in ``bot.parse``) spends most of a millisecond per entry.
This module reads the common shapes of RSS 2.0 and Atom 1.0 itself, with expat, and
returns the mapping feedparser would have returned for the keys ``bot.parse`` reads.
It reproduces feedparser's own rules for those keys (which element wins, base URIs,
HTML sniffing, character fix-ups) by calling feedparser's helpers where they decide
a value, and it DECLINES (returns None) on anything else: a DTD, an encoding problem,
xml:base, markup inside text elements, content types other than text and HTML, and
every element that feedparser maps onto a field we read but that is not handled here.
tests/test_feedxml.py checks the result against feedparser over feedparser's corpus.

HTML is passed through feedparser's sanitiser exactly when the sanitiser could change
the text we extract from it; for "inert" markup (plain tags, quoted ASCII attributes,
known entities) it is left as it is, which is where most of the time goes.
"""

from __future__ import annotations

import functools
import html.entities
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit, uses_relative
from xml.parsers import expat

# feedparser's own rules, so that every value is decided exactly as feedparser decides it.
from feedparser.api import StrictFeedParser, replace_doctype
from feedparser.datetimes import _parse_date
from feedparser.encodings import RE_XML_PI_ENCODING, convert_to_utf8, parse_content_type
from feedparser.html import _cp1252
from feedparser.sanitizer import _HTMLSanitizer, _sanitize_html
from feedparser.urls import _urljoin, make_safe_absolute_uri

from bot import casing
from bot.htmltext import (
    CONTENT_LIMIT,
    INPUT_FACTOR,
    SUMMARY_LIMIT,
    TITLE_LIMIT,
    ascii_lower,
    explicit_scheme,
    is_plain_url,
)


class _Decline(Exception):
    """Raised inside the expat callbacks: feedparser must read this feed."""


@dataclass(slots=True)
class RawFeed:
    """What feedparser's result holds for the keys ``bot.parse`` reads."""

    feed: dict[str, Any]
    entries: list[dict[str, Any]]


def parse(body: bytes, *, url: str, content_type: str | None) -> RawFeed | None:
    """The feed's values, or None when feedparser must read it.

    ``body`` must already be free of any DTD (see ``bot.parse.neutralise_dtd``); one
    that still has one is declined, like anything expat finds not well-formed.
    """
    try:
        data = _utf8_document(body, url, content_type)
        return None if data is None else _Reader(url).read(data)
    except (_Decline, expat.ExpatError):
        return None


def _utf8_document(body: bytes, url: str, content_type: str | None) -> bytes | None:
    """The exact bytes feedparser's strict parser would read, if it would read them cleanly."""
    data = _plain_utf8(body, content_type or "application/xml")
    if data is None:
        headers = {"content-type": content_type or "application/xml", "content-location": url}
        result: dict[str, Any] = {}
        data = convert_to_utf8(headers, body, result)
        if result.get("bozo") or not result.get("encoding"):
            return None
    if _may_have_doctype(data):
        version, replaced, entities = replace_doctype(data)
        if version or entities or replaced != data:
            return None
    return bytes(data)


def _plain_utf8(body: bytes, content_type: str) -> bytes | None:
    """``convert_to_utf8`` for UTF-8 served as XML without a charset; None otherwise.

    Then feedparser decodes as UTF-8 and only rewrites the XML declaration. Its search
    for an encoding declaration runs to the end of the first line, which for a feed on
    one line is the whole body: a plain substring test answers first.
    """
    mime, charset = parse_content_type(content_type)
    if charset or not (
        mime in _XML_MEDIA_TYPES or (mime.startswith("application/") and mime.endswith("+xml"))
    ):
        return None
    if body[:1] != b"<" or body[1:2] == b"\x00":  # a byte order mark or a wide encoding
        return None
    line_end = body.find(b"\n")
    if body.find(b"encoding=", 0, len(body) if line_end < 0 else line_end) >= 0:
        declared = RE_XML_PI_ENCODING.match(body)
        if declared is not None and declared.group(1).lower() not in (b"", b"utf-8"):
            return None
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    # UTF-8 never holds a ">" byte inside a character: the bytes match where the text would.
    declaration = _XML_DECLARATION.match(body)
    if declaration is None:
        return _UTF8_DECLARATION + b"\n" + body
    return _UTF8_DECLARATION + body[declaration.end() :]


def _may_have_doctype(data: bytes) -> bool:
    """False when ``replace_doctype`` surely returns ``data`` unchanged, with no entities."""
    first = _FIRST_ELEMENT.search(data)
    # feedparser's prolog is data[:start + 1], and empty when the element starts at 0.
    return first is not None and data.find(b"<!", 0, first.start() + 1) >= 0


# --- feedparser's vocabulary --------------------------------------------------------------

# feedparser's own patterns and constants in convert_to_utf8 and replace_doctype.
_XML_MEDIA_TYPES: Final = (
    "application/xml",
    "application/xml-dtd",
    "application/xml-external-parsed-entity",
)
_XML_DECLARATION: Final = re.compile(rb"^<\?xml[^>]*?>")
_UTF8_DECLARATION: Final = b"<?xml version='1.0' encoding='utf-8'?>"
_FIRST_ELEMENT: Final = re.compile(rb"<\w")

_MATCH: Final = {uri.lower(): prefix for uri, prefix in StrictFeedParser.namespaces.items()}
_HANDLED: Final = frozenset(
    name.split("_", 2)[2] if name.startswith("_start_") else name[len("_end_") :]
    for name in dir(StrictFeedParser)
    if name.startswith(("_start_", "_end_"))
)
_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
_RELATIVE: Final = frozenset(StrictFeedParser.can_be_relative_uri)
_DANGEROUS: Final = frozenset(StrictFeedParser.can_contain_dangerous_markup)
_looks_like_html: Final[Callable[[str], bool]] = StrictFeedParser.looks_like_html
_map_type: Final[Callable[[str], str]] = functools.lru_cache(maxsize=64)(
    StrictFeedParser.map_content_type
)
_AMP_ENTITY: Final = re.compile("&([A-Za-z0-9_]+);")
_C1_CONTROL: Final = re.compile("[\x80-\x9f]")
# Keys of an unknown element that would land on something feedparser or we read.
_RESERVED: Final = frozenset(
    {
        "author", "author_detail", "authors", "content", "contributors", "created_parsed",
        "guidislink", "href", "id", "image", "link", "links", "published_parsed",
        "publisher", "publisher_detail", "source", "summary", "summary_detail", "tags",
        "textinput", "title", "title_detail", "ttl", "updated_parsed",
    }
)  # fmt: skip

# What each element is, by feedparser's key for it (its handler name).
_TITLE, _LINK, _GUID, _DESCRIPTION, _SUMMARY = "title", "link", "guid", "descr", "summary"
_ENCODED, _CONTENT, _AUTHOR, _DATE, _CATEGORY = "encoded", "content", "author", "date", "cat"
_NAME, _EMAIL, _URL, _SOURCE, _ENTRY = "name", "email", "url", "source", "entry"
_IMAGE, _TEXTINPUT, _CONTRIBUTOR, _LEAF, _PROSE = "image", "textinput", "contrib", "leaf", "prose"
_MEDIA_BOX, _GENERIC, _TTL, _CHANNEL = "mediabox", "generic", "ttl", "channel"

_KINDS: Final = {
    "title": _TITLE, "dc_title": _TITLE, "link": _LINK, "guid": _GUID, "id": _GUID,
    "description": _DESCRIPTION, "dc_description": _DESCRIPTION, "summary": _SUMMARY,
    "content_encoded": _ENCODED, "fullitem": _ENCODED, "content": _CONTENT,
    "author": _AUTHOR, "managingeditor": _AUTHOR, "dc_author": _AUTHOR,
    "dc_creator": _AUTHOR, "name": _NAME, "email": _EMAIL, "url": _URL, "uri": _URL,
    "homepage": _URL, "source": _SOURCE, "item": _ENTRY, "entry": _ENTRY,
    "image": _IMAGE, "textinput": _TEXTINPUT, "contributor": _CONTRIBUTOR,
    "category": _CATEGORY, "keywords": _CATEGORY, "dc_subject": _CATEGORY,
    "pubdate": _DATE, "published": _DATE, "issued": _DATE, "dcterms_issued": _DATE,
    "updated": _DATE, "modified": _DATE, "lastbuilddate": _DATE, "dc_date": _DATE,
    "dcterms_modified": _DATE, "created": _DATE, "dcterms_created": _DATE,
    "language": _LEAF, "dc_language": _LEAF, "generator": _LEAF, "webmaster": _LEAF,
    "dc_publisher": _LEAF, "expirationdate": _LEAF, "cloud": _LEAF, "enclosure": _LEAF,
    "width": _LEAF, "height": _LEAF, "media_content": _MEDIA_BOX,
    "media_group": _MEDIA_BOX, "media_thumbnail": _LEAF, "media_credit": _LEAF,
    "media_rating": _LEAF, "media_restriction": _LEAF, "media_license": _LEAF,
    "media_player": _LEAF, "channel": _CHANNEL, "subtitle": _PROSE, "tagline": _PROSE,
    "info": _PROSE, "rights": _PROSE, "copyright": _PROSE, "dc_rights": _PROSE,
}  # fmt: skip
_ALL_KINDS: Final = frozenset(_KINDS.values()) | {_GENERIC, _TTL}
_DATE_KEYS: Final = {
    "pubdate": "published_parsed", "published": "published_parsed",
    "issued": "published_parsed", "dcterms_issued": "published_parsed",
    "updated": "updated_parsed", "modified": "updated_parsed",
    "lastbuilddate": "updated_parsed", "dc_date": "updated_parsed",
    "dcterms_modified": "updated_parsed", "created": "created_parsed",
    "dcterms_created": "created_parsed",
}  # fmt: skip

# Which kinds may appear inside which; anything else declines.
_FEED_CHILDREN: Final = frozenset(
    {_TITLE, _LINK, _GUID, _DESCRIPTION, _AUTHOR, _DATE, _CATEGORY, _ENTRY, _IMAGE,
     _TEXTINPUT, _CONTRIBUTOR, _LEAF, _PROSE, _GENERIC, _TTL}
)  # fmt: skip
_ENTRY_CHILDREN: Final = frozenset(
    {_TITLE, _LINK, _GUID, _DESCRIPTION, _SUMMARY, _ENCODED, _CONTENT, _AUTHOR, _DATE,
     _CATEGORY, _SOURCE, _CONTRIBUTOR, _LEAF, _PROSE, _MEDIA_BOX, _GENERIC, _TTL}
)  # fmt: skip
_CHILDREN: Final[dict[str, frozenset[str]]] = {
    "rss": frozenset({_CHANNEL}),
    _CHANNEL: _FEED_CHILDREN,
    "feed": _FEED_CHILDREN,
    _ENTRY: _ENTRY_CHILDREN,
    _AUTHOR: frozenset({_NAME, _EMAIL, _URL}),
    _CONTRIBUTOR: frozenset({_NAME, _EMAIL, _URL}),
    _IMAGE: frozenset({_TITLE, _LINK, _URL, _LEAF, _DESCRIPTION}),
    _TEXTINPUT: frozenset({_TITLE, _LINK, _NAME, _DESCRIPTION}),
    _MEDIA_BOX: frozenset({_MEDIA_BOX, _LEAF, _GENERIC}),
    _GENERIC: frozenset({_GENERIC}),
    _TTL: frozenset(),
}
# feedparser leaves its <image> / <textInput> context when an unprefixed element other
# than these starts (even inside them); later titles and links then belong to the feed.
_IMAGE_TAGS: Final = frozenset({"title", "link", "description", "url", "href", "width", "height"})
_TEXTINPUT_TAGS: Final = frozenset({"title", "link", "description", "name"})
_CONTENT_TYPES: Final = frozenset({"text/plain", "text/html"})
_NO_ATTRIBUTES: Final[dict[str, str]] = {}  # shared: starters only read attributes
_RSS_VERSIONS: Final = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}


class _Frame:
    """One open element: what it is, and the text it collects (None: text is ignored)."""

    __slots__ = ("author", "ctype", "epoch", "key", "kind", "text")

    def __init__(self, kind: str, key: str, text: list[str] | None = None, ctype: str = "") -> None:
        self.kind = kind
        self.key = key
        self.text = text
        self.ctype = ctype
        self.author: dict[str, str] | None = None  # an <author>'s name and email
        self.epoch = 0  # namespace declarations seen when it started


class _Reader:
    """feedparser's state machine, for the elements and positions listed above."""

    def __init__(self, url: str) -> None:
        self.base = _stable_base(url)
        try:
            self.base_scheme: str | None = urlsplit(self.base).scheme
        except ValueError:
            self.base_scheme = None
        self.version = ""
        self.in_use: dict[str, str] = {}
        self.prefixes: dict[str | None, str] = {}
        self.names: dict[str, tuple[str, str, bool, bool]] = {}
        self.epoch = 0
        self.frames: list[_Frame] = []
        self.depth = 0
        self.title_depth = -1
        self.root = ""
        self.had_channel = self.closed = False
        self.infeed = self.inentry = self.insource = False
        self.inimage = self.intextinput = self.inauthor = False
        self.has_image = self.has_content = False
        self.summary_key: str | None = None
        self.guidislink = False
        self.feed: dict[str, Any] = {}
        self.entries: list[dict[str, Any]] = []

    def read(self, data: bytes) -> RawFeed:
        parser = expat.ParserCreate(None, " ")
        parser.namespace_prefixes = True
        parser.buffer_text = True
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.characters
        parser.StartNamespaceDeclHandler = self.declare
        parser.StartDoctypeDeclHandler = _refuse
        parser.EntityDeclHandler = _refuse
        parser.Parse(data, True)
        if not self.closed:
            raise _Decline
        return RawFeed(self.feed, self.entries)

    # --- expat callbacks ------------------------------------------------------------------

    def declare(self, prefix: str | None, uri: str | None) -> None:
        if not uri:
            return
        lower = casing.lower(uri)
        if not self.version:
            if prefix is None and lower == "http://my.netscape.com/rdf/simple/0.9/":
                self.version = "rss090"
            elif lower == "http://purl.org/rss/1.0/":
                self.version = "rss10"
            elif lower == "http://www.w3.org/2005/atom":
                self.version = "atom10"
        if "backend.userland.com/rss" in lower:
            uri = lower = "http://backend.userland.com/rss"
        if lower in _MATCH:
            self.prefixes[prefix] = _MATCH[lower]
            self.in_use[_MATCH[lower]] = uri
        else:
            self.in_use[prefix or ""] = uri
        self.names.clear()
        self.epoch += 1

    def characters(self, data: str) -> None:
        if self.frames:
            text = self.frames[-1].text
            if text is not None:
                text.append(data)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        key, kind, keeps_textinput, keeps_image = self.names.get(name) or self._name(name)
        attrs_d = _NO_ATTRIBUTES
        if attrs:
            attrs_d = self._attributes(attrs)
            if "xml:base" in attrs_d or "base" in attrs_d:
                raise _Decline
        self.depth += 1
        if self.intextinput and not keeps_textinput:
            self.intextinput = False
        if self.inimage and not keeps_image:
            self.inimage = False
        frames = self.frames
        if not frames:
            self._start_root(key, attrs_d)
        elif kind in _CHILDREN.get(frames[-1].kind, ()):
            _STARTERS[kind](self, key, attrs_d)
        else:
            raise _Decline
        frames[-1].epoch = self.epoch  # every starter pushes exactly one frame

    def end(self, name: str) -> None:
        frame = self.frames.pop()
        if frame.epoch != self.epoch and self._name(name)[0] != frame.key:
            raise _Decline  # a namespace declaration changed what the element is
        ender = _ENDERS.get(frame.kind)
        if ender is not None:
            ender(self, frame)
        self.depth -= 1

    # --- names ----------------------------------------------------------------------------

    def _name(self, name: str) -> tuple[str, str, bool, bool]:
        """What feedparser's strict parser makes of an element name.

        (key, kind, keeps_textinput, keeps_image): its handler name, what it is here
        ("" if we decline it), and whether it leaves feedparser inside <textInput> or
        <image> (only unprefixed names outside a short list take it out).
        """
        known = self.names.get(name)
        if known is not None:
            return known
        parts = name.split(" ")
        namespace, local = (parts[0], parts[1]) if len(parts) > 1 else ("", name)
        lower = casing.lower(namespace)
        if "backend.userland.com/rss" in lower:
            namespace = lower = "http://backend.userland.com/rss"
        prefix = _MATCH.get(lower)
        local = casing.lower(local)
        if prefix:
            local = casing.lower(prefix) + ":" + local
        elif namespace:
            for given, uri in self.in_use.items():
                if given and uri == namespace:
                    local = given + ":" + local
                    break
        tag = casing.lower(local)
        head, _, tail = tag.partition(":")
        if not tail:
            head, tail = "", head
        mapped = self.prefixes.get(head, head) if head else ""
        key = f"{mapped}_{tail}" if mapped else tail
        known = (
            key,
            _KINDS.get(key) or _unknown_kind(key),
            bool(mapped) or tag in _TEXTINPUT_TAGS,
            bool(mapped) or tag in _IMAGE_TAGS,
        )
        self.names[name] = known
        return known

    @staticmethod
    def _attributes(attrs: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        qnames: list[tuple[str, str]] = []
        for name, value in attrs.items():
            parts = name.split(" ")
            if len(parts) == 1:
                out[casing.lower(name)] = value
                qnames.append((name, value))
                continue
            prefix = _MATCH.get(casing.lower(parts[0]), "")
            out[casing.lower(f"{prefix}:{parts[1]}" if prefix else parts[1])] = value
            qnames.append((f"{parts[2]}:{parts[1]}" if len(parts) == 3 else parts[1], value))
        for qname, value in qnames:
            out[casing.lower(qname)] = value
        return {k: casing.lower(v) if k in ("rel", "type") else v for k, v in out.items()}

    # --- structure ------------------------------------------------------------------------

    def _start_root(self, key: str, attrs_d: dict[str, str]) -> None:
        if self.root:
            raise _Decline
        if key == "rss":
            if not self.version.startswith("rss"):
                version = attrs_d.get("version", "")
                fallback = "rss20" if version.startswith("2.") else "rss"
                self.version = _RSS_VERSIONS.get(version, fallback)
            self.root = "rss"
            self.frames.append(_Frame("rss", key))
        elif key == "feed":
            self.version = self.version or "atom"
            if self.version != "atom10" or _has_cdf(attrs_d):
                raise _Decline
            self.root = "feed"
            self.infeed = True
            self.frames.append(_Frame("feed", key))
        else:
            raise _Decline

    def _end_rss(self, frame: _Frame) -> None:
        self.closed = True

    def _end_feed(self, frame: _Frame) -> None:
        self.infeed = False
        self.closed = True

    def _start_channel(self, key: str, attrs_d: dict[str, str]) -> None:
        if self.had_channel or _has_cdf(attrs_d):
            raise _Decline
        self.had_channel = self.infeed = True
        self.frames.append(_Frame(_CHANNEL, key))

    def _end_channel(self, frame: _Frame) -> None:
        self.infeed = False

    def _start_entry(self, key: str, attrs_d: dict[str, str]) -> None:
        if self.inentry or (attrs_d and _has_cdf(attrs_d)):
            raise _Decline
        self.entries.append({})
        self.inentry = True
        self.guidislink = False
        self.title_depth = -1
        self.frames.append(_Frame(_ENTRY, key))

    def _end_entry(self, frame: _Frame) -> None:
        self.inentry = False
        self.has_content = False

    def _start_image(self, key: str, attrs_d: dict[str, str]) -> None:
        if self.inentry:
            raise _Decline
        self.has_image = True
        self.inimage = True
        self.title_depth = -1
        self.frames.append(_Frame(_IMAGE, key))

    def _end_image(self, frame: _Frame) -> None:
        self.inimage = False

    def _start_textinput(self, key: str, attrs_d: dict[str, str]) -> None:
        if self.inentry:
            raise _Decline
        self.intextinput = True
        self.title_depth = -1
        self.frames.append(_Frame(_TEXTINPUT, key))

    def _end_textinput(self, frame: _Frame) -> None:
        self.intextinput = False

    def _start_generic(self, key: str, attrs_d: dict[str, str]) -> None:
        self.frames.append(_Frame(_GENERIC, key))

    def _start_ttl(self, key: str, attrs_d: dict[str, str]) -> None:
        if attrs_d and self._feed_context():
            self.feed["ttl"] = attrs_d
        self.frames.append(_Frame(_TTL, key, [] if not attrs_d else None))

    def _end_ttl(self, frame: _Frame) -> None:
        if frame.text is not None and self._feed_context():
            self.feed["ttl"] = self._finish(frame, "ttl")

    def _start_leaf(self, key: str, attrs_d: dict[str, str]) -> None:
        self.frames.append(_Frame(_LEAF, key))

    def _start_mediabox(self, key: str, attrs_d: dict[str, str]) -> None:
        self.frames.append(_Frame(_MEDIA_BOX, key))

    def _start_contrib(self, key: str, attrs_d: dict[str, str]) -> None:
        self.frames.append(_Frame(_CONTRIBUTOR, key))

    def _start_source(self, key: str, attrs_d: dict[str, str]) -> None:
        self.insource = True
        self.title_depth = -1
        self.frames.append(_Frame(_SOURCE, key))

    def _end_source(self, frame: _Frame) -> None:
        self.insource = False

    def _start_prose(self, key: str, attrs_d: dict[str, str]) -> None:
        self.frames.append(_Frame(_PROSE, key))

    def _feed_context(self) -> bool:
        """Whether feedparser's current context is the feed itself (not image, entry...)."""
        if self.inentry or self.insource:
            return False
        return not ((self.inimage and self.has_image) or self.intextinput)

    # --- text elements --------------------------------------------------------------------

    def _content_frame(self, kind: str, key: str, attrs_d: dict[str, str], default: str) -> None:
        if not attrs_d:  # the default types are accepted, and mapped to themselves
            self.frames.append(_Frame(kind, key, [], default))
            return
        ctype = _map_type(attrs_d.get("type", default))
        if ctype not in _CONTENT_TYPES or "mode" in attrs_d or "src" in attrs_d:
            raise _Decline
        self.frames.append(_Frame(kind, key, [], ctype))

    def _start_title(self, key: str, attrs_d: dict[str, str]) -> None:
        self._content_frame(_TITLE, key, attrs_d, "text/plain")

    def _end_title(self, frame: _Frame) -> None:
        value, ctype = self._text_value(frame, "title")
        if not (-1 < self.title_depth <= self.depth):
            if self.inentry:
                self.entries[-1]["title"] = value
                self.entries[-1]["title_detail"] = {"type": ctype}
            elif self._feed_context():
                self.feed["title"] = value
                self.feed["title_detail"] = {"type": ctype}
        if value:
            self.title_depth = self.depth

    def _start_descr(self, key: str, attrs_d: dict[str, str]) -> None:
        if self.inentry and "summary" in self.entries[-1] and not self.has_content:
            self.summary_key = "content"
            self._start_content(key, attrs_d, _DESCRIPTION)
        elif self.inentry:
            self._content_frame(_DESCRIPTION, key, attrs_d, "text/html")
        else:
            self.frames.append(_Frame(_PROSE, key))

    def _end_descr(self, frame: _Frame) -> None:
        if self.summary_key == "content":
            self._end_content(frame)
        else:
            self._store_summary(frame, "description")
        self.summary_key = None

    def _start_summary(self, key: str, attrs_d: dict[str, str]) -> None:
        if "summary" in self.entries[-1] and not self.has_content:
            self.summary_key = "content"
            self._start_content(key, attrs_d, _SUMMARY)
        else:
            self.summary_key = "summary"
            self._content_frame(_SUMMARY, key, attrs_d, "text/plain")

    def _end_summary(self, frame: _Frame) -> None:
        if self.summary_key == "content":
            self._end_content(frame)
        else:
            self._store_summary(frame, "summary")
        self.summary_key = None

    def _store_summary(self, frame: _Frame, element: str) -> None:
        value, ctype = self._text_value(frame, element)
        self.entries[-1]["summary"] = value
        self.entries[-1]["summary_detail"] = {"type": ctype}

    def _start_encoded(self, key: str, attrs_d: dict[str, str]) -> None:
        self.has_content = True
        self._content_frame(_CONTENT, key, attrs_d, "text/html")

    def _start_content(self, key: str, attrs_d: dict[str, str], kind: str = _CONTENT) -> None:
        self.has_content = True
        self._content_frame(kind, key, attrs_d, "text/plain")

    def _end_content(self, frame: _Frame) -> None:
        value, ctype = self._text_value(frame, "content")
        self.entries[-1].setdefault("content", []).append({"type": ctype, "value": value})
        self.entries[-1].setdefault("summary", value)

    def _start_link(self, key: str, attrs_d: dict[str, str]) -> None:
        if not attrs_d:  # no href: the link is the element's text
            self.frames.append(_Frame(_LINK, key, []))
            return
        attrs_d = dict(attrs_d)
        rel = attrs_d.setdefault("rel", "alternate")
        attrs_d.setdefault("type", "application/atom+xml" if rel == "self" else "text/html")
        href = attrs_d.get("url", attrs_d.get("uri", attrs_d.get("href")))
        if href:
            attrs_d["href"] = href
        if "href" not in attrs_d:
            self.frames.append(_Frame(_LINK, key, []))
            return
        if rel == "alternate" and _map_type(attrs_d["type"]) in _HTML_TYPES:
            resolved = self._join(attrs_d["href"])
            if self.inentry:
                self.entries[-1]["link"] = resolved
            elif self._feed_context():
                self.feed["link"] = resolved
        self.frames.append(_Frame(_LINK, key))

    def _end_link(self, frame: _Frame) -> None:
        if frame.text is None:
            return
        value = self._finish(frame, "link")
        if self.inentry:
            self.entries[-1]["link"] = _unescape_query(value.replace("&amp;", "&"))
        elif self._feed_context():
            self.feed["link"] = _unescape_query(value)

    def _start_guid(self, key: str, attrs_d: dict[str, str]) -> None:
        self.guidislink = attrs_d.get("ispermalink", "true") == "true"
        self.frames.append(_Frame(_GUID, key, []))

    def _end_guid(self, frame: _Frame) -> None:
        value = self._finish(frame, "id")
        if self.inentry:
            self.entries[-1]["id"] = value
            if self.guidislink:
                self.entries[-1].setdefault("link", value)
        elif self.guidislink and self._feed_context():
            self.feed.setdefault("link", value)

    def _start_date(self, key: str, attrs_d: dict[str, str]) -> None:
        self.frames.append(_Frame(_DATE, key, [] if self.inentry else None))

    def _end_date(self, frame: _Frame) -> None:
        if frame.text is not None:
            self.entries[-1][_DATE_KEYS[frame.key]] = parse_date(self._finish(frame, "date"))

    def _start_cat(self, key: str, attrs_d: dict[str, str]) -> None:
        if not self.inentry:
            self.frames.append(_Frame(_LEAF, key))
            return
        scheme = attrs_d.get("scheme", attrs_d.get("domain"))
        self._add_tag(attrs_d.get("term"), scheme, attrs_d.get("label"))
        self.frames.append(_Frame(_CATEGORY, key, []))

    def _end_cat(self, frame: _Frame) -> None:
        value = self._finish(frame, "category")
        if not value:
            return
        tags = self.entries[-1]["tags"]
        if tags and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            self._add_tag(value, None, None)

    def _add_tag(self, term: str | None, scheme: str | None, label: str | None) -> None:
        tags = self.entries[-1].setdefault("tags", [])
        if not term and not scheme and not label:
            return
        tag = {"term": term, "scheme": scheme, "label": label}
        if tag not in tags:
            tags.append(tag)

    # --- authors --------------------------------------------------------------------------

    def _start_author(self, key: str, attrs_d: dict[str, str]) -> None:
        if self.inentry and "author" in self.entries[-1]:
            raise _Decline  # feedparser carries the first author's name into the second
        self.inauthor = True
        frame = _Frame(_AUTHOR, key, [] if self.inentry else None)
        frame.author = {}
        self.frames.append(frame)

    def _end_author(self, frame: _Frame) -> None:
        self.inauthor = False
        if frame.text is None:
            return
        entry = self.entries[-1]
        entry["author"] = self._finish(frame, "author")
        parts = frame.author or {}
        name, email = parts.get("name"), parts.get("email")
        if name and email:
            entry["author"] = f"{name} ({email})"
        elif name or email:
            entry["author"] = name or email

    def _start_name(self, key: str, attrs_d: dict[str, str]) -> None:
        self.frames.append(_Frame(_NAME, key, []))

    def _end_name(self, frame: _Frame) -> None:
        self._author_part(frame, "name")

    def _start_email(self, key: str, attrs_d: dict[str, str]) -> None:
        self.frames.append(_Frame(_EMAIL, key, []))

    def _end_email(self, frame: _Frame) -> None:
        self._author_part(frame, "email")

    def _start_url(self, key: str, attrs_d: dict[str, str]) -> None:
        self.frames.append(_Frame(_URL, key, []))

    def _end_url(self, frame: _Frame) -> None:
        self._author_part(frame, "href")

    def _author_part(self, frame: _Frame, part: str) -> None:
        parent = self.frames[-1]
        if parent.author is not None and parent.text is not None:
            parent.author[part] = "".join(frame.text or ()).strip()

    # --- values ---------------------------------------------------------------------------

    def _finish(self, frame: _Frame, element: str) -> str:
        """feedparser's ``pop`` for an element that is not HTML-capable."""
        output = "".join(frame.text or ()).strip()
        if element in _RELATIVE and output and (element != "id" or self.guidislink):
            output = self._join(output)
        return fix_characters(output)

    def _join(self, url: str) -> str:
        """feedparser's ``_urljoin(base, url)``, without urllib when the answer is ``url``."""
        if self.base_scheme is not None and url:
            if is_plain_url(url):
                return url
            scheme = explicit_scheme(url)
            if (
                scheme is not None
                and not url.startswith("//", len(scheme) + 1)
                and (scheme != self.base_scheme or scheme not in uses_relative)
            ):
                return url
        return str(_urljoin(self.base, url))

    def _text_value(self, frame: _Frame, element: str) -> tuple[str, str]:
        """feedparser's ``pop`` for title/summary/content: (value, content type)."""
        output = "".join(frame.text or ()).strip()
        ctype = frame.ctype
        if (
            ctype == "text/plain"
            and not self.version.startswith("atom")
            and ("<" in output or "&" in output)  # the sniffer needs a tag or an entity
            and _looks_like_html(output)
        ):
            ctype = "text/html"
        if (
            ctype in _HTML_TYPES
            and element in _DANGEROUS
            and not is_inert(output, INERT_LIMITS[element])
        ):
            output = _sanitize_html(output, "utf-8", ctype)
        return fix_characters(output), ctype


# What starts and ends each kind of element (every starter pushes exactly one frame).
_STARTERS: Final[dict[str, Callable[[_Reader, str, dict[str, str]], None]]] = {
    kind: getattr(_Reader, "_start_" + kind) for kind in _ALL_KINDS
}
_ENDERS: Final[dict[str, Callable[[_Reader, _Frame], None]]] = {
    kind: getattr(_Reader, "_end_" + kind)
    for kind in (*_ALL_KINDS, "rss", "feed")
    if hasattr(_Reader, "_end_" + kind)
}


# --- helpers ------------------------------------------------------------------------------


# The two date shapes feeds use most, read the way feedparser's first handler that
# accepts them would (W3C-DTF for ISO dates; RFC 822, after W3C-DTF declined, for
# the others). Anything else, or a date those handlers reject, goes to feedparser.
_RFC822: Final = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) (?:GMT|([+-])([0-9]{2})([0-9]{2}))"
)
_W3DTF: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))"
)
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}


def parse_date(value: str) -> time.struct_time | None:
    """feedparser's ``_parse_date``: a UTC time tuple, or None."""
    match = _RFC822.fullmatch(value)
    if match is not None:
        day, month, year, hour, minute, second, sign, tz_hours, tz_minutes = match.groups()
        fields = (int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
    else:
        match = _W3DTF.fullmatch(value)
        if match is None:
            return _parse_date(value)  # type: ignore[no-any-return]
        year, month, day, hour, minute, second, sign, tz_hours, tz_minutes = match.groups()
        fields = (int(year), int(month), int(day), int(hour), int(minute), int(second))
    try:
        moment = datetime(*fields)
        if sign is not None and tz_hours + tz_minutes != "0000":
            offset = timedelta(hours=int(tz_hours), minutes=int(tz_minutes))
            moment = moment + offset if sign == "-" else moment - offset
            fields = (
                moment.year,
                moment.month,
                moment.day,
                moment.hour,
                moment.minute,
                moment.second,
            )
    except (ValueError, OverflowError):
        return _parse_date(value)  # type: ignore[no-any-return]
    return _utc_time_tuple(fields, moment.weekday())


# Days in the months before each month (index 1 is January) of a common year.
_DAYS_BEFORE: Final = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def _utc_time_tuple(fields: tuple[int, int, int, int, int, int], weekday: int) -> time.struct_time:
    """``datetime(*fields).utctimetuple()``, without the import of ``time`` that
    datetime makes for every call."""
    year, month, day = fields[0], fields[1], fields[2]
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    day_of_year = _DAYS_BEFORE[month] + day + (1 if leap and month > 2 else 0)
    return time.struct_time((*fields, weekday, day_of_year, 0))


def _unknown_kind(key: str) -> str:
    """An element without a handler of ours: harmless, unless feedparser reads its key."""
    if key == "ttl":
        return _TTL
    if key in _HANDLED or key in _RESERVED or key.endswith(("_detail", "_parsed")):
        return ""
    return _GENERIC


def _refuse(*_: object) -> None:
    raise _Decline


def _has_cdf(attrs_d: dict[str, str]) -> bool:
    # feedparser turns these attributes of <item>/<channel> into elements of their own.
    return any(key in attrs_d for key in ("lastmod", "href")) or any(
        key.endswith("about") for key in attrs_d
    )


def _stable_base(url: str) -> str:
    """feedparser's base URI, which it recomputes at every element; decline if it moves."""

    if is_plain_url(url):
        return url  # what both steps give: urljoin() leaves it as it is

    def step(base: str) -> str:
        return make_safe_absolute_uri(base, base) or base if base else _urljoin(base, base)

    first = step(url)
    if step(first) != first:
        raise _Decline
    return first


def fix_characters(text: str) -> str:
    """feedparser's last touches: undo UTF-8 read as Latin-1, map C1 controls as cp1252."""
    if text.isascii():  # neither step changes ASCII
        return text
    text = _undo_latin1(text)
    return text.translate(_cp1252) if _C1_CONTROL.search(text) else text


def _undo_latin1(text: str) -> str:
    # try, not contextlib.suppress: that builds a context manager in Python per call.
    try:
        return text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _unescape_query(link: str) -> str:
    # feedparser's repair of "?a=1&b;=2"-style links.
    return _AMP_ENTITY.sub(r"&\g<1>", link) if "&" in link else link


# --- markup the sanitiser would leave alone, as far as extracted text goes ----------------

# Text extraction truncates its input; the sanitiser may lengthen markup a little
# (``<br>`` -> ``<br />``), so only strings far below the cut are compared unsanitised.
INERT_LIMITS: Final = {
    "title": TITLE_LIMIT * 2 * INPUT_FACTOR // 2,
    "description": SUMMARY_LIMIT * INPUT_FACTOR // 2,
    "summary": SUMMARY_LIMIT * INPUT_FACTOR // 2,
    # Content is also copied into the summary, which is cut shorter.
    "content": min(SUMMARY_LIMIT, CONTENT_LIMIT) * INPUT_FACTOR // 2,
}
_INERT_TAG: Final = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9]*)"
    r"((?:[ \t\n\f]+[a-zA-Z_][-a-zA-Z0-9_:.]*=(?:\"[ !#-%'-;=?-~]*\"|'[ !#-%(-;=?-~]*'))*)"
    r"[ \t\n\f]*(/?)>"
)
_INERT_ATTR_NAME: Final = re.compile(r"[ \t\n\f]([a-zA-Z_][-a-zA-Z0-9_:.]*)=")
_BAD_AMPERSAND: Final = re.compile(
    r"&(?!#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[a-zA-Z][a-zA-Z0-9]*;)"
)
_NAMED_ENTITY: Final = re.compile(r"&([a-zA-Z][a-zA-Z0-9]*);")
_ENTITY_NAMES: Final = frozenset({*html.entities.name2codepoint, "apos"})
_INERT_ELEMENTS: Final = frozenset(
    name for name in _HTMLSanitizer.acceptable_elements if name.isalnum()
)
_VOID_ELEMENTS: Final = frozenset(_HTMLSanitizer.elements_no_end_tag) & _INERT_ELEMENTS


def is_inert(markup: str, limit: int) -> bool:
    """Whether feedparser's sanitiser would leave the text and links of ``markup`` alone.

    True for plain tags the sanitiser accepts (``<br/>`` only for void elements), quoted
    printable-ASCII attribute values without ``& < > "`` and no repeated attribute names,
    and ``&`` only in HTML 4 entities or numeric references; no ``\\r``.
    """
    if len(markup) > limit or "\r" in markup:
        return False
    if "&" in markup and not _entities_are_plain(markup):
        return False
    # An inert tag holds exactly one "<", its first character: so the markup is inert
    # exactly when each "<" opens an inert tag.
    at = markup.find("<")
    while at >= 0:
        tag = _INERT_TAG.match(markup, at)
        if tag is None or not _tag_is_inert(tag.groups()):
            return False
        at = markup.find("<", tag.end())
    return True


def _entities_are_plain(markup: str) -> bool:
    if _BAD_AMPERSAND.search(markup):
        return False
    return all(name in _ENTITY_NAMES for name in _NAMED_ENTITY.findall(markup))


def _tag_is_inert(tag: tuple[str, ...]) -> bool:
    closing, name, attrs, self_closing = tag
    name = ascii_lower(name)
    if name not in _INERT_ELEMENTS:
        return False
    if closing:
        return not (attrs or self_closing) and name not in _VOID_ELEMENTS
    if self_closing and name not in _VOID_ELEMENTS:
        return False
    if attrs.count("=") > 1:
        names = [casing.lower(attr) for attr in _INERT_ATTR_NAME.findall(attrs)]
        return len(names) == len(set(names))
    return True

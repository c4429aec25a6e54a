"""Feed HTML -> safe plain text.

Everything here treats its input as hostile. The HTML is walked with the stdlib
``html.parser`` (never regexes over markup); the resulting text is then scrubbed once more
so that nothing which looks like markup or a script hook survives, even when the feed
smuggled it in as escaped text (``&lt;script&gt;`` decodes to ``<script``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from bot.casing import lower
from bot.spaces import collapse

TITLE_LIMIT = 500
SUMMARY_LIMIT = 2_000
CONTENT_LIMIT = 20_000
MAX_LINKS = 100
# Parsing cost is linear, but there is no point walking megabytes to keep 20k chars.
INPUT_FACTOR = 20

# Elements whose content is never text a reader should see.
_SKIPPED = frozenset(
    {
        "script",
        "style",
        "noscript",
        "iframe",
        "object",
        "embed",
        "applet",
        "template",
        "svg",
        "math",
        "frameset",
        "head",
        "select",
    }
)
_PARAGRAPHS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "aside",
        "blockquote",
        "pre",
        "table",
        "ul",
        "ol",
        "dl",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "main",
        "nav",
        "form",
        "fieldset",
        "details",
    }
)
_LINES = frozenset({"br", "li", "tr", "dt", "dd", "figcaption", "caption", "summary"})
_CELLS = frozenset({"td", "th"})
_VOID = frozenset(
    {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "source", "track", "wbr"}
)

_PARA_MARK = "\x00P"
_LINE_MARK = "\x00L"

_TAG_LIKE = re.compile(r"<\s*/?\s*[A-Za-z!?][^<>]{0,2000}>")
_OPEN_BRACKET = re.compile(r"<(?=\s*[/!?A-Za-z])")
_SCRIPT_SCHEME = re.compile(r"(?i)((?:java|vb|live)\s*script)\s*:")
# A case-sensitive necessary condition for _SCRIPT_SCHEME, much cheaper to scan for: the
# classes hold every character that (?i) matches to each letter (tests check the sets).
_SCRIPT_HINT = re.compile("[sS\u017f][cC][rR][iI\u0130\u0131][pP][tT]\\s*:")
_HANDLER = re.compile(r"(?i)(\bon[a-z]+)\s*=")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")
_BLANK_LINE = re.compile(r"\n\s*\n")
# The ASCII characters _CONTROL matches, and the ASCII whitespace other than " " and
# "\n" (str.split() and \s agree on whitespace), for byte-level checks of ASCII text.
_ASCII_CONTROLS = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
# Maps each of those controls to a space and every other byte to itself: translate()
# without deletions is the cheaper scan, and changes nothing exactly when none is there.
_FLAG_CONTROLS = bytes(0x20 if byte in _ASCII_CONTROLS else byte for byte in range(256))
_UNSAFE_IN_URL = re.compile(r"[\s<>\"']")
# An absolute http(s) URL that urljoin() and urlsplit() leave exactly as it is: lowercase
# scheme, plain host, no params (";"), fragment or empty query.
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]{1,5})?"
    r"(?:/[A-Za-z0-9!$&'()*+,./:=@_~%-]*)?(?:\?[A-Za-z0-9!$&'()*+,./:=@_~%?-]+)?"
)
# A URL with an explicit scheme, as urlsplit() finds it.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_SPACES = re.compile(r"[^\S\n]{2,}")
# The fast path of ``extract``: markup made only of plain start/end tags with quoted,
# entity-free attribute values. Anything else (comments, CDATA, bare "<", script/style
# with their raw-text content) goes to html.parser.
_SIMPLE_TAG = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9]*)"
    r"((?:[ \t\n\f]+[a-zA-Z_][-a-zA-Z0-9_:.]*=(?:\"[^\"<>&]*\"|'[^'<>&]*'))*)"
    r"[ \t\n\f]*(/?)>"
)
_SIMPLE_ATTR = re.compile(r"([a-zA-Z_][-a-zA-Z0-9_:.]*)=(?:\"([^\"]*)\"|'([^']*)')")
_RAW_TEXT_TAGS = frozenset({"script", "style"})


@dataclass(frozen=True, slots=True)
class ExtractedText:
    text: str
    links: tuple[str, ...]


def extract(
    html: str,
    *,
    limit: int = CONTENT_LIMIT,
    base_url: str | None = None,
    inline_links: bool = False,
) -> ExtractedText:
    """Turn an HTML fragment into plain text plus the http(s) links it contains.

    With ``inline_links`` an anchor renders as ``text (url)``; otherwise its URL is only
    collected in ``links``.
    """
    html = html[: max(limit, 1) * INPUT_FACTOR]
    sink = _TextSink(base_url=base_url, inline_links=inline_links)
    if not _walk_simple(html, sink):
        sink = _TextWalker(base_url=base_url, inline_links=inline_links)
        try:
            sink.feed(html)
            sink.close()
        except Exception:  # html.parser may choke on junk; keep what we got
            pass
    # Text handlers drop control characters; an inlined link is the only other source.
    text = _finish(_layout("".join(sink.parts)), controls=inline_links)
    return ExtractedText(text=cap(text, limit), links=tuple(sink.links))


def html_to_text(html: str, *, limit: int = CONTENT_LIMIT, base_url: str | None = None) -> str:
    return extract(html, limit=limit, base_url=base_url).text


def plain_text(text: str, *, limit: int = CONTENT_LIMIT) -> str:
    """Clean text that was declared plain: normalise whitespace and scrub it."""
    text = _drop_controls(text[: max(limit, 1) * INPUT_FACTOR])
    if "\n" in text:  # a blank line needs two
        text = _BLANK_LINE.sub(_PARA_MARK, text)
    cleaned = _layout(text)
    return cap(_finish(cleaned, controls=False), limit)


def one_line(text: str) -> str:
    """Fold line breaks for fields that are a single line (titles, authors)."""
    return collapse(text)


def scrub(text: str) -> str:
    """Neutralise anything markup-like or script-like left in decoded text.

    Removals can make new matches (``<scr<b>ipt``), so repeat until nothing changes;
    every pass that changes something removes at least one ``<``, ``:`` or ``=``.
    Each pattern needs one of those characters, so a pattern is only run when its
    character is present: the result is the same, without scanning plain prose.
    """
    return _scrub_markup(_drop_controls(text))


def _scrub_markup(text: str) -> str:
    while True:
        before = text
        if "<" in text:
            text = _TAG_LIKE.sub(" ", text)
            text = _OPEN_BRACKET.sub("\u2039", text)
        if ":" in text and _SCRIPT_HINT.search(text):
            text = _SCRIPT_SCHEME.sub(r"\1 ", text)
        if "=" in text:
            text = _HANDLER.sub(r"\1 ", text)
        if text == before:
            return text


def cap(text: str, limit: int) -> str:
    """Shorten to at most ``limit`` characters, at a word boundary when one is near."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + "…"


def safe_link(href: str, base_url: str | None = None) -> str | None:
    """Return an absolute http(s) URL, or None for anything else (javascript:, data:, ...)."""
    href = _drop_controls(href).strip()
    if not href or len(href) > 4000:
        return None
    if is_plain_url(href):
        absolute = href  # what urljoin() returns for it, whatever the base
    elif explicit_scheme(href) not in (None, "http", "https"):
        return None  # joining keeps a scheme of its own, and only http(s) passes
    else:
        try:
            absolute = urljoin(base_url, href) if base_url else href
            parts = urlsplit(absolute)
        except ValueError:
            return None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None
    if _UNSAFE_IN_URL.search(absolute):
        return None
    return absolute


def is_plain_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL that urljoin() returns unchanged.

    Lowercase scheme, plain host, no params (``;``), fragment or empty query: then
    urlsplit() and urlunsplit() round-trip it exactly, whatever the base.
    """
    return _PLAIN_URL.fullmatch(url) is not None


def explicit_scheme(url: str) -> str | None:
    """The scheme urlsplit() finds in ``url`` (lowercased), or None if it has none.

    None also when the answer needs urlsplit's clean-up (leading spaces, tabs, newlines).
    """
    match = _SCHEME.match(url)
    if match is None or "\t" in url or "\r" in url or "\n" in url:
        return None
    return lower(match.group()[:-1])


def ascii_lower(name: str) -> str:
    """``lower(name)`` for an ASCII name (a tag's): most come lowercase already, and the
    test costs less than a call to ``lower``, which is plain Python."""
    return name if name.islower() else lower(name)


def _tidy(text: str) -> str:
    # Scrubbing may leave doubled spaces; its patterns allow any whitespace, so this
    # cannot assemble a new match.
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n")).strip()


def _finish(laid: str, *, controls: bool) -> str:
    """Scrub text that ``_layout`` produced, then tidy it.

    ``controls=False`` when ``laid`` cannot hold control characters (the layout marks are
    gone by now). ``_layout`` leaves single spaces between words and no space at line
    ends, so when scrubbing changed nothing, tidying would not either.
    """
    scrubbed = scrub(laid) if controls else _scrub_markup(laid)
    return laid if scrubbed == laid else _tidy(scrubbed)


def _drop_controls(text: str) -> str:
    if text.isascii():
        raw = text.encode("ascii")
        if raw.translate(_FLAG_CONTROLS) == raw:
            return text
        return raw.translate(None, _ASCII_CONTROLS).decode("ascii")
    # Every character _CONTROL matches is non-printable, so printable text has none.
    return text if text.isprintable() else _CONTROL.sub("", text)


def _layout(marked: str) -> str:
    """Collapse whitespace, then turn block marks into line and paragraph breaks."""
    # Paragraph marks around the text (as <p>...</p> leaves them) only end empty blocks.
    # (Slices compared, not startswith() with bounds: compiled, that is a generic call.)
    start, end = 0, len(marked)
    while marked[start : start + 2] == _PARA_MARK:
        start += 2
    while end - start >= 2 and marked[end - 2 : end] == _PARA_MARK:
        end -= 2
    marked = marked[start:end]
    if "\x00" not in marked and "\n" not in marked:
        return collapse(marked)  # one paragraph of one line
    paragraphs: list[str] = []
    for block in marked.split(_PARA_MARK):
        if not block:
            continue
        if "\x00" in block:
            block = block.replace(_LINE_MARK, "\n")
        if "\n" in block:
            block = "\n".join(line for line in map(collapse, block.split("\n")) if line)
        else:
            block = collapse(block)
        if block:
            paragraphs.append(block)
    return "\n\n".join(paragraphs)


def _walk_simple(html: str, sink: _TextSink) -> bool:
    """Feed ``sink`` the events html.parser would produce, if the markup is simple.

    Returns False, without touching ``sink``, when any ``<`` is not a simple tag.
    """
    if "<" not in html:
        if html:
            sink.handle_data(unescape(html))
        return True
    parts = _simple_split(html)
    if parts is None:
        return False
    names = [ascii_lower(name) for name in parts[2::5]]
    if not _RAW_TEXT_TAGS.isdisjoint(names) or _has_bad_closing(parts):
        return False
    if parts[0]:
        sink.handle_data(unescape(parts[0]))
    for at, name in enumerate(names):
        closing, _, attrs, self_closing, text = parts[5 * at + 1 : 5 * at + 6]
        _emit_tag(sink, name, closing, attrs, self_closing)
        if text:
            sink.handle_data(unescape(text))
    return True


def _simple_split(html: str) -> list[str] | None:
    """``_SIMPLE_TAG.split(html)`` ([text, closing, name, attributes, self-closing, text,
    ...]: five items per tag) if every "<" starts a simple tag, else None.

    A simple tag holds exactly one "<", its first character, so the tags are matched
    where find() puts each "<" (the regex's own search steps through every character).
    """
    parts: list[str] = []
    end = 0
    at = html.find("<")
    while at >= 0:
        tag = _SIMPLE_TAG.match(html, at)
        if tag is None:
            return None
        parts.append(html[end:at])
        parts.extend(tag.groups())
        end = tag.end()
        at = html.find("<", end)
    parts.append(html[end:])
    return parts


def _has_bad_closing(parts: list[str]) -> bool:
    """Whether any closing tag of ``_SIMPLE_TAG.split`` output has attributes or a "/>"."""
    if not any(parts[3::5]) and not any(parts[4::5]):
        return False  # no tag has either
    return any(
        closing and (attrs or self_closing)
        for closing, attrs, self_closing in zip(parts[1::5], parts[3::5], parts[4::5], strict=True)
    )


def _emit_tag(sink: _TextSink, name: str, closing: str, attrs: str, self_closing: str) -> None:
    """One tag's event; ``name`` is lowercased."""
    if closing:
        sink.handle_endtag(name)
        return
    # Only anchors read their attributes; the values hold no "&" to unescape.
    pairs = _attributes(attrs) if name == "a" else []
    if self_closing:
        sink.handle_startendtag(name, pairs)
    else:
        sink.handle_starttag(name, pairs)


def _attributes(source: str) -> list[tuple[str, str | None]]:
    return [
        (lower(name), double if double or not single else single)
        for name, double, single in _SIMPLE_ATTR.findall(source)
    ]


class _TextSink:
    """What the text extraction does with each start tag, end tag and piece of text."""

    def __init__(self, *, base_url: str | None, inline_links: bool) -> None:
        self.parts: list[str] = []
        self.links: list[str] = []
        self._base_url = base_url
        self._inline_links = inline_links
        self._skip_depth = 0
        self._pre_depth = 0
        self._anchor_urls: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            if tag not in _VOID:
                self._skip_depth += 1
            return
        if self._skip_depth:
            return
        self._break_for(tag)
        if tag == "pre":
            self._pre_depth += 1
        elif tag == "a":
            self._open_anchor(attrs)
        elif tag in _CELLS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED or self._skip_depth:
            return
        self._break_for(tag)
        if tag == "a":
            self._open_anchor(attrs)
            self._close_anchor()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip_depth = max(self._skip_depth - 1, 0)
            return
        if self._skip_depth:
            return
        if tag == "a":
            self._close_anchor()
        elif tag == "pre":
            self._pre_depth = max(self._pre_depth - 1, 0)
        if tag in _PARAGRAPHS:
            self.parts.append(_PARA_MARK)
        elif tag in _LINES and tag not in _VOID:
            self.parts.append(_LINE_MARK)

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        # Outside <pre>, a newline in HTML source is just a space. Inside, it becomes the
        # line mark, after controls are dropped: the mark holds one.
        if self._pre_depth:
            lines = (_drop_controls(line) for line in data.split("\n"))
            data = _LINE_MARK.join(lines)
        else:
            data = _drop_controls(data.replace("\n", " "))
        self.parts.append(data.replace("\xa0", " "))

    def _break_for(self, tag: str) -> None:
        if tag in _PARAGRAPHS:
            self.parts.append(_PARA_MARK)
        elif tag in _LINES:
            self.parts.append(_LINE_MARK)

    def _open_anchor(self, attrs: list[tuple[str, str | None]]) -> None:
        href = next((value for name, value in attrs if name == "href" and value), None)
        url = safe_link(href, self._base_url) if href else None
        if url and url not in self.links and len(self.links) < MAX_LINKS:
            self.links.append(url)
        self._anchor_urls.append(url)

    def _close_anchor(self) -> None:
        if not self._anchor_urls:
            return
        url = self._anchor_urls.pop()
        if url and self._inline_links:
            self.parts.append(f" ({url})")


class _TextWalker(_TextSink, HTMLParser):
    """The general path: html.parser drives the same handlers."""

    def __init__(self, *, base_url: str | None, inline_links: bool) -> None:
        HTMLParser.__init__(self, convert_charrefs=True)
        _TextSink.__init__(self, base_url=base_url, inline_links=inline_links)

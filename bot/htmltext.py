"""Feed HTML -> safe plain text.

Everything here treats its input as hostile. The HTML is walked with the stdlib
``html.parser`` (never regexes over markup); the resulting text is then scrubbed once more
so that nothing which looks like markup or a script hook survives, even when the feed
smuggled it in as escaped text (``&lt;script&gt;`` decodes to ``<script``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

TITLE_LIMIT = 500
SUMMARY_LIMIT = 2_000
CONTENT_LIMIT = 20_000
MAX_LINKS = 100
# Parsing cost is linear, but there is no point walking megabytes to keep 20k chars.
_INPUT_FACTOR = 20

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
_HANDLER = re.compile(r"(?i)(\bon[a-z]+)\s*=")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")
_BLANK_LINE = re.compile(r"\n\s*\n")
_SPACES = re.compile(r"[^\S\n]{2,}")


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
    walker = _TextWalker(base_url=base_url, inline_links=inline_links)
    try:
        walker.feed(html[: max(limit, 1) * _INPUT_FACTOR])
        walker.close()
    except Exception:  # html.parser may choke on junk; keep what we got
        pass
    text = _tidy(scrub(_layout("".join(walker.parts))))
    return ExtractedText(text=cap(text, limit), links=tuple(walker.links))


def html_to_text(html: str, *, limit: int = CONTENT_LIMIT, base_url: str | None = None) -> str:
    return extract(html, limit=limit, base_url=base_url).text


def plain_text(text: str, *, limit: int = CONTENT_LIMIT) -> str:
    """Clean text that was declared plain: normalise whitespace and scrub it."""
    text = _CONTROL.sub("", text[: max(limit, 1) * _INPUT_FACTOR])
    cleaned = _layout(_BLANK_LINE.sub(_PARA_MARK, text))
    return cap(_tidy(scrub(cleaned)), limit)


def one_line(text: str) -> str:
    """Fold line breaks for fields that are a single line (titles, authors)."""
    return " ".join(text.split())


def scrub(text: str) -> str:
    """Neutralise anything markup-like or script-like left in decoded text.

    Removals can make new matches (``<scr<b>ipt``), so repeat until nothing changes;
    every pass that changes something removes at least one ``<``, ``:`` or ``=``.
    """
    text = _CONTROL.sub("", text)
    while True:
        before = text
        text = _TAG_LIKE.sub(" ", text)
        text = _OPEN_BRACKET.sub("\u2039", text)
        text = _SCRIPT_SCHEME.sub(r"\1 ", text)
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
    href = _CONTROL.sub("", href).strip()
    if not href or len(href) > 4000:
        return None
    try:
        absolute = urljoin(base_url, href) if base_url else href
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if any(ch.isspace() or ch in "<>\"'" for ch in absolute):
        return None
    return absolute


def _tidy(text: str) -> str:
    # Scrubbing may leave doubled spaces; its patterns allow any whitespace, so this
    # cannot assemble a new match.
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n")).strip()


def _layout(marked: str) -> str:
    """Collapse whitespace, then turn block marks into line and paragraph breaks."""
    paragraphs: list[str] = []
    for block in marked.split(_PARA_MARK):
        lines = [" ".join(part.split()) for part in block.replace(_LINE_MARK, "\n").split("\n")]
        joined = "\n".join(line for line in lines if line)
        if joined:
            paragraphs.append(joined)
    return "\n\n".join(paragraphs)


class _TextWalker(HTMLParser):
    def __init__(self, *, base_url: str | None, inline_links: bool) -> None:
        super().__init__(convert_charrefs=True)
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
        # Outside <pre>, a newline in HTML source is just a space.
        data = data.replace("\n", _LINE_MARK if self._pre_depth else " ")
        self.parts.append(_CONTROL.sub("", data).replace("\xa0", " "))

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

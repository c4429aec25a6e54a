"""Escaping for Discord markdown, lengths as Discord limits them, and safe link targets.

Feed text is untrusted: a title may hold ``@everyone``, ``<@&role>``, ``**markup**`` or a
masked link such as ``[bank.com](http://evil.example)`` that shows one address and opens
another. ``md`` makes a string literal: control characters go, every masked link is
broken, markdown is escaped and mentions are defused. The bot's own links use a fixed
label (``link``), so no feed text ever decides what a link looks like.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from discord.utils import escape_markdown, escape_mentions

ELLIPSIS = "…"
ZWSP = "\u200b"
MAX_URL = 512
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
# "](" starts the target of a masked link; a zero-width space between them breaks it.
_MASKED_LINK = re.compile(r"\](\s*)\(")
# Characters that would end a masked link target or be read as markdown inside it.
_URL_UNSAFE = "()<>[]\"'` \t\r\n\\*_~|"


def units(text: str) -> int:
    """Length in UTF-16 code units: never less than the characters Discord counts."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` units, marked with an ellipsis when cut.

    Never leaves a lone trailing backslash, which would escape whatever follows.
    """
    if units(text) <= limit:
        return text
    budget = max(limit - 1, 0)
    used = 0
    cut_at = len(text)
    for index, ch in enumerate(text):
        size = 2 if ord(ch) > 0xFFFF else 1
        if used + size > budget:
            cut_at = index
            break
        used += size
    cut = text[:cut_at].rstrip()
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + ELLIPSIS if limit >= 1 else ""


def md(raw: str, limit: int) -> str:
    """Untrusted ``raw`` as literal Discord markdown, at most ``limit`` units long."""
    cleaned = _CONTROL.sub("", raw)
    cleaned = _MASKED_LINK.sub(lambda m: f"]{ZWSP}{m.group(1)}(", cleaned)
    return clip(escape_mentions(escape_markdown(cleaned)), limit)


def plain(raw: str, limit: int) -> str:
    """Untrusted ``raw`` for places Discord shows without markdown (button labels, titles
    of autocomplete choices): control characters removed, whitespace collapsed, clipped."""
    return clip(" ".join(_CONTROL.sub("", raw).split()), limit)


def safe_url(url: str | None) -> str | None:
    """``url`` made safe to stand inside ``[label](...)``, or None unless it is http(s)."""
    if not url:
        return None
    url = url.strip()
    if not url.isprintable():  # controls, line or paragraph separators: junk, not a link
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    url = parts.scheme.lower() + url[len(parts.scheme) :]  # "HTTP://" as platforms expect
    encoded = "".join(quote(ch, safe="") if ch in _URL_UNSAFE else ch for ch in url)
    return encoded if len(encoded) <= MAX_URL else None


def link(url: str | None, label: str) -> str:
    """A masked link with the bot's own ``label``; empty when the URL is unusable."""
    target = safe_url(url)
    return f"[{label}]({target})" if target else ""

"""Escaping for Slack mrkdwn, and links built only from http(s) URLs.

Slack reads ``<...>`` as a control sequence: ``<!channel>`` pings a channel, ``<@U1>`` a
user, ``<http://a|b>`` shows ``b`` while linking to ``a``. Feed text is untrusted, so every
string that reaches mrkdwn goes through ``mrkdwn`` first; only ``link`` writes ``<``.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

ELLIPSIS = "…"
MAX_URL = 1500
_ENTITY_TAIL = re.compile(r"&[a-z]{0,4}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Characters that would end or split a <url|label> sequence, or that Slack would not link.
_URL_UNSAFE = "<>|\"' \t\r\n`"


def mrkdwn(text: str) -> str:
    """``text`` as literal mrkdwn: no mentions, no links, no disguised URLs."""
    text = _CONTROL.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_url(url: str | None) -> str | None:
    """``url`` made safe to sit inside ``<...|...>``, or None unless it is http(s)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if not url.isprintable():  # controls, line or paragraph separators: junk, not a link
        return None
    url = parts.scheme.lower() + url[len(parts.scheme) :]  # "HTTP://" as platforms expect
    encoded = "".join(quote(ch, safe="") if ch in _URL_UNSAFE else ch for ch in url)
    return encoded.replace("&", "&amp;")


def link(url: str | None, label: str, limit: int = 600) -> str:
    """A mrkdwn link to ``url`` labelled ``label``; just the escaped label if the URL is unusable.

    ``limit`` bounds the escaped label, so one hostile title cannot fill a section.
    """
    shown = clip_mrkdwn(mrkdwn(label.replace("|", "¦")), limit)
    target = safe_url(url)
    if target is None or len(target) > MAX_URL:
        return shown
    return f"<{target}|{shown}>"


def clip(text: str, limit: int) -> str:
    """Plain text cut to at most ``limit`` characters, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def clip_mrkdwn(escaped: str, limit: int) -> str:
    """Escaped mrkdwn cut to ``limit`` characters without splitting an ``&amp;`` entity."""
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: max(limit - 1, 0)]
    cut = _ENTITY_TAIL.sub("", cut)
    return cut.rstrip() + ELLIPSIS


def esc(text: str, limit: int) -> str:
    """``text`` escaped for mrkdwn and then cut to ``limit`` characters."""
    return clip_mrkdwn(mrkdwn(text), limit)

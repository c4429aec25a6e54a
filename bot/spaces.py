"""Whitespace collapsing, the one place for it (feed text, summaries and claim sentences
all collapse runs of whitespace, many times per entry)."""

from __future__ import annotations

# What str.split() takes for whitespace in ASCII text, but the space.
_ODD_ASCII_SPACES = "".join(c for c in map(chr, range(128)) if c.isspace() and c != " ")


def collapse(text: str) -> str:
    """``" ".join(text.split())``; text that is already so (most lines) comes back as is."""
    if "  " not in text and text[:1] != " " and text[-1:] != " " and _only_spaces(text):
        return text
    return " ".join(text.split())


def _only_spaces(text: str) -> bool:
    """True only when the only whitespace in ``text`` is the ASCII space."""
    if text.isascii():
        # Compiled, all() over a generator is a loop with one C call per test.
        return all(space not in text for space in _ODD_ASCII_SPACES)
    return text.isprintable()  # printable text holds no whitespace but the ASCII space

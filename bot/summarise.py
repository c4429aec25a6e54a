"""Extractive summaries: one or two sentences lifted from the item's own text.

Input is plain text (HTML already stripped). Output is deterministic, at most
``max_chars`` characters, never cut inside a word, and free of feed boilerplate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Protocol

from bot.casing import lower
from bot.claims.figures import fold_case
from bot.spaces import collapse

MAX_SUMMARY_CHARS = 300
ELLIPSIS = "…"
_MIN_WORDS = 5
_MAX_SCAN_CHARS = 20_000

_BOILERPLATE = [
    # WordPress: "The post <title> appeared first on <site>."
    re.compile(r"The post\b.{0,400}?\bappeared first on\b[^.\n]{0,200}\.?", re.IGNORECASE),
    re.compile(r"\[\s*(?:…|\.\.\.|&hellip;)\s*\]"),
    re.compile(
        r"\b(?:Read (?:more|the full (?:story|article))|Continue reading|Keep reading)\b"
        r"[^.!?\n]{0,80}?(?:[.!?…]+|»|→|$)",
        re.IGNORECASE | re.MULTILINE,
    ),
    re.compile(r"\bClick here\b[^.!?\n]{0,120}[.!?]?", re.IGNORECASE),
    re.compile(
        r"\bSubscribe\b(?: (?:to|for|now|today))?[^.!?\n]{0,120}(?:newsletter|updates|inbox|"
        r"free|today|now)[^.!?\n]{0,40}[.!?]?",
        re.IGNORECASE,
    ),
    re.compile(r"^\s*Subscribe\s*[.!]?\s*$", re.IGNORECASE | re.MULTILINE),
]

# Every _BOILERPLATE pattern needs one of these (any case); most texts hold none of them.
# ("read" stands for "read more", "read the full", "continue reading", "keep reading".)
_BOILERPLATE_HINTS = ("appeared first on", "[", "read", "click here", "subscribe")

# "By Jane Doe |", "By Jane Doe and John Roe —", "BY JANE DOE: Nov 20, 2026 |" at a line start.
_BYLINE = re.compile(
    r"^[ \t]*(?:By|BY)[ \t]+[A-Z][\w.'’-]*(?:[ \t]+(?:[A-Z][\w.'’-]*|and|&)){0,5}"
    r"[ \t]*[|•·—–:-][ \t]*(?:[A-Z][a-z]{2,8}\.?[ \t]+\d{1,2},[ \t]+\d{4}[ \t]*[|•·—–:-]?[ \t]*)?",
    re.MULTILINE,
)

# fmt: off
_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "inc", "corp", "co", "ltd", "llc",
    "plc", "bros", "vs", "etc", "approx", "est", "fig", "no", "nos", "vol", "gen", "sen", "rep",
    "gov", "lt", "col", "sgt", "capt", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec", "e.g", "i.e", "cf", "al",
})
# fmt: on

# Postal-style U.S. state abbreviations, as in datelines; only when capitalised, because
# several are also ordinary words ("mass.", "ill.", "wash.").
_STATE_ABBREVIATIONS = frozenset(
    "Ala Ariz Ark Calif Colo Conn Del Fla Ga Ill Ind Kan Ky La Md Mass Mich Minn Miss Mo "
    "Mont Neb Nev Okla Ore Pa Tenn Tex Va Vt Wash Wis Wyo".split(" ")
)

# Wire-story datelines: "SAN FRANCISCO (Continental Wire) – ", "PORTLAND, Ore. (AP) — ".
_DATELINE = re.compile(
    r"^[ \t]*[A-Z][A-Z .'’-]{1,40}(?:,[ \t]+[A-Z][\w.]*(?:[ \t]+[A-Z][\w.]*)?)?"
    r"[ \t]+\([^()\n]{2,40}\)[ \t]*[–—-]+[ \t]*",
    re.MULTILINE,
)

# Candidate sentence end: terminal punctuation, optional closing quotes or brackets,
# whitespace, then something that can start a sentence. "[.!?…][.!?…]*" rather than
# "[.!?…]+": a pattern that opens with a plain character class lets the regex engine skip
# to the next candidate in C instead of trying a match at every position.
_BOUNDARY = re.compile(r"([.!?…][.!?…]*)([\"'”’)\]]*)\s+(?=[\"'“‘(\[]?[A-Z0-9])")
# _BOUNDARY with "." for every stop: on a line with "!", "?" and "…" replaced by "." it
# matches where _BOUNDARY does on the line (the stops stand nowhere else in the pattern),
# and a pattern that opens with one character is searched for far faster than a class.
_DOT_BOUNDARY = re.compile(r"(\.\.*)([\"'”’)\]]*)\s+(?=[\"'“‘(\[]?[A-Z0-9])")
# What str.splitlines() breaks ASCII text at.
_ASCII_LINE_BREAKS = "".join(c for c in map(chr, range(128)) if len(f"a{c}a".splitlines()) > 1)
_WORD = re.compile(r"\w+")
# In ASCII text a \w+ word is a run of letters, digits and "_": mapping every other
# character to a space (and capitals to small letters) lets split() find the words. A
# byte table: bytes.translate costs far less than str.translate, which looks every
# character up in a dict.
_ASCII_WORDS = bytes(
    (ord(lower(chr(c))) if _WORD.fullmatch(chr(c)) else 32) if c < 128 else c for c in range(256)
)
# A long sentence is judged by the words of its first this many characters when they
# settle it (see _judged_words).
_HEAD_CHARS = 160
_INITIALS = re.compile(r"[A-Za-z](?:\.[A-Za-z])*")


class Summariser(Protocol):
    async def summarise(self, title: str, text: str) -> str: ...


class ExtractiveSummariser:
    """The default summariser: no network, no configuration."""

    def __init__(self, max_chars: int = MAX_SUMMARY_CHARS) -> None:
        self.max_chars = max_chars

    async def summarise(self, title: str, text: str) -> str:
        return extractive_summary(title, text, self.max_chars)


def strip_boilerplate(text: str) -> str:
    """Remove feed boilerplate (syndication footers, read-more links, bylines, datelines)."""
    return "\n".join(_clean_lines(_strip_patterns(text)))


def _strip_patterns(text: str) -> str:
    # Each search is skipped when what it needs is absent (the searches cost more than the
    # rest of a summary): a byline needs "By", a dateline "(", boilerplate one of its hints.
    # Removing a byline cannot make a "(" appear, and when the text holds no hint at all no
    # pattern can match, so none changes the text for a later one.
    if "By" in text or "BY" in text:
        text = _BYLINE.sub("", text)
    if "(" in text:
        text = _DATELINE.sub("", text)
    folded = fold_case(text)
    if any(map(folded.__contains__, _BOILERPLATE_HINTS)):
        for pattern in _BOILERPLATE:
            text = pattern.sub(" ", text)
    return text


def _clean_lines(text: str) -> Iterator[str]:
    for line in _lines(text):
        if cleaned := collapse(line):
            yield cleaned


def _lines(text: str) -> list[str]:
    """``text.splitlines()``, cheaper for the usual ASCII text of a single line."""
    if text.isascii() and text and not any(map(text.__contains__, _ASCII_LINE_BREAKS)):
        return [text]
    return text.splitlines()


def split_sentences(text: str) -> list[str]:
    """Split plain text into sentences; line breaks always end a sentence."""
    return list(_sentences(map(collapse, text.splitlines())))


def _sentences(lines: Iterable[str]) -> Iterator[str]:
    """The sentences of lines whose whitespace is already collapsed."""
    for line in lines:
        yield from filter(None, _split_line(line))


def truncate_words(text: str, max_chars: int = MAX_SUMMARY_CHARS) -> str:
    """Cap ``text`` at ``max_chars`` on a word boundary, ending with "…" when cut."""
    text = collapse(text)
    if len(text) <= max_chars:
        return text
    room = max_chars - len(ELLIPSIS)
    head = text[: room + 1]
    cut = head.rfind(" ")
    # A single word longer than the cap has no boundary to cut at.
    head = head[:cut] if cut > 0 else head[:room]
    return head.rstrip(" ,;:–—-") + ELLIPSIS


def extractive_summary(title: str, text: str, max_chars: int = MAX_SUMMARY_CHARS) -> str:
    """One or two sentences of ``text``; "" when the text has nothing beyond the title."""
    # The summary comes from the opening; a bounded prefix keeps hostile input cheap.
    text = text[:_MAX_SCAN_CHARS]
    title_words = _word_set(title)
    # The first two sentences with enough words, else the first two sentences at all;
    # sentences that repeat the title do not count. Later sentences are never looked at.
    opening: list[str] = []
    full: list[str] = []
    for sentence in _sentences(_clean_lines(_strip_patterns(text))):
        words = _judged_words(title_words, sentence)
        if _repeats(title_words, words):
            continue
        if len(opening) < 2:
            opening.append(sentence)
        if len(words) >= _MIN_WORDS:
            full.append(sentence)
            if len(full) == 2:
                break
    candidates = full or opening
    if not candidates:
        return ""
    first = candidates[0]
    if len(first) > max_chars:
        return truncate_words(first, max_chars)
    if len(candidates) > 1:
        both = f"{first} {candidates[1]}"
        if len(both) <= max_chars:
            return both
    return first


def _split_line(line: str) -> Iterator[str]:
    # A generator: a summary reads only the first sentences of a long line.
    start = 0
    scan = line.replace("!", ".").replace("?", ".").replace("…", ".")
    for match in _DOT_BOUNDARY.finditer(scan):
        stop, stop_end = match.span(1)
        before = line[max(start, stop - 40) : stop]
        if stop_end - stop == 1 and line[stop] == "." and _is_abbreviation(before):
            continue
        yield line[start : match.end(2)].strip()
        start = match.end()
    yield line[start:].strip()


def _is_abbreviation(before: str) -> bool:
    """True when the period that follows ``before`` belongs to an abbreviation."""
    token = before.rsplit(None, 1)[-1] if before.strip() else ""
    token = token.lstrip("\"'“‘([")
    if not token:
        return False
    if lower(token) in _ABBREVIATIONS or token in _STATE_ABBREVIATIONS:
        return True
    # Initials and dotted acronyms: "J.", "U.S", "e.g".
    return bool(_INITIALS.fullmatch(token))


def _lower_words(text: str) -> list[str]:
    """The \\w+ words of ``text``, lowercased."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_WORDS).decode("ascii").split()
    # Not the same as lowering first: lower() can turn a letter into a letter and a mark.
    return list(map(str.lower, _WORD.findall(text)))


def _word_set(text: str) -> set[str]:
    return set(_lower_words(text))


def _judged_words(title_words: set[str], sentence: str) -> list[str]:
    """The sentence's (lowercased) words, or for a long sentence the first of them when
    they settle what the summary asks: that it has _MIN_WORDS words and does not repeat
    the title. Then `_repeats` and the word count give the same answers on them."""
    if len(sentence) > _HEAD_CHARS:
        head = _lower_words(sentence[:_HEAD_CHARS])[:-1]  # the last word may be cut short
        if len(head) >= _MIN_WORDS and _too_new(title_words, head):
            return head
    return _lower_words(sentence)


def _too_new(title_words: set[str], words: list[str]) -> bool:
    """True when more than a quarter as many distinct words as the title has are not in
    it: then the sentence's Jaccard similarity to the title is below 0.8 (it shares at most
    every title word), and neither are all its words the title's."""
    new: set[str] = set()
    for word in words:
        if word not in title_words:
            new.add(word)
            if 4 * len(new) > len(title_words):
                return True
    return False


def _repeats(title_words: set[str], words: list[str]) -> bool:
    """Does a sentence with these (lowercased) words only repeat the title?"""
    if not title_words or not words or _too_new(title_words, words):
        return False  # most sentences: settled without building their set of words
    sentence_words = set(words)
    shared = len(title_words & sentence_words)
    if shared == len(sentence_words):  # every word of the sentence is in the title
        return True
    return shared / (len(title_words) + len(sentence_words) - shared) >= 0.8

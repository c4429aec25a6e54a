"""Candidate claims from coverage: attributed statements and headline figures.

Pure functions over an item's title and text. A sentence becomes a candidate when it
attributes a statement to a tracked speaker ("Zuckerberg said", "according to Meta",
"Meta's chief AI scientist ... said") or carries a headline figure (GPUs, dollars,
parameters, users, power). Feed text is untrusted: it is only read, trimmed and measured.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from bot.casing import lower
from bot.claims.figures import Figure, extract_figures, fold_case, may_hold_figure
from bot.claims.query import claim_search_text
from bot.spaces import collapse

if TYPE_CHECKING:
    from bot.claims.lookup import ClaimRecord

MAX_STATEMENT = 280
MAX_TEXT = 100_000
MAX_CANDIDATES = 8
HEADLINE_KINDS = frozenset({"gpu_count", "compute", "money", "parameters", "users", "power"})

# Lower-case alias -> display name. Override per pack with ``speakers=``.
DEFAULT_SPEAKERS: dict[str, str] = {
    "mark zuckerberg": "Mark Zuckerberg",
    "zuckerberg": "Mark Zuckerberg",
    "zuck": "Mark Zuckerberg",
    "yann lecun": "Yann LeCun",
    "lecun": "Yann LeCun",
    "chris cox": "Chris Cox",
    "joelle pineau": "Joelle Pineau",
    "andrew bosworth": "Andrew Bosworth",
    "bosworth": "Andrew Bosworth",
    "susan li": "Susan Li",
    "ahmad al-dahle": "Ahmad Al-Dahle",
    "nick clegg": "Nick Clegg",
    "meta": "Meta",
    "meta platforms": "Meta",
}
COMPANIES = frozenset({"Meta"})
ROLE_RE = (
    r"meta(?:'s|’s)?\s+(?:ceo|chief [a-z]+(?: [a-z]+)? (?:officer|scientist)|executives?"
    r"|spokes(?:person|man|woman)|vice president[a-z ]*|head of [a-z ]+|researchers?)"
)
VERBS = (
    r"said|says|told|tells|announced|announces|wrote|writes|stated|states|claimed|claims"
    r"|expects|expected|predicted|predicts|argued|argues|added|noted|revealed|reveals"
    r"|unveiled|unveils|confirmed|confirms|estimated|estimates|plans|pledged|promised"
    r"|disclosed|forecast|projected|insisted|warned|believes|thinks"
)
ABBREVIATIONS = re.compile(
    r"\b(Inc|Corp|Co|Ltd|Mr|Ms|Mrs|Dr|U\.S|St|vs|Jan|Feb|Aug|Sept?|Oct|Nov|Dec)\.$"
)
# A sentence's stop and the gap after it (the stop is matched, not looked behind for, so
# the search can skip to the next stop).
SENTENCE_END = re.compile(r"[.!?][\"”’)]?\s+(?=[\"“(]?[A-Z0-9])")
# SENTENCE_END with "." for its stop: on a text with "!" and "?" replaced by "." it
# matches where SENTENCE_END does on the text (the stop is the only place they can stand),
# and a pattern that opens with one character lets the engine skip to the next in C,
# where a class is tried at every position (about five times slower).
_DOT_END = re.compile(r"\.[\"”’)]?\s+(?=[\"“(]?[A-Z0-9])")
# The longest abbreviation ABBREVIATIONS matches, with its dot and the character before it.
_ABBREVIATION_SPAN = len("xSept.")


@dataclass(frozen=True, slots=True)
class CandidateClaim:
    statement: str
    speaker: str | None
    figures: tuple[Figure, ...]
    reason: str  # "attribution" | "figure"
    # Its full-text index tokens, computed where the candidate is made (the parse
    # workers), not in the process that stores it.
    search_text: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        text = claim_search_text(self.statement, self.speaker, figures=self.figures)
        object.__setattr__(self, "search_text", text)

    def __reduce__(self) -> tuple[object, ...]:
        # Candidates are unpickled in the storing process: rebuild them with the search
        # text they carry, instead of the dataclass's generic (slower) __setstate__.
        fields = (self.statement, self.speaker, self.figures, self.reason, self.search_text)
        return (_rebuild_candidate, fields)


def _rebuild_candidate(
    statement: str,
    speaker: str | None,
    figures: tuple[Figure, ...],
    reason: str,
    search_text: str,
) -> CandidateClaim:
    candidate = CandidateClaim.__new__(CandidateClaim)
    set_field = object.__setattr__  # the class is frozen
    set_field(candidate, "statement", statement)
    set_field(candidate, "speaker", speaker)
    set_field(candidate, "figures", figures)
    set_field(candidate, "reason", reason)
    set_field(candidate, "search_text", search_text)
    return candidate


def split_sentences(text: str) -> list[str]:
    """Sentences of plain text; abbreviations such as "Corp." do not end one."""
    return list(_sentences(collapse(text[:MAX_TEXT])))


def _document(title: str, text: str) -> str:
    """``collapse(f"{title}.\n{text}"[:MAX_TEXT])``, the text extraction reads.

    The line break splits the two parts, so each is collapsed on its own: a long text
    that is collapsed already (most are) then comes back as is, without a split and join.
    """
    if not title or len(title) + 2 + len(text) > MAX_TEXT:
        return collapse((f"{title}.\n{text}" if title else text)[:MAX_TEXT])
    body = collapse(text)
    head = collapse(f"{title}.")
    return f"{head} {body}" if body else head


def _sentences(text: str) -> Iterator[str]:
    """Sentences of collapsed text. A generator: extraction stops reading once it has
    enough candidates."""
    start = 0
    for hit in _DOT_END.finditer(text.replace("!", ".").replace("?", ".")):
        end = hit.start() + 1  # the sentence keeps its stop
        # Only the sentence's end can hold an abbreviation: search just there.
        if ABBREVIATIONS.search(text, max(start, end - _ABBREVIATION_SPAN), end):
            continue
        if piece := text[start:end].strip():
            yield piece
        start = hit.end()
    if piece := text[start:].strip():
        yield piece


def trim_statement(sentence: str, limit: int = MAX_STATEMENT) -> str:
    """The sentence, cut at a word boundary with an ellipsis when longer than ``limit``."""
    sentence = " ".join(sentence.split())
    if len(sentence) <= limit:
        return sentence
    cut = sentence[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:-–")
    return cut + "…"


class _Speakers:
    """A speaker table with everything matching needs compiled once."""

    def __init__(self, speakers: Mapping[str, str]) -> None:
        self.table = dict(speakers)
        self.names = sorted(speakers, key=len, reverse=True)  # the longest alias wins
        who = "|".join([ROLE_RE, *(re.escape(name) for name in self.names)])
        according = rf"(?:according to\s+(?P<who1>{who})\b)"
        subject_verb = rf"(?:\b(?P<who2>{who})\b[^;!?]{{0,80}}?\b(?:{VERBS})\b)"
        source = f"{according}|{subject_verb}"
        self.pattern = re.compile(source, re.IGNORECASE)
        # `pattern` for fold_case'd text: it matches there exactly where `pattern` does on
        # the text, and without IGNORECASE two to three times faster. Only sure when the
        # pattern is lower-case ASCII, which `fold_case` is made for.
        plain = all(name.isascii() and name == name.lower() for name in self.names)
        self.folded_pattern = re.compile(source) if plain else None
        self.alias_patterns = [
            (alias, re.compile(rf"\b{re.escape(alias)}\b")) for alias in self.names
        ]
        self.any_alias = _any_of(self.names)
        people = [name for name in self.names if self.table[name] not in COMPANIES]
        self.any_person = _any_of(people) if people else None
        # Words one of which every match of `pattern` or `any_alias` holds (ROLE_RE opens
        # with "meta"); only sure for ASCII aliases, which `fold_case` is made for.
        # Checked in order: "meta" first, as coverage names the company most.
        hints = {*self.names, "meta"}
        self.hints = (
            sorted(
                (h for h in hints if not any(o != h and o in h for o in hints)),
                key=lambda hint: (hint != "meta", hint),
            )
            if all(name.isascii() for name in self.names)
            else None
        )

    def may_name(self, folded: str) -> bool:
        """False only when no alias or role can match, in any case, in the sentence whose
        `fold_case` is `folded`."""
        if self.hints is None:
            return True
        return any(map(folded.__contains__, self.hints))

    def attribution(self, sentence: str, folded: str) -> tuple[str, str] | None:
        """The alias and the whole text of `pattern`'s first match in `sentence` (whose
        `fold_case` is `folded`), or None."""
        if self.folded_pattern is None:
            hit = self.pattern.search(sentence)
            return None if hit is None else (hit.group("who1") or hit.group("who2"), hit.group(0))
        hit = self.folded_pattern.search(folded)
        if hit is None:
            return None
        # fold_case keeps every character in its place: the spans are the sentence's.
        start, end = hit.span("who1")
        if start == end:  # "according to" did not match
            start, end = hit.span("who2")
        return sentence[start:end], sentence[hit.start() : hit.end()]


@functools.lru_cache(maxsize=8)
def _speakers(items: tuple[tuple[str, str], ...]) -> _Speakers:
    return _Speakers(dict(items))


def _speaker_key(speakers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((lower(k), v) for k, v in speakers.items())


# Built once: DEFAULT_SPEAKERS does not change at run time.
_DEFAULT_KEY = _speaker_key(DEFAULT_SPEAKERS)


@functools.cache
def _default_speakers() -> _Speakers:
    # Spares each item the hashing of the whole default table for the lru_cache.
    return _speakers(_DEFAULT_KEY)


def _speaker_name(alias: str, speakers: Mapping[str, str]) -> str:
    key = " ".join(lower(alias).replace("’", "'").split())
    if key in speakers:
        return speakers[key]
    return " ".join(alias.split())  # a role as written: "Meta's chief AI scientist"


def extract_candidates(
    title: str,
    text: str,
    *,
    speakers: Mapping[str, str] | None = None,
    limit: int = MAX_CANDIDATES,
) -> list[CandidateClaim]:
    """Candidate claims of one item, in reading order, at most ``limit``."""
    table = _speakers(_speaker_key(speakers)) if speakers else _default_speakers()
    found: list[CandidateClaim] = []
    seen: set[str] = set()
    for sentence in _sentences(_document(title, text)):
        candidate = _candidate(sentence, table)
        if candidate and (key := lower(candidate.statement)) not in seen:
            seen.add(key)
            found.append(candidate)
            if len(found) >= limit:
                break
    return found


def _candidate(sentence: str, speakers: _Speakers) -> CandidateClaim | None:
    if len(sentence) < 25:
        return None
    folded = fold_case(sentence)
    # Most sentences name nobody tracked: the cheap test spares them both searches.
    if not speakers.may_name(folded):
        return None
    attribution = speakers.attribution(sentence, folded)
    if attribution:
        alias, matched = attribution
        speaker = _person_in(matched, speakers) or _speaker_name(alias, speakers.table)
        figures = _figures(sentence, folded)
        return CandidateClaim(trim_statement(sentence), speaker, figures, "attribution")
    if not speakers.any_alias.search(lower(sentence)):
        return None
    figures = _figures(sentence, folded)
    return CandidateClaim(trim_statement(sentence), None, figures, "figure") if figures else None


def _figures(sentence: str, folded: str) -> tuple[Figure, ...]:
    """The headline figures of `sentence`, whose `fold_case` is `folded`."""
    if not may_hold_figure(sentence, folded):  # most titles hold no figure
        return ()
    return tuple(f for f in extract_figures(sentence) if f.kind in HEADLINE_KINDS)


def _any_of(aliases: list[str]) -> re.Pattern[str]:
    """Matches wherever one of the (lower-case) aliases stands as a word of its own."""
    return re.compile(rf"\b(?:{'|'.join(map(re.escape, aliases))})\b")


def _person_in(text: str, speakers: _Speakers) -> str | None:
    """The first tracked person named in ``text`` (longest alias first)."""
    lowered = lower(text)
    if speakers.any_person is None or not speakers.any_person.search(lowered):
        return None  # the common case, settled by one search
    for alias, pattern in speakers.alias_patterns:
        if speakers.table[alias] not in COMPANIES and pattern.search(lowered):
            return speakers.table[alias]
    return None


def candidate_id(item_key: str | int, statement: str) -> str:
    """A stable id for a candidate: the same sentence of the same item keeps its id."""
    digest = hashlib.sha256(f"{item_key}\x00{statement}".encode()).hexdigest()[:12]
    return f"cov-{item_key}-{digest}"


def to_record(
    candidate: CandidateClaim,
    *,
    claim_id: str,
    publication: str,
    title: str,
    url: str | None,
    published: date | None,
) -> ClaimRecord:
    """The candidate as a lookup record; its source is the item itself (no seed)."""
    # Imported here: the lookup side pulls in SQLAlchemy, which workers never need.
    from bot.claims.lookup import ClaimRecord

    record = ClaimRecord(
        id=claim_id,
        statement=candidate.statement,
        speaker=candidate.speaker,
        claimed_on=published,
        publication=publication,
        source_title=title,
        url=url,
        seed=None,
        figures=candidate.figures,
        origin="coverage",
    )
    return record.with_tokens(candidate.search_text)

"""Near-duplicate story signatures: copies of one story cluster, distinct stories do not.

Outlets reword a story rather than copy it, so plain word overlap between two versions
is often only 0.05-0.15. What survives rewording are the story's salient features: its
figures ("2T parameters" and "2 trillion parameters" are one quantity), its proper names
(Ohio, Titan, Buckeye) and the words of its headline. A signature keeps five sets of
32-bit hashes, taken from the title and the lead of the text, and the publication hour:

- ``words``: content words (case-folded, stop words dropped, plural "s" trimmed);
- ``title``: the content words of the title, minus names common on the topic;
- ``figures``: normalised quantities from ``bot.claims.figures`` (a range also gives its
  ends, so "$150-170B" meets "between $150 billion and $170 billion");
- ``names``: capitalised words that do not open a sentence, minus the names nearly every
  story on the topic carries (Meta, Zuckerberg, Llama...);
- ``versions``: versioned product names ("llama 5", "gemini 4").

``evidence`` adds up points for what two stories share: each figure, name, headline word
and version, plus their overall word overlap. Versions that disagree cut it to a fifth
(two Llama launches share most words but not "3" vs "3.1"). The evidence needed rises
with the publication gap: copies of one story appear within hours, while a follow-up a
day later repeats the same names and figures but is a new story.

Everything is hashed with blake2b (MinHash rows with SHAKE-128), so signatures and keys
are identical across processes and machines (Python's own ``hash`` is salted per
process). A signature serialises to a short ASCII string; ``band_keys`` gives index keys
(MinHash LSH bands over the words plus keys per figure and per pair of names) so storage
can fetch candidates with an index lookup instead of comparing against every story.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import itertools
import re
import struct
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from bot.caches import WORD_CACHE, Memo
from bot.claims.figures import extract_figures

LEAD_WORDS: Final = 60
LEAD_CHARS: Final = 480
MAX_FEATURES: Final = 255
# Syndicated copies appear within a day or two; beyond this, similar wording is a new story
# (a quarterly forecast restated three months later, say).
MAX_HOURS_APART: Final = 72.0
BANDS: Final = 24
ROWS: Final = 2
KEYED_FIGURES: Final = 8
KEYED_NAMES: Final = 6  # 15 pairs
_VERSION: Final = "s2"
_NO_HOUR: Final = -1

# Evidence points for what two stories share (see ``evidence``).
POINTS_WORDING: Final = 2.0  # times the Jaccard overlap of all content words
POINTS_FIGURE: Final = 1.0  # per shared quantity ("2.2 GW", "$150-170B")
POINTS_NAME: Final = 0.5  # per shared proper name that is not common on the topic
POINTS_TITLE_WORD: Final = 0.3  # per shared headline word
POINTS_VERSION: Final = 0.25  # per shared versioned product name ("Llama 5")
FULL_EVIDENCE: Final = 4.0
NEEDED_AT_ONCE: Final = 1.6
NEEDED_PER_HOUR: Final = 0.05
NEEDED_UNKNOWN_TIME: Final = 2.0

_TOKEN: Final = re.compile(r"\$?\d+(?:[.,]\d+)*[a-z]*|[^\W\d_]+(?:'[^\W\d_]+)?")
# The same on ASCII text, where letters are [a-z] once case-folded: a plain class is faster.
_TOKEN_ASCII: Final = re.compile(r"\$?\d+(?:[.,]\d+)*[a-z]*|[a-z]+(?:'[a-z]+)?")
_STOPWORDS: Final = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our ours out over
    own same she should so some such than that the their theirs them then there these they
    this those through to too under until up very was we were what when where which while who
    whom why will with would you your says said say told tells new year years week day
    monday tuesday wednesday thursday friday saturday sunday today yesterday per cent percent
    like way first one two""".split()
)
# Names that nearly every story on the topic carries: they say nothing about which story.
_COMMON_NAMES: Final = frozenset(
    """meta ai mark zuckerberg platforms facebook instagram whatsapp messenger threads llama
    openai google nvidia microsoft amazon apple u.s us eu europe european ceo inc read more
    continue reading post the a an this that it its in on at for and but by new
    monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december jan feb mar apr jun jul aug sep
    sept oct nov dec""".split()
)
# A capitalised word, or a lower-case word with capitals inside ("iOS", "xAI"). The
# possessive "[a-z]++" gives the same matches (no shorter run is followed by a capital)
# and spares backtracking through every lower-case word.
_NAME: Final = re.compile(r"\b(?:[A-Z]|[a-z]++[A-Z])[\w'-]*(?:\.[A-Za-z]+)*")
# _NAME where it opens on a capital; used only at a word boundary.
_NAME_FROM_CAPITAL: Final = re.compile(r"[A-Z][\w'-]*(?:\.[A-Za-z]+)*")
# Where a name or a version may open, found in one search that skips straight to capitals:
# a capital at a word boundary ("(?<!\w[A-Z])" is the boundary before it), or one right
# after a lower-case letter (group 1), which a word opening on lower case ("iOS") holds.
_CAPITAL: Final = re.compile(r"[A-Z](?:(?<!\w[A-Z])|(?<=[a-z][A-Z])())")
_OPENS_LOWER_CAPITAL: Final = re.compile(r"\b[a-z]++[A-Z]")
# "(?<!\w[A-Z])" after the capital is the word boundary before it: written so, the pattern
# opens with a character class, and the search skips straight to capitals (~3x faster).
_VERSIONED: Final = re.compile(r"([A-Z](?<!\w[A-Z])[A-Za-z-]*)[\s-](\d+(?:\.\d+)?)\b(?![.,]\d)")
# "Llama-5-14B": a model name glued to its size, which would read as the range "5-14B".
_GLUED_SIZE: Final = re.compile(r"\b([A-Za-z]+)-(\d+(?:\.\d+)?)-(?=\d)")
# What every match of _GLUED_SIZE holds: a search for it skips straight to hyphens.
_GLUED_HINT: Final = re.compile(r"-\d")
# "By Helen Okoro | Nov 20, 2026 |" and "COLUMBUS, Ohio (Continental Wire) –": not the story.
_BYLINE: Final = re.compile(
    r"^\s*(?:By [^|\n]{1,60}\|\s*)?(?:[A-Z][a-z]{2}\.? \d{1,2}, \d{4} \|\s*)?"
)
_DATELINE: Final = re.compile(r"^[A-Z][A-Z .'’-]+(?:, [\w. ]+)?\s*\([^)\n]{1,40}\)\s*[–—-]\s*")
# Figures that identify a story: money, power, model sizes, users, GPUs, or any large count.
_SALIENT_KINDS: Final = frozenset({"money", "power", "parameters", "users", "gpu_count", "compute"})
_SPACE: Final = re.compile(r"\s")
_SENTENCE_END: Final = frozenset('.!?:;"“”|–—(')


@dataclass(frozen=True, slots=True)
class Signature:
    words: frozenset[int]
    title: frozenset[int] = frozenset()
    figures: frozenset[int] = frozenset()
    names: frozenset[int] = frozenset()
    versions: frozenset[int] = frozenset()
    hour: int | None = None  # publication time, whole hours since the Unix epoch
    # One bit per word (its hash's low bits), and how many words share a bit with another:
    # together they bound the words two signatures share (see _reaches), so most
    # comparisons end without intersecting the sets. Worked out on first comparison.
    sketch: int = field(default=-1, init=False, compare=False, repr=False)
    collided: int = field(default=0, init=False, compare=False, repr=False)
    # The same for figures, names and headline words, in small integers (see _Marks).
    marks: _Marks | None = field(default=None, init=False, compare=False, repr=False)

    def dumps(self) -> str:
        """Compact ASCII form for storage (about 5.4 characters per feature)."""
        groups = self._groups()
        values = list(itertools.chain.from_iterable(map(sorted, groups)))
        hour = _NO_HOUR if self.hour is None else self.hour
        raw = struct.pack(f">5Bi{len(values)}I", *map(len, groups), hour, *values)
        return f"{_VERSION}:{base64.b64encode(raw).decode('ascii')}"

    @classmethod
    def loads(cls, text: str) -> Signature:
        version, _, payload = text.partition(":")
        if version not in ("s1", _VERSION):
            raise ValueError(f"unknown signature version {version!r}")
        try:
            # base64.b64decode(payload, validate=True) without its Python-level wrapper.
            raw = binascii.a2b_base64(payload, strict_mode=True)
            return _load_v1(raw) if version == "s1" else _load_v2(raw)
        except (binascii.Error, IndexError, struct.error) as exc:
            raise ValueError("corrupt signature") from exc

    def _groups(self) -> tuple[frozenset[int], ...]:
        return (self.words, self.title, self.figures, self.names, self.versions)


def _load_v1(raw: bytes) -> Signature:
    """Signatures stored before figures and names existed: their words still compare."""
    n_words, n_numbers = raw[0], raw[1]
    values = struct.unpack(f">{n_words + n_numbers}I", raw[2:])
    return Signature(frozenset(values[:n_words]))


def _load_v2(raw: bytes) -> Signature:
    counts = struct.unpack(">5B", raw[:5])
    (hour,) = struct.unpack(">i", raw[5:9])
    values = struct.unpack(f">{sum(counts)}I", raw[9:])
    groups = []
    start = 0
    for count in counts:
        groups.append(frozenset(values[start : start + count]))
        start += count
    words, title, figures, names, versions = groups
    return Signature(words, title, figures, names, versions, None if hour == _NO_HOUR else hour)


def signature(title: str, text: str, *, published: datetime | None = None) -> Signature:
    """The signature of a story; pass ``published`` so comparisons can weigh the time gap."""
    lead = _lead(text)
    title_tokens = _tokens(title)
    lead_tokens = _tokens(lead)[:LEAD_WORDS]
    names, versions = _names(title, lead)
    return Signature(
        words=_hashed(title_tokens + lead_tokens),
        title=_hashed(t for t in title_tokens if t not in _COMMON_NAMES and not t[0].isdigit()),
        figures=_hashed(_figure_keys(f"{_split_glued(title)}\n{lead}")),
        names=_hashed(names),
        versions=_hashed(versions),
        hour=None if published is None else _hours(published),
    )


def evidence(a: Signature, b: Signature) -> float:
    """How much two stories share, in points: the salient features plus general wording.

    Not normalised by length on purpose: a shared figure or a rare name is evidence however
    long the stories are, and salient features rarely coincide by chance.
    """
    return _points(a, b, len(a.words & b.words))


def _reaches(a: Signature, b: Signature, needed: float) -> bool:
    """evidence(a, b) >= needed. Shared words sit on the sketches' common bits, several on
    one bit only where a signature's words collide, so there are at most that many common
    bits plus either side's collisions. Counted with that many shared words, the evidence
    is at least the real one (every step of _sum grows with each count, in floating point
    too), so falling short of `needed` then settles it. The marks bound the shared figures,
    names and headline words likewise, and settle most comparisons without a set built."""
    common = (_sketch(a) & _sketch(b)).bit_count()
    # No more than either side's words: the common bits are at most a's bits, its words
    # less its collisions (likewise b's).
    at_most = common + min(a.collided, b.collided)
    marks, other = _marks(a), _marks(b)
    figures = _at_most(marks.figures, other.figures, marks.figures_collided, other.figures_collided)
    names = _at_most(marks.names, other.names, marks.names_collided, other.names_collided)
    title = _at_most(marks.title, other.title, marks.title_collided, other.title_collided)
    if _sum(a, b, at_most, figures, names, title) < needed:
        return False
    if _points(a, b, at_most) < needed:
        return False
    return evidence(a, b) >= needed


def _sketch(sig: Signature) -> int:
    if sig.sketch < 0:
        sketch = 0
        for word in sig.words:
            sketch |= _SKETCH_BITS[word & _SKETCH_MASK]
        object.__setattr__(sig, "sketch", sketch)  # a cache: the signature does not change
        object.__setattr__(sig, "collided", len(sig.words) - sketch.bit_count())
    return sig.sketch


class _Marks:
    """A signature's figures, names and headline words as one bit each (its hash modulo
    _MARK_BITS) in an integer small enough to stay unboxed, and per group how many share
    a bit with another: as the word sketch, they bound what two signatures share."""

    def __init__(self, sig: Signature) -> None:
        self.figures, self.figures_collided = _mark(sig.figures)
        self.names, self.names_collided = _mark(sig.names)
        self.title, self.title_collided = _mark(sig.title)


def _marks(sig: Signature) -> _Marks:
    marks = sig.marks
    if marks is None:
        marks = _Marks(sig)
        object.__setattr__(sig, "marks", marks)  # a cache, as the sketch
    return marks


def _mark(values: frozenset[int]) -> tuple[int, int]:
    mark = 0
    for value in values:
        mark |= 1 << (value % _MARK_BITS)
    return mark, len(values) - _ones(mark)


def _at_most(mark: int, other: int, collided: int, other_collided: int) -> int:
    """At most how many values two marked groups share (see _reaches)."""
    common = mark & other
    if common == 0:
        return 0
    return _ones(common) + min(collided, other_collided)


def _ones(bits: int) -> int:
    """The set bits of a small non-negative integer (a few, here: one step each)."""
    count = 0
    while bits:
        bits &= bits - 1
        count += 1
    return count


def _points(a: Signature, b: Signature, shared_words: int) -> float:
    return _sum(
        a,
        b,
        shared_words,
        len(a.figures & b.figures),
        len(a.names & b.names),
        len(a.title & b.title),
    )


def _sum(a: Signature, b: Signature, words: int, figures: int, names: int, title: int) -> float:
    """The evidence of these counts of shared words, figures, names and headline words."""
    # Shared words give the Jaccard overlap: shared / the size of the union, without
    # building the union. Terms that come to zero are skipped (adding 0.0 changes no sum).
    points = POINTS_WORDING * (words / (len(a.words) + len(b.words) - words)) if words else 0.0
    if figures:
        points += POINTS_FIGURE * figures
    if names:
        points += POINTS_NAME * names
    if title:
        points += POINTS_TITLE_WORD * title
    if a.versions and b.versions:
        if shared := len(a.versions & b.versions):
            points += POINTS_VERSION * shared
        else:
            points *= 0.2  # "Llama 3" and "Llama 3.1" launches share most words, not the version
    return points


def similarity(a: Signature, b: Signature) -> float:
    """0..1: ``evidence`` on a scale where copies of one story reach 1."""
    return min(1.0, evidence(a, b) / FULL_EVIDENCE)


def is_same_story(a: Signature, b: Signature, *, hours_apart: float | None = None) -> bool:
    """True for copies of one story.

    The publication gap is ``hours_apart`` when given, else taken from the signatures
    when both carry their publication time.
    """
    if hours_apart is None:
        if a.hour is None or b.hour is None:
            return _reaches(a, b, NEEDED_UNKNOWN_TIME)
        hours_apart = float(a.hour - b.hour)
    gap = abs(hours_apart)
    if gap > MAX_HOURS_APART:
        return False
    return _reaches(a, b, NEEDED_AT_ONCE + NEEDED_PER_HOUR * gap)  # needed(), gap <= max


def first_copy(stories: Iterable[Iterable[Signature]], new: Signature) -> int | None:
    """The position of the first of `stories` (each given by signatures of its copies)
    holding a copy of `new`: ``is_same_story(old, new)`` for one of its `old`. None if none.

    An entry is compared with up to a hundred stored copies, nearly all of which the
    sketch and the marks turn away (see _reaches).
    """
    for at, stored in enumerate(stories):
        for old in stored:
            if _copy_of(old, new):
                return at
    return None


def first_stored_copy(stories: Iterable[Iterable[str]], new: str) -> int | None:
    """``first_copy`` on stored signatures (``Signature.dumps``), each decoded once while
    it stays among the recently compared ones."""
    sig = decoded(new)
    for at, stored in enumerate(stories):
        for old in stored:
            if _copy_of(_DECODED.get(old), sig):
                return at
    return None


def decoded(text: str) -> Signature:
    """``Signature.loads(text)``, kept while recently compared (see _Decoded)."""
    return _DECODED.get(text)


def _copy_of(old: Signature, new: Signature) -> bool:
    """is_same_story(old, new) (their publication gap from the signatures)."""
    if new.hour is None or old.hour is None:
        return _reaches(old, new, NEEDED_UNKNOWN_TIME)
    gap = abs(float(old.hour - new.hour))
    return gap <= MAX_HOURS_APART and _reaches(old, new, NEEDED_AT_ONCE + NEEDED_PER_HOUR * gap)


class _Decoded:
    """Decoded stored signatures, the recently asked for: at most two generations of
    `limit` each, the older dropped when the newer fills (a new entry is compared with
    recent stories, so the same stored copies recur). ~2.6 KB each once sketched, so at
    most ~11 MB with _DECODED's 2 x 2,048 (the lru_cache it replaced held 2,048, but
    missed more often than two generations of 2,048 in the ingest bench)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.newer: dict[str, Signature] = {}
        self.older: dict[str, Signature] = {}

    def get(self, text: str) -> Signature:
        sig = self.newer.get(text)
        if sig is None:
            sig = self.older.get(text)
            if sig is None:
                sig = Signature.loads(text)
            if len(self.newer) >= self.limit:
                self.older, self.newer = self.newer, {}
            self.newer[text] = sig
        return sig


def needed(hours_apart: float | None) -> float:
    """The evidence two stories need to be one, given their publication gap.

    Copies of a story appear within hours; a follow-up a day later repeats the same names
    and figures but is a new story, so the bar rises with the gap.
    """
    if hours_apart is None:
        return NEEDED_UNKNOWN_TIME
    return NEEDED_AT_ONCE + NEEDED_PER_HOUR * min(abs(hours_apart), MAX_HOURS_APART)


def band_keys(sig: Signature) -> list[str]:
    """Index keys (at most 48, each 9-14 characters): stories sharing any key are candidates.

    MinHash bands over the words find copies that keep the wording: with 24 bands of 2
    rows, a pair with word overlap 0.27 shares a band with probability about 0.84. A key
    per figure and per pair of names finds reworded copies; both are sampled by smallest
    hash, so two stories that share a figure or a pair of names tend to pick the same ones.
    """
    keys = _minhash_bands(sig.words) if sig.words else []
    keys += [f"f{value:08x}" for value in sorted(sig.figures)[:KEYED_FIGURES]]
    names = sorted(sig.names)[:KEYED_NAMES]
    keys += [f"n{_hash32(f'{x}:{y}'):08x}" for x, y in itertools.combinations(names, 2)]
    return keys


def _minhash_bands(words: frozenset[int]) -> list[str]:
    """The LSH band keys of a non-empty word set."""
    # Each word's SHAKE-128 output gives it BANDS * ROWS independent 32-bit hash values (one
    # per MinHash row), packed side by side into one integer (see _row_lanes). The minimum
    # per row is taken for all rows at once. The accumulator keeps a guard bit set above
    # each lane, so per lane acc - other keeps it exactly when acc >= other and never
    # borrows from the lane above; the guards then become masks of the lanes where
    # acc >= other, and taking acc - other off acc there leaves other. Row by row in Python,
    # this was ~1,500 integer objects and comparisons per story; now it is a few operations
    # on one integer per word.
    lanes = map(_LANES.__getitem__, words)
    acc = next(lanes) | _GUARDS
    for other in lanes:
        diff = acc - other
        guards = diff & _GUARDS
        acc -= diff & (guards - (guards >> _ROW_BITS))
    # The minima as one big-endian byte string, cut into bands of 4 * ROWS bytes.
    mins = _MINS_STRUCT.pack(*_LANES_STRUCT.unpack(acc.to_bytes(_LANES_BYTES, "big")))
    keys = []
    for prefix, band in zip(_BAND_PREFIXES, _BANDS_STRUCT.unpack(mins), strict=True):
        # A copy of a set-up hash is cheaper than a new one (no keyword arguments to parse).
        hashed = _BAND_HASH.copy()
        hashed.update(band)
        keys.append(prefix + hashed.hexdigest())
    return keys


@functools.lru_cache(maxsize=WORD_CACHE)
def _row_lanes(value: int) -> int:
    """A word's MinHash row values as one integer: row 0 in the top lane, each 32-bit value
    in a 40-bit lane whose spare bits leave room for a guard bit (see _minhash_bands).

    Cached (~270 B each, ~4 MB when full): news vocabulary repeats, and the SHAKE call was
    most of band_keys' cost.
    """
    digest = hashlib.shake_128(value.to_bytes(4, "big")).digest(_ROW_BYTES)
    padded = b"".join(b"\0" + digest[at : at + 4] for at in range(0, _ROW_BYTES, 4))
    return int.from_bytes(padded, "big")


def _lead(text: str) -> str:
    text = _DATELINE.sub("", _BYLINE.sub("", text, count=1), count=1)
    # Only the lead is kept. _GLUED_SIZE keeps the length of what it rewrites, and no match
    # holds whitespace, so text past the first whitespace after the lead changes nothing.
    space = _SPACE.search(text, LEAD_CHARS + 1)
    text = _split_glued(text[: space.start()] if space else text)
    if len(text) <= LEAD_CHARS:
        return text
    cut = text.rfind(" ", 0, LEAD_CHARS)
    return text[: cut if cut > 0 else LEAD_CHARS]


def _split_glued(text: str) -> str:
    """Part a model name from its glued size: "Llama-5-14B" -> "Llama 5 14B". A second pass
    changes nothing, so the lead, split already, is not split again."""
    if not _GLUED_HINT.search(text):
        return text  # the usual case, found far faster than by the full pattern
    return _GLUED_SIZE.sub(r"\1 \2 ", text)


def _figure_keys(text: str) -> list[str]:
    """One key per quantity in `text` (glued sizes already split), two significant digits;
    a range also gives its ends."""
    keys: list[str] = []
    for figure in extract_figures(text):
        if figure.kind not in _SALIENT_KINDS and figure.high < 1000:
            continue  # "20 years", "9%": common to many stories
        if figure.approx and figure.low != figure.high and figure.high >= 10 * figure.low:
            continue  # "hundreds of millions": too vague to identify a story
        ends = {figure.low, figure.high}
        keys.extend(_round(value) for value in sorted(ends) if value > 0)
        if figure.is_range:
            keys.append(f"{_round(figure.low)}-{_round(figure.high)}")
    return keys


def _round(value: float) -> str:
    return f"{float(f'{value:.2g}'):g}"


def _names(title: str, lead: str) -> tuple[list[str], list[str]]:
    """Proper names (capitalised words that do not open a sentence) and product versions."""
    names: list[str] = []
    versions: list[str] = []
    for text in [lead] if _title_case(title) else [title, lead]:
        text = unicodedata.normalize("NFKC", text).replace("’", "'")
        starts, opens_lower = _capitals(text)
        # What _VERSIONED.finditer(text) finds: its matches open on capitals at a boundary.
        end = 0
        for at in starts:
            if at >= end and (hit := _VERSIONED.match(text, at)):
                versions.append(f"{hit.group(1).casefold()} {hit.group(2)}")
                end = hit.end()
        for hit in _NAME.finditer(text) if opens_lower else _names_from(text, starts):
            if _opens_sentence(text, hit.start()):
                continue
            name = _stem(hit.group(0).casefold().rstrip("'-").removesuffix("'s"))
            if name not in _COMMON_NAMES:
                names.append(name)
    return names, versions


def _capitals(text: str) -> tuple[list[int], bool]:
    """Where the capitals at a word boundary are, and whether a word opens on lower-case
    letters followed by a capital ("iOS", "xAI"), the one other place _NAME can match."""
    starts: list[int] = []
    opens_lower = False
    for hit in _CAPITAL.finditer(text):
        if hit.lastindex is None:
            starts.append(hit.start())
        elif not opens_lower:
            at = hit.start() - 1
            while at and "a" <= text[at - 1] <= "z":
                at -= 1  # to the start of the lower-case run: each run is walked only once
            opens_lower = _OPENS_LOWER_CAPITAL.match(text, at) is not None
    return starts, opens_lower


def _names_from(text: str, starts: list[int]) -> list[re.Match[str]]:
    """What ``_NAME.finditer(text)`` finds when no word opens on lower case: every match then
    opens on one of `starts`, the capitals at a word boundary. The search would try _NAME at
    every position; this tries it only there."""
    hits = []
    end = 0
    for at in starts:
        if at >= end and (hit := _NAME_FROM_CAPITAL.match(text, at)):
            hits.append(hit)
            end = hit.end()
    return hits


def _opens_sentence(text: str, start: int) -> bool:
    before = text[max(0, start - 4) : start].rstrip()
    return not before or before[-1] in _SENTENCE_END


def _title_case(title: str) -> bool:
    words = [w for w in title.split() if w[:1].isalpha() and len(w) > 3]
    return len(words) >= 3 and sum(w[0].isupper() for w in words) > 0.6 * len(words)


def _tokens(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    # No token holds whitespace, so the tokens are those of each whitespace-separated chunk.
    return list(itertools.chain.from_iterable(map(_CHUNK_TOKENS.__getitem__, folded.split())))


def _chunk_tokens(chunk: str) -> tuple[str, ...]:
    """The tokens of a chunk of folded text without whitespace, stop words dropped."""
    if chunk.isalpha():
        raw = [chunk]  # most chunks: one token, found without the pattern
    else:
        raw = (_TOKEN_ASCII if chunk.isascii() else _TOKEN).findall(chunk)
    return tuple(filter(None, map(_clean, raw)))


@functools.lru_cache(maxsize=WORD_CACHE)
def _clean(raw: str) -> str:
    """A raw token's stem, or "" for a stop word (cached: news vocabulary repeats)."""
    token = _stem(raw.removesuffix("'s").lstrip("$").replace(",", ""))
    return "" if token in _STOPWORDS else token


def _stem(token: str) -> str:
    if token[0].isdigit() or len(token) <= 3 or token.endswith(("ss", "us", "is")):
        return token
    return token[:-1] if token.endswith("s") else token


def _hours(when: datetime) -> int:
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return int(aware.timestamp() // 3600)


def _hashed(values: Iterable[str]) -> frozenset[int]:
    """The first MAX_FEATURES distinct hashes of `values`."""
    hashes = list(map(_HASHES.__getitem__, values))
    if len(hashes) <= MAX_FEATURES:
        return frozenset(hashes)  # the common case: there is nothing to cut
    return frozenset(list(dict.fromkeys(hashes))[:MAX_FEATURES])


@functools.lru_cache(maxsize=WORD_CACHE)
def _hash32(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "big")


_SKETCH_MASK: Final = 1023  # 1,024 bits: ~65 words each, so ~4 bits in common by chance
_SKETCH_BITS: Final = [1 << bit for bit in range(_SKETCH_MASK + 1)]  # spares a shift per word
_MARK_BITS: Final = 61  # bits 0-60: below 2**62, mypyc's unboxed integers
_ROW_BYTES: Final = 4 * BANDS * ROWS
_ROW_BITS: Final = 32
_LANE_BITS: Final = 40
_LANES_BYTES: Final = BANDS * ROWS * _LANE_BITS // 8
_GUARDS: Final = sum(1 << (lane * _LANE_BITS + _ROW_BITS) for lane in range(BANDS * ROWS))
_LANES_STRUCT: Final = struct.Struct(">" + "xI" * (BANDS * ROWS))  # the guard byte, then the value
_MINS_STRUCT: Final = struct.Struct(f">{BANDS * ROWS}I")
_BANDS_STRUCT: Final = struct.Struct(">" + f"{4 * ROWS}s" * BANDS)  # one byte string per band
_BAND_PREFIXES: Final = [f"{band:02d}" for band in range(BANDS)]
_BAND_HASH: Final = hashlib.blake2b(digest_size=6)  # never updated: each band hashes a copy

_DECODED: Final = _Decoded(2048)
_CHUNK_TOKENS: Final[Memo[str, tuple[str, ...]]] = Memo(_chunk_tokens)
_HASHES: Final[Memo[str, int]] = Memo(_hash32)
_LANES: Final[Memo[int, int]] = Memo(_row_lanes)

"""Near-duplicate story signatures: syndicated copies cluster, distinct stories do not.

A signature is built from the title and the lead of the text: the set of content words
(case-folded, stop words dropped, plural "s" trimmed) and, separately, the numbers (405b,
3.1, 350,000, $40). Similarity is the Jaccard overlap of the words, cut down when the
stories' numbers disagree: two Llama launches share most words but not "3" vs "3.1".

Everything is hashed with blake2b, so signatures are identical across processes and
machines (Python's own ``hash`` is salted per process). A signature serialises to a short
ASCII string; ``band_keys`` gives MinHash LSH keys so storage can fetch candidates with an
index lookup instead of comparing against every stored story.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import unicodedata
from dataclasses import dataclass

LEAD_WORDS = 60
MAX_FEATURES = 255
SAME_STORY_THRESHOLD = 0.27
# Syndicated copies appear within a day or two; beyond this, similar wording is a new story
# (a quarterly forecast restated three months later, say).
MAX_HOURS_APART = 72.0
BANDS = 32
ROWS = 2
_VERSION = "s1"
_MERSENNE = (1 << 61) - 1

_TOKEN = re.compile(r"\$?\d+(?:[.,]\d+)*[a-z]*|[^\W\d_]+(?:'[^\W\d_]+)?")
_STOPWORDS = frozenset(
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


@dataclass(frozen=True, slots=True)
class Signature:
    words: frozenset[int]
    numbers: frozenset[int]

    def dumps(self) -> str:
        """Compact ASCII form for storage (about 5.4 characters per feature)."""
        words, numbers = sorted(self.words), sorted(self.numbers)
        raw = struct.pack(
            f">BB{len(words)}I{len(numbers)}I", len(words), len(numbers), *words, *numbers
        )
        return f"{_VERSION}:{base64.b64encode(raw).decode('ascii')}"

    @classmethod
    def loads(cls, text: str) -> Signature:
        version, _, payload = text.partition(":")
        if version != _VERSION:
            raise ValueError(f"unknown signature version {version!r}")
        try:
            raw = base64.b64decode(payload, validate=True)
            n_words, n_numbers = raw[0], raw[1]
            values = struct.unpack(f">{n_words + n_numbers}I", raw[2:])
        except (binascii.Error, IndexError, struct.error) as exc:
            raise ValueError("corrupt signature") from exc
        return cls(frozenset(values[:n_words]), frozenset(values[n_words:]))


def signature(title: str, text: str) -> Signature:
    title_tokens = _tokens(title)
    lead_tokens = _tokens(text)[:LEAD_WORDS]
    words: list[int] = []
    numbers: list[int] = []
    for token in (*title_tokens, *lead_tokens):
        target = numbers if token[0].isdigit() else words
        target.append(_hash32(token))
    return Signature(_capped(words), _capped(numbers))


def similarity(a: Signature, b: Signature) -> float:
    """0..1: word overlap, reduced when both mention numbers and share none of them."""
    words = _jaccard(a.words, b.words)
    if not (a.numbers and b.numbers):
        return words
    shared = len(a.numbers & b.numbers)
    smaller = min(len(a.numbers), len(b.numbers))
    # Scales from 0.2 (no number in common) to 1 (the shorter list is fully shared): copies
    # of one story repeat its figures, while "Llama 3" and "Llama 3.1" launches do not.
    return min(1.0, words * (0.2 + 0.8 * shared / smaller))


def is_same_story(a: Signature, b: Signature, *, hours_apart: float | None = None) -> bool:
    """True for copies of one story; pass ``hours_apart`` (publication gap) when known."""
    if hours_apart is not None and abs(hours_apart) > MAX_HOURS_APART:
        return False
    return similarity(a, b) >= SAME_STORY_THRESHOLD


def band_keys(sig: Signature) -> list[str]:
    """LSH keys over the word set: stories that share any key are candidates.

    With 32 bands of 2 MinHash rows, a pair with word overlap 0.27 shares a key with
    probability about 0.91, one at 0.4 about 0.996, one at 0.1 about 0.27.
    """
    if not sig.words:
        return []
    mins = [min(_permute(i, value) for value in sig.words) for i in range(BANDS * ROWS)]
    keys = []
    for band in range(BANDS):
        rows = mins[band * ROWS : (band + 1) * ROWS]
        digest = hashlib.blake2b(struct.pack(f">{ROWS}Q", *rows), digest_size=6).hexdigest()
        keys.append(f"{band:02d}{digest}")
    return keys


def _tokens(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    tokens = []
    for token in _TOKEN.findall(folded):
        token = _stem(token.removesuffix("'s").lstrip("$").replace(",", ""))
        if token and token not in _STOPWORDS:
            tokens.append(token)
    return tokens


def _stem(token: str) -> str:
    if token[0].isdigit() or len(token) <= 3 or token.endswith(("ss", "us", "is")):
        return token
    return token[:-1] if token.endswith("s") else token


def _capped(values: list[int]) -> frozenset[int]:
    return frozenset(list(dict.fromkeys(values))[:MAX_FEATURES])


def _jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _hash32(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "big")


def _permute(index: int, value: int) -> int:
    # Fixed, seedless "random" permutations: a_i, b_i derived from the index itself.
    a, b = _COEFFICIENTS[index]
    return (a * value + b) % _MERSENNE


def _coefficients(count: int) -> list[tuple[int, int]]:
    pairs = []
    for index in range(count):
        digest = hashlib.blake2b(f"minhash-{index}".encode(), digest_size=16).digest()
        a = int.from_bytes(digest[:8], "big") % (_MERSENNE - 1) + 1
        b = int.from_bytes(digest[8:], "big") % _MERSENNE
        pairs.append((a, b))
    return pairs


_COEFFICIENTS = _coefficients(BANDS * ROWS)

"""How people type a claim lookup, turned into search terms and figures.

Documents (claims) and queries go through the same ``tokenize`` so that "Llama3",
"Llama 3" and "llama-3" meet, "H100s" meets "H100", "open-source" meets "OSS".
A query adds synonym alternatives, typo corrections against a vocabulary, and figures.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress, filterfalse

from bot.caches import WORD_CACHE, Memo
from bot.casing import lower
from bot.claims.figures import Figure, figure_tokens, find_figures

MAX_QUERY_CHARS = 2000
MAX_GROUPS = 24
USAGE = (
    "Type what you want to look up: a name, a topic or a figure, "
    'e.g. "350k H100s", "Zuckerberg AGI" or "Llama 3 405B".'
)

_STOPWORDS = """a an the of to in on for and or not no is are was were be been by with at as it its
    that this these those what who whom when where which why how did does do doing say said
    says about from much many will would could should can has have had than then there
    their they them he she his her we our you your i me my near claim claims tell show
    any all some also into over per via vs versus"""
STOPWORDS = frozenset(_STOPWORDS.split())
SPELLING = {
    "license": "licence",
    "licenses": "licence",
    "licensed": "licenced",
    "centre": "center",
    "centres": "center",
    "commoditize": "commoditise",
    "gpus": "gpu",
    "cpus": "cpu",
    "tpus": "tpu",
    "params": "parameter",
    "param": "parameter",
    "zuck": "zuckerberg",
    "zuckerberg's": "zuckerberg",
    "oss": "opensource",
    "fb": "facebook",
    "ig": "instagram",
    "nvda": "nvidia",
    "gw": "gigawatt",
    "datacentre": "datacenter",
    "mau": "mau",
    "gpt4": "gpt4",
}
# Bigrams that name one thing; the merged token is added next to its parts.
BIGRAMS = {
    ("open", "source"): "opensource",
    ("open", "sourced"): "opensource",
    ("open", "sourcing"): "opensource",
    ("open", "weight"): "opensource",
    ("data", "center"): "datacenter",
    ("general", "intelligence"): "agi",
    ("superintelligence", ""): "agi",
    ("capital", "expenditure"): "capex",
    ("meta", "ai"): "metaai",
    ("monthly", "user"): "mau",
}
# Query-side alternatives: a term also matches any of these.
ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "gpu": ("h100", "chip"),
    "h100": ("gpu",),
    "chip": ("gpu", "h100"),
    "cost": ("spend", "spending", "capex", "price"),
    "spend": ("spending", "cost", "capex"),
    "spending": ("spend", "cost", "capex"),
    "capex": ("spending", "spend"),
    "licence": ("license",),
    "datacenter": ("data",),
    "user": ("mau",),
    "opensource": ("open",),
    "release": ("released", "launch", "shipped"),
    "released": ("release", "launch", "shipped"),
    "launch": ("release", "released"),
    "model": ("llama",),
    "zuckerberg": ("mark",),
}
_BIGRAM_FIRSTS = frozenset(first for first, _ in BIGRAMS)
_MERGED = frozenset(BIGRAMS.values())
_GLUED_NAMES = frozenset({"llama", "gpt"})  # names that take a following version number
_VERSION_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_GLUE_HINT = re.compile(rf"(?:{'|'.join(sorted(_GLUED_NAMES))})[^a-z0-9]*\d")
VERSIONED = re.compile(r"^(llama|gpt|h|a)(\d+)(?:\.(\d+))?$")
TOKEN_RE = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?(?:'s)?")


def _stem(word: str) -> str:
    word = word.removesuffix("'s")
    if word in SPELLING:
        return SPELLING[word]
    if len(word) > 5 and word.endswith("sses"):
        return word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return SPELLING.get(word, word)


def _versions(word: str) -> list[str]:
    """'llama3.1' -> llama, llama3, llama31; 'gpt4' -> gpt, gpt4; 'h100' stays."""
    hit = VERSIONED.match(word)
    if not hit or hit.group(1) in {"h", "a"}:
        return [word]
    name, major, minor = hit.groups()
    out = [name, f"{name}{major}"]
    if minor:
        out.append(f"{name}{major}{minor}")
    return out


def _fold(text: str) -> str:
    return lower(unicodedata.normalize("NFKC", text)).replace("\u2019", "'")


def _join_versions(words: list[str]) -> list[str]:
    """Glue 'llama' / 'gpt' to a following version number: 'llama 3.1' -> 'llama3.1'."""
    if _GLUED_NAMES.isdisjoint(words):
        return words
    out: list[str] = []
    for word in words:
        if out and out[-1] in _GLUED_NAMES and _VERSION_NUMBER.fullmatch(word):
            out[-1] = out[-1] + word
            continue
        out.append(word)
    return out


def _with_bigrams(words: list[str]) -> list[str]:
    out: list[str] = []
    done = 0  # words[:done] are in out
    # Only a bigram's first word can start one; compress() finds those positions in C.
    for index in compress(itertools.count(), map(_BIGRAM_FIRSTS.__contains__, words)):
        if merged := _bigram_at(words, index):
            out += words[done : index + 1]
            out.append(merged)
            done = index + 1
    out += words[done:]
    return out


def _bigram_at(words: list[str], index: int) -> str | None:
    """The merged token of the bigram ``words[index]`` starts, if it starts one."""
    word = words[index]
    following = words[index + 1] if index + 1 < len(words) else ""
    merged = BIGRAMS.get((word, following)) or BIGRAMS.get((word, ""))
    return merged if merged and merged != word else None


def words_of(text: str) -> list[str]:
    """Stemmed words before stopword removal and bigram merging (used for typo fixing)."""
    folded = _fold(text)
    if _may_glue(folded):
        return list(chain.from_iterable(map(_forms, _join_versions(TOKEN_RE.findall(folded)))))
    # No token holds whitespace, so the text's tokens are its chunks' tokens, in order; and
    # chunks repeat like words do, so their forms are cached whole (one lookup per chunk
    # instead of a regex match and a lookup per word).
    return list(chain.from_iterable(map(_CHUNK_FORMS.__getitem__, folded.split())))


def _may_glue(folded: str) -> bool:
    """False when `_join_versions` cannot change the words of ``folded``: no glued name is
    followed, past anything but letters and digits, by a digit."""
    # A match starts where a glued name does: try the pattern only there (a search would
    # try it at every position).
    for name in _GLUED_NAMES:
        at = folded.find(name)
        while at >= 0:
            if _GLUE_HINT.match(folded, at):
                return True
            at = folded.find(name, at + 1)
    return False


def _chunk_forms(chunk: str) -> tuple[str, ...]:
    """Forms of every token of a whitespace-free chunk of folded text."""
    return tuple(chain.from_iterable(map(_forms, TOKEN_RE.findall(chunk))))


_MAX_CHUNKS = WORD_CACHE
_CHUNK_FORMS: Memo[str, tuple[str, ...]] = Memo(_chunk_forms)


@functools.lru_cache(maxsize=WORD_CACHE)
def _forms(raw: str) -> tuple[str, ...]:
    # Cached: coverage repeats its vocabulary, and linking tokenises every relevant item.
    return tuple(_versions(_stem(raw)))


def claim_search_text(
    statement: str,
    speaker: str | None,
    keywords: Sequence[str] = (),
    themes: Sequence[str] = (),
    figures: Sequence[Figure] = (),
) -> str:
    """What the full-text index stores for a claim (its ``search_text``): the tokens of its
    words and figures, each once, in order."""
    tokens = tokenize(" ".join([statement, speaker or "", " ".join(keywords), " ".join(themes)]))
    for figure in figures:
        tokens.extend(figure_tokens(figure))
    return " ".join(dict.fromkeys(tokens))


def tokenize(text: str) -> list[str]:
    """Search tokens of a document or query text: stemmed, versioned, merged, no stopwords."""
    return finish_tokens(words_of(text))


def tokens_among(text: str, wanted: frozenset[str]) -> frozenset[str]:
    """``set(tokenize(text)) & wanted``, without building the full token list."""
    words = words_of(text)
    found = wanted.intersection(words)
    # Merged bigrams are the only tokens that are not words; look for them only if they can
    # be wanted and the text holds a bigram's first word.
    if not _MERGED.isdisjoint(wanted) and not _BIGRAM_FIRSTS.isdisjoint(words):
        found |= wanted.intersection(_merged_bigrams(words))
    return frozenset(filter(_is_term, found))


class TermFinder:
    """``tokens_among(text, wanted)`` for one `wanted` set, cheaper on text like text seen
    before: a text's whitespace chunks mostly repeat, and most give no wanted token.

    Chunks whose words hold neither a wanted token nor a word of a bigram are remembered
    as idle, and one set difference (in C) drops them from a text's distinct chunks; only
    the rest are looked at. Word order matters only to bigrams, whose words are then
    found in the chunk list.
    """

    def __init__(self, wanted: frozenset[str]) -> None:
        self.wanted = wanted
        merged_wanted = {pair: merged for pair, merged in BIGRAMS.items() if merged in wanted}
        self._pairs = [(*pair, merged) for pair, merged in merged_wanted.items() if pair[1]]
        self._singles = [(pair[0], merged) for pair, merged in merged_wanted.items() if not pair[1]]
        self._bigram_words = frozenset(word for pair in BIGRAMS for word in pair if word)
        self._idle: set[str] = set()

    def __call__(self, text: str) -> frozenset[str]:
        folded = _fold(text)
        if _may_glue(folded):
            return tokens_among(text, self.wanted)
        wanted, idle, bigram_words = self.wanted, self._idle, self._bigram_words
        chunks = folded.split()
        kept: list[str] = []  # the distinct chunks that are not idle
        words: set[str] = set()  # their words
        # Filtered before deduplicating: most chunks are idle, and a lookup costs less than
        # an insertion into a growing set.
        for chunk in set(filterfalse(idle.__contains__, chunks)):
            forms = _CHUNK_FORMS[chunk]
            if wanted.isdisjoint(forms) and bigram_words.isdisjoint(forms):
                if len(idle) >= _MAX_CHUNKS:
                    idle.clear()
                idle.add(chunk)
            else:
                kept.append(chunk)
                words.update(forms)
        found = words.intersection(wanted)
        if not bigram_words.isdisjoint(words):
            found.update(merged for word, merged in self._singles if word in words)
            for first, second, merged in self._pairs:
                if first in words and second in words and merged not in found:
                    holders = [chunk for chunk in kept if first in _CHUNK_FORMS[chunk]]
                    if _side_by_side(chunks, holders, first, second):
                        found.add(merged)
        return frozenset(filter(_is_term, found))


def _side_by_side(chunks: list[str], holders: list[str], first: str, second: str) -> bool:
    """Whether `second` directly follows `first` in the words of `chunks` (``words_of``'s
    list); `holders` are the chunks whose words include `first`."""
    for chunk in holders:
        forms = _CHUNK_FORMS[chunk]
        if any(a == first and b == second for a, b in itertools.pairwise(forms)):
            return True
        if forms[-1] != first:
            continue
        at = -1
        while (at := _index(chunks, chunk, at + 1)) >= 0:
            following = at + 1  # the next chunk with words (a chunk may have none: "—")
            while following < len(chunks) and not _CHUNK_FORMS[chunks[following]]:
                following += 1
            if following < len(chunks) and _CHUNK_FORMS[chunks[following]][0] == second:
                return True
    return False


def _index(items: list[str], item: str, start: int) -> int:
    try:
        return items.index(item, start)
    except ValueError:
        return -1


def _merged_bigrams(words: list[str]) -> set[str]:
    """The tokens ``_with_bigrams`` adds to ``words``."""
    starts = compress(itertools.count(), map(_BIGRAM_FIRSTS.__contains__, words))
    return {merged for index in starts if (merged := _bigram_at(words, index))}


def finish_tokens(words: list[str]) -> list[str]:
    return list(filter(_is_term, _with_bigrams(words)))


def _term(word: str) -> bool:
    return word not in STOPWORDS and not _is_bare_number(word)


# Whether a word is a search term, memoised: filter() looks a word seen before up in C,
# without building the argument tuple an lru_cache call would.
_IS_TERM: Memo[str, bool] = Memo(_term)
_is_term = _IS_TERM.__getitem__


def _is_bare_number(word: str) -> bool:
    return word.replace(".", "").isdigit()


def osa_distance(a: str, b: str, limit: int = 3) -> int:
    """Optimal string alignment distance (edits plus adjacent swaps), capped at ``limit``."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) >= limit:
            return limit
        prev2, prev = prev, cur
    return min(prev[-1], limit)


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@dataclass
class Vocabulary:
    """Document frequencies of search tokens, for idf weights and typo correction."""

    df: Counter[str] = field(default_factory=Counter)
    n_docs: int = 0
    _index: dict[str, set[str]] | None = field(default=None, repr=False)

    def add_document(self, tokens: Iterable[str]) -> None:
        self.df.update(set(tokens))
        self.n_docs += 1
        self._index = None

    def add_counts(self, counts: Iterable[tuple[str, int]], n_docs: int) -> None:
        for term, count in counts:
            self.df[term] = max(self.df[term], count)
        self.n_docs = max(self.n_docs, n_docs)
        self._index = None

    def idf(self, term: str) -> float:
        df = self.df.get(term, 0)
        n = max(self.n_docs, 1)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def __contains__(self, term: object) -> bool:
        return term in self.df

    def correct(self, word: str) -> str | None:
        """The likeliest intended vocabulary word for a misspelt ``word``, or None."""
        if word in self.df or len(word) < 4 or not word.isalpha():
            return None
        allowed = 1 if len(word) < 7 else 2
        index = self._delete_index()
        candidates: set[str] = set(index.get(word, ()))
        for variant in _deletes(word):
            candidates |= index.get(variant, set())
            if variant in self.df:
                candidates.add(variant)
        scored = [
            (osa_distance(word, cand), len(cand) != len(word), -self.df[cand], cand)
            for cand in candidates
            if cand.isalpha() and len(cand) >= 3
        ]
        best = min((s for s in scored if s[0] <= allowed), default=None)
        return best[3] if best else None

    def _delete_index(self) -> dict[str, set[str]]:
        if self._index is None:
            index: dict[str, set[str]] = {}
            for term in self.df:
                if term.isalpha() and len(term) >= 3:
                    for variant in _deletes(term):
                        index.setdefault(variant, set()).add(term)
            self._index = index
        return self._index


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    raw: str
    groups: tuple[tuple[str, ...], ...]
    figures: tuple[Figure, ...] = ()
    corrections: tuple[tuple[str, str], ...] = ()
    problem: str | None = None

    @property
    def terms(self) -> list[str]:
        """Every term a search index should look for (alternatives included)."""
        return [term for group in self.groups for term in group]


def _clean(raw: str) -> str:
    text = raw[:MAX_QUERY_CHARS]
    return "".join(ch if unicodedata.category(ch)[0] not in "CS" else " " for ch in text)


def _strip_figures(text: str) -> tuple[str, list[Figure]]:
    hits = find_figures(text)
    for hit in reversed(hits):
        # Only the number goes; the unit words ("H100s", "parameters") still count as terms.
        number_end = hit.start + len(hit.figure.text)
        text = text[: hit.start] + " " + text[number_end:]
    return text, [hit.figure for hit in hits]


def _correct(
    words: Sequence[str], vocabulary: Vocabulary
) -> tuple[list[str], list[tuple[str, str]]]:
    fixed: list[str] = []
    corrections: list[tuple[str, str]] = []
    for word in words:
        better = None if word in STOPWORDS else vocabulary.correct(word)
        if better:
            corrections.append((word, better))
        fixed.append(better or word)
    return fixed, corrections


def _groups(tokens: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    groups: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for token in tokens:
        if token in seen:
            continue
        seen.add(token)
        groups.append((token, *ALTERNATIVES.get(token, ())))
    return tuple(_drop_parts(groups)[:MAX_GROUPS])


def _drop_parts(groups: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """When 'opensource' is a term, 'open' and 'source' alone add nothing but noise."""
    merged = {g[0] for g in groups}
    parts = {part for pair, name in BIGRAMS.items() if name in merged for part in pair}
    versioned = {m.group(1) for g in groups if (m := VERSIONED.match(g[0])) and m.group(2)}
    return [g for g in groups if g[0] not in parts and g[0] not in versioned]


def parse_query(raw: str, vocabulary: Vocabulary) -> ParsedQuery:
    """Split a lookup into term groups and figures; never raises on any input."""
    text = _clean(raw)
    if not text.strip():
        return ParsedQuery(raw=raw, groups=(), problem=USAGE)
    rest, figures = _strip_figures(text)
    words, corrections = _correct(words_of(rest), vocabulary)
    groups = _groups(finish_tokens(words))
    if not groups and not figures:
        return ParsedQuery(raw=raw, groups=(), problem=USAGE)
    return ParsedQuery(raw, groups, tuple(figures), tuple(corrections))

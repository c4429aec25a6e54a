"""Theme tagger and relevance gate, driven only by topic-pack data.

One pass turns the headline and text into normalised tokens; a second pass matches every
pack phrase at once (longest match first) against a lexicon keyed by first token. Each
matched phrase carries features: theme weights and relevance signals. Themes are scored
from the weights of the phrases that matched (the evidence); relevance is a small logistic
model over where the subject is named, how it is named and what vocabulary surrounds it.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate, chain, compress, count
from operator import itemgetter
from typing import NamedTuple

from bot.caches import Memo
from bot.casing import lower
from bot.pack import Pack, TaggingConfig

# Kinds of feature a lexicon phrase can carry.
THEME, ENTITY, PRODUCT, TOPIC, PEER, OTHER_SENSE, OFF_CONTEXT, CUE = range(8)

_PUNCT = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
    }
)
# A word (with decimals such as "3.1"), a possessive as a token of its own (so "Acme's cloud"
# is not "Acme Cloud"), or sentence punctuation. ASCII text takes the faster pattern.
_SCAN_ASCII = re.compile(r"([a-z0-9]+(?:\.[0-9]+)*|'s(?![a-z0-9])|[.!?\n])")
_SCAN_UNICODE = re.compile(r"([^\W_]+(?:\.[0-9]+)*|'s(?![^\W_])|[.!?\n])")
_SENTENCE_END = frozenset(".!?\n")
_SUBJECT_SLOTS = 3  # a mention in the first tokens of a sentence is its grammatical subject
_CUE_WINDOW = 5  # a yardstick cue must come this close before the mention
_MAX_EVIDENCE = 5
_MAX_REPEATS = 4  # repeats of a term beyond this add nothing
_LIST_WORDS = frozenset({"and", "or", "as", "well", "plus", "&"})


@dataclass(frozen=True)
class ThemeScore:
    id: str
    score: float
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class TagResult:
    """relevant/relevance: is the subject's work in the pack's topic the main story
    (score in [0, 1]).

    themes: the themes that apply, best first; empty when the item is not relevant.
    candidates: the themes that clear the threshold regardless of relevance (for storage).
    reasons: plain-language explanation of the relevance score.
    """

    relevant: bool
    relevance: float
    themes: tuple[ThemeScore, ...]
    reasons: tuple[str, ...] = ()
    candidates: tuple[ThemeScore, ...] = field(default=(), repr=False)


def stem(token: str) -> str:
    """Fold plural forms so 'H100s', 'GPUs' and 'data centres' meet their singulars.

    Text and pack phrases are folded alike, so a word wrongly cut ("campus") still matches.
    """
    if len(token) <= 3 or token[-1] != "s" or token.endswith(("ss", "is")):
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "xes", "ches", "shes")):
        return token[:-2]
    return token[:-1]


# word -> stem; looked up with map(), which stays in C for every word already seen.
_STEMS: Memo[str, str] = Memo(stem)


def _scan(piece: str) -> list[str]:
    """A run of text between two spaces as gap, token, gap, ..., token, gap."""
    # No token holds a space, and the look-ahead after "'s" sees a space as it sees the
    # end of a piece, so scanning the pieces apart finds exactly the tokens of the whole.
    # On ASCII text the Unicode pattern matches what the ASCII one does.
    return (_SCAN_ASCII if piece.isascii() else _SCAN_UNICODE).split(piece)


def _tokens_of(piece: str) -> tuple[str, ...]:
    return tuple(map(_STEMS.__getitem__, _scan(piece)[1::2]))


def _bounds_of(piece: str) -> tuple[int, ...]:
    return tuple(accumulate(map(len, _scan(piece)[:-1])))


# piece -> its tokens. Scanning text is the tagger's main cost, and the same pieces ("the",
# "model.") recur in every item, so each distinct piece is scanned once.
_TOKENS: Memo[str, tuple[str, ...]] = Memo(_tokens_of)
# piece -> start of token 0, end of token 0, start of token 1, ...; filled only for the
# opening pieces of texts, as far as evidence and reasons quote them.
_BOUNDS: Memo[str, tuple[int, ...]] = Memo(_bounds_of)


# How a token's code reads when it is not a lexicon word: sentence ends become whitespace,
# so that str.split() cuts the codes of a document into runs of lexicon words there.
_FILLER = " "
_SENTENCE_CODES = {".": "\t", "!": "\t", "?": "\t", "\n": "\n"}
_SENTENCE_END_CODES = frozenset(_SENTENCE_CODES.values())


def _code_chars() -> Iterator[str]:
    """The characters that code lexicon words: every non-space one from U+0100 on.

    A generator function, not a generator expression: compiled, an expression handed to
    zip() may be evaluated whole first.
    """
    for c in count(0x100):
        if not chr(c).isspace():
            yield chr(c)


class _Coder(Memo[str, str]):
    """piece -> one character per token: the token's own code for a word of the lexicon (or
    a list word), a whitespace character for sentence punctuation, else a space.

    A document is then one short string, and everything the tagger asks of its tokens
    (where lexicon words sit, where sentences end, how many tokens) is a string operation.
    """

    def __init__(self, words: Iterable[str]) -> None:
        super().__init__(self._code_piece)
        words = sorted({*words, *_LIST_WORDS} - _SENTENCE_END)
        self.code = dict(zip(words, _code_chars(), strict=False))  # chars never run out
        self.word = {code: word for word, code in self.code.items()}
        self.list_codes = frozenset(self.code[w] for w in _LIST_WORDS)
        self.code.update(_SENTENCE_CODES)

    def _code_piece(self, piece: str) -> str:
        code = self.code.get
        return "".join([code(t, _FILLER) for t in _TOKENS[piece]])


_PLAIN = _Coder(())  # codes of a document read without a lexicon


def _codes_of(coder: _Coder, chunks: list[str]) -> tuple[str, ...]:
    """coder[chunk] for each chunk. itemgetter() looks them all up in one C call, which
    costs less per chunk than map() calling the bound __getitem__."""
    if len(chunks) < 2:  # one key: itemgetter returns the value alone
        return tuple(map(coder.__getitem__, chunks))
    found: tuple[str, ...] = itemgetter(*chunks)(coder)
    return found


class _Doc:
    """Tokens of one document, kept as codes (see _Coder). Sentence punctuation stays as
    boundary tokens, so no phrase can match across sentences; the tokens themselves and
    where they sit in the text are worked out only when asked for."""

    def __init__(self, text: str, title: str = "", coder: _Coder = _PLAIN) -> None:
        """With a title, `text` is the title, a blank line, then the body."""
        # Every character _PUNCT replaces is outside ASCII (isascii() is a flag check).
        norm = text.lower() if text.isascii() else lower(text.translate(_PUNCT))
        # Evidence comes from the original text unless lowercasing changed its length.
        self.text = text if len(norm) == len(text) else norm
        self._chunks = norm.split(" ")
        self._coder = coder
        self._chunk_codes = _codes_of(coder, self._chunks)
        self.codes = "".join(self._chunk_codes)  # one character per token
        self.title_len = _title_len(self, title) if title else 0
        # Filled block by block as far as evidence needs (mostly the first few dozen tokens):
        self._firsts = [0]  # [i]: index of the first token of chunk i
        self._starts = [0]  # [i]: where chunk i starts, not counting the spaces before it
        self._surfaces: dict[tuple[int, int], str] = {}  # reasons and evidence share hits

    @cached_property
    def tokens(self) -> list[str]:
        return list(chain.from_iterable(map(_TOKENS.__getitem__, self._chunks)))

    def codes_for(self, coder: _Coder) -> str:
        """The codes of this document's tokens under another lexicon's coder."""
        if coder is self._coder:
            return self.codes
        return "".join(map(coder.__getitem__, self._chunks))

    def is_list_word(self, index: int) -> bool:
        return self.codes[index] in self._coder.list_codes

    def surface(self, start: int, end: int) -> str:
        """The text of tokens start..end-1 as written."""
        key = start, end
        found = self._surfaces.get(key)
        if found is None:
            if not 0 <= start < end <= len(self.codes):
                raise IndexError(key)
            firsts, starts = self._firsts, self._starts
            while firsts[-1] < end:
                self._count_on()
            # The chunks holding the first and the last token; chunk i has i spaces before it.
            i = bisect_right(firsts, start) - 1
            j = bisect_right(firsts, end - 1, i) - 1
            left = i + starts[i] + _BOUNDS[self._chunks[i]][2 * (start - firsts[i])]
            right = j + starts[j] + _BOUNDS[self._chunks[j]][2 * (end - 1 - firsts[j]) + 1]
            found = self._surfaces[key] = self.text[left:right]
        return found

    def _count_on(self) -> None:
        """Extend the running counts over the next block of chunks (blocks double)."""
        done = len(self._firsts) - 1
        stop = max(16, 2 * done)
        # Each list's last entry is the first of its continuation.
        firsts, starts = self._firsts, self._starts
        firsts += accumulate(map(len, self._chunk_codes[done:stop]), initial=firsts.pop())
        starts += accumulate(map(len, self._chunks[done:stop]), initial=starts.pop())

    def sentence_pos(self, index: int) -> int:
        """How many tokens precede `index` in its sentence (counting stops at the cap)."""
        pos = 0
        while pos < _SUBJECT_SLOTS and index - pos > 0:
            if self.codes[index - pos - 1] in _SENTENCE_END_CODES:
                break
            pos += 1
        return pos


def _title_len(doc: _Doc, title: str) -> int:
    """How many tokens the headline, which opens the document, contributes."""
    if "\n" in title:
        return len(_Doc(title, coder=doc._coder).codes)
    # The headline is followed by a blank line, and a line break is a token of its own.
    return doc.codes.index("\n")


def tokenize(text: str) -> list[str]:
    """Normalised tokens of a phrase or text (the form lexicon keys take)."""
    return [t for t in _Doc(text).tokens if t not in _SENTENCE_END]


Feature = tuple[int, str, float]


class _Signals(NamedTuple):
    """What a phrase tells the relevance gate, folded from all its features."""

    name: float  # weight as a name of the subject (entity or product)
    entity: bool  # holds a name of the subject itself, not just a product name
    product: bool
    topical: float  # weight as topic vocabulary
    peer: bool
    cue: bool
    other_sense: float
    off_topic: float


class _Entry(NamedTuple):
    phrase: tuple[str, ...]
    themes: tuple[tuple[str, float], ...]  # theme id, term weight
    signals: _Signals | None  # None when the phrase says nothing about relevance


class _Hit(NamedTuple):
    start: int  # token positions
    end: int
    entry: _Entry

    @property
    def phrase(self) -> tuple[str, ...]:
        return self.entry.phrase


def _signals(hit: _Hit) -> _Signals:
    return hit.entry.signals or _NO_SIGNALS


_NO_SIGNALS = _Signals(0.0, False, False, 0.0, False, False, 0.0, 0.0)


class _Node(NamedTuple):
    """A phrase prefix in the lexicon trie: the phrase it completes, if any, and the
    prefixes one token longer, by that token."""

    entry: _Entry | None
    longer: dict[str, _Node]


class _Lexicon:
    """All pack phrases, as a trie keyed by token."""

    def __init__(self) -> None:
        self._features: dict[tuple[str, ...], list[Feature]] = {}

    def add(self, phrases: Iterable[str] | Mapping[str, float], kind: int, key: str = "") -> None:
        weights = phrases if isinstance(phrases, Mapping) else dict.fromkeys(phrases, 1.0)
        for phrase, weight in weights.items():
            toks = tuple(tokenize(phrase))
            if toks:
                self._features.setdefault(toks, []).append((kind, key or phrase, weight))

    def words(self) -> set[str]:
        return {token for toks in self._features for token in toks}

    def _inherited(self, toks: tuple[str, ...]) -> list[Feature]:
        """Relevance features of the shorter phrases inside `toks`.

        The longest match wins, so a versioned product name ("Widget 3.1") must still count as
        a product mention. A phrase marking another sense inherits nothing: that is how a
        foundation named after a founder hides the founder's name inside it.
        """
        own = self._features[toks]  # its own weights override the inner phrases' ones
        if any(kind == OTHER_SENSE for kind, _, _ in own):
            return []
        extra: list[Feature] = []
        for size in range(len(toks) - 1, 0, -1):
            for i in range(len(toks) - size + 1):
                for feat in self._features.get(toks[i : i + size], ()):
                    have = {(k, key) for k, key, _ in own + extra}
                    if feat[0] not in (THEME, OTHER_SENSE) and (feat[0], feat[1]) not in have:
                        extra.append(feat)
        return extra

    def compile(self, theme_topic: Mapping[str, float]) -> dict[str, _Node]:
        """The trie's first level. theme_topic: how much each theme's terms count as topic
        vocabulary."""
        entries: dict[tuple[str, ...], _Entry] = {}
        for toks, own in self._features.items():
            feats = own + self._inherited(toks)
            themes = tuple((key, weight) for kind, key, weight in feats if kind == THEME)
            entries[toks] = _Entry(toks, themes, _fold(feats, themes, theme_topic))
        root: dict[str, _Node] = {}
        # Shorter phrases first: a phrase's node exists before any longer phrase passes it.
        for toks in sorted(entries, key=len):
            level = root
            for token in toks[:-1]:
                node = level.get(token)
                if node is None:
                    node = level[token] = _Node(None, {})
                level = node.longer
            level[toks[-1]] = _Node(entries[toks], {})
        return root


def _fold(
    feats: list[Feature], themes: tuple[tuple[str, float], ...], theme_topic: Mapping[str, float]
) -> _Signals | None:
    def best(*kinds: int) -> float:
        return max((w for k, _, w in feats if k in kinds), default=0.0)

    kinds = {k for k, _, _ in feats}
    topical = max(best(PRODUCT, TOPIC), max((w * theme_topic[t] for t, w in themes), default=0.0))
    signals = _Signals(
        name=best(ENTITY, PRODUCT),
        entity=ENTITY in kinds,
        product=PRODUCT in kinds,
        topical=topical,
        peer=PEER in kinds,
        cue=CUE in kinds,
        other_sense=best(OTHER_SENSE),
        off_topic=best(OFF_CONTEXT),
    )
    return None if signals == _NO_SIGNALS else signals


def _longest_first(tokens: list[str], index: dict[str, _Node]) -> list[tuple[int, int, _Entry]]:
    """Phrases in `tokens`: at each position the longest, and matched tokens are used up."""
    found: list[tuple[int, int, _Entry]] = []
    length, skip = len(tokens), 0
    # compress() yields, in C, only the positions where some phrase starts.
    for i in compress(count(), map(index.__contains__, tokens)):
        if i < skip:
            continue
        node = index[tokens[i]]
        entry, end = node.entry, i + 1
        # Down the trie as far as the text follows it; the deepest phrase wins.
        below, j = node.longer, i + 1
        while below and j < length:
            deeper = below.get(tokens[j])
            if deeper is None:
                break
            j += 1
            if deeper.entry is not None:
                entry, end = deeper.entry, j
            below = deeper.longer
        if entry is None:
            continue
        found.append((i, end, entry))
        skip = end
    return found


class _Runs(Memo[str, tuple[tuple[int, int, _Entry], ...]]):
    """run of lexicon word codes -> the phrases in it, by token positions in the run."""

    def __init__(self, index: dict[str, _Node], words: Mapping[str, str]) -> None:
        super().__init__(self._phrases)
        self.index = index
        self.words = words

    def _phrases(self, run: str) -> tuple[tuple[int, int, _Entry], ...]:
        return tuple(_longest_first([self.words[c] for c in run], self.index))


def _watch(index: dict[str, _Node], coder: _Coder) -> re.Pattern[str]:
    """A search for the codes of words without which no phrase can be a mention of the
    subject, another sense of its names or off-topic context.

    One word of each such phrase will do; a long word found in few phrases ("studio"
    rather than "ai") is likelier to be rare in text too.
    """
    entries = [e for e in _entries(index) if e.signals is not None]
    uses = Counter(token for entry in entries for token in set(entry.phrase))
    watched: set[str] = set()
    for entry in sorted(entries, key=lambda e: len(e.phrase)):
        s = entry.signals or _NO_SIGNALS
        if (s.name or s.other_sense or s.off_topic) and watched.isdisjoint(entry.phrase):
            watched.add(min(entry.phrase, key=lambda t: (-len(t), uses[t], t)))
    return re.compile(f"[{re.escape(''.join(sorted(coder.code[t] for t in watched)))}]")


def _entries(level: dict[str, _Node]) -> Iterable[_Entry]:
    """Every phrase entry in the trie below `level`."""
    for node in level.values():
        if node.entry is not None:
            yield node.entry
        yield from _entries(node.longer)


# Builds a _Hit in C: a NamedTuple's own constructor is a Python function.
_new_hit = tuple.__new__


class Tagger:
    def __init__(self, pack: Pack) -> None:
        self.pack = pack
        rel = pack.relevance
        lex = _Lexicon()
        for theme in pack.themes:
            lex.add(theme.terms, THEME, theme.id)
        lex.add(rel.entities, ENTITY)
        lex.add(rel.products, PRODUCT)
        lex.add(rel.topic_terms, TOPIC)
        lex.add(rel.peers, PEER)
        lex.add(rel.other_senses, OTHER_SENSE)
        lex.add(rel.off_topic_context, OFF_CONTEXT)
        lex.add(rel.yardstick_cues, CUE)
        self._index = lex.compile({t.id: t.topic_weight for t in pack.themes})
        self._coder = _Coder(lex.words())
        self._runs = _Runs(self._index, self._coder.word)
        self._order = {t.id: i for i, t in enumerate(pack.themes)}
        self._watched = _watch(self._index, self._coder)
        self._peer_led = Memo(self._has_peer)  # codes of a headline -> names another company
        self._unnamed: dict[bool, TagResult | None] = {}  # see _unnamed_result

    def tag(self, title: str, text: str, *, candidates_if_irrelevant: bool = True) -> TagResult:
        """Tag one item. Without `candidates_if_irrelevant`, an irrelevant item's candidates
        are left empty (working them out is a third of the cost)."""
        title = title or ""
        doc = _Doc(f"{title}\n\n{text or ''}", title, self._coder)
        if not candidates_if_irrelevant and self._watched.search(doc.codes) is None:
            found = self._unnamed_result(doc)
            if found is not None:
                return found
        return self._tag(doc, candidates_if_irrelevant)

    def _unnamed_result(self, doc: _Doc) -> TagResult | None:
        """The result for a document without a name of the subject, another sense of its
        names or off-topic context; None if that is relevant.

        Of all its phrases only the peers in the headline can then move the score (see
        _Relevance.score), so documents alike in that have the same result.
        """
        peer_led = self._peer_led[doc.codes[: doc.title_len]]
        if peer_led not in self._unnamed:
            result = self._tag(doc, candidates_if_irrelevant=False)
            self._unnamed[peer_led] = None if result.relevant else result
        return self._unnamed[peer_led]

    def _has_peer(self, codes: str) -> bool:
        """Is another company among the phrases in these codes?"""
        found = (entry.signals for run in codes.split() for _, _, entry in self._runs[run])
        return any(signals is not None and signals.peer for signals in found)

    def _tag(self, doc: _Doc, candidates_if_irrelevant: bool) -> TagResult:
        hits = self._match(doc)
        relevance, reasons = _Relevance(self.pack, doc, hits).score()
        relevant = relevance >= self.pack.relevance.threshold
        candidates = self._themes(doc, hits) if relevant or candidates_if_irrelevant else ()
        return TagResult(
            relevant=relevant,
            relevance=round(relevance, 4),
            themes=candidates if relevant else (),
            reasons=reasons,
            candidates=candidates,
        )

    def _match(self, doc: _Doc) -> list[_Hit]:
        """Longest phrase first at each position; matched tokens are not matched again."""
        # A phrase is made of lexicon words only, so it lies within one run of them; runs
        # recur ("of the", "chief executive"), and each distinct run is matched once.
        codes = doc.codes_for(self._coder)
        runs, hits, at = self._runs, [], 0
        for run in codes.split():
            at = codes.find(run, at)
            for start, end, entry in runs[run]:
                hits.append(_new_hit(_Hit, (at + start, at + end, entry)))
            at += len(run)
        return hits

    def _themes(self, doc: _Doc, hits: list[_Hit]) -> tuple[ThemeScore, ...]:
        cfg = self.pack.tagging
        totals: dict[str, float] = {}
        terms: dict[str, dict[tuple[str, ...], _TermHits]] = {}  # theme -> phrase -> hits
        title_len, title_weight, bonus = doc.title_len, cfg.title_weight, cfg.repeat_bonus
        for hit in hits:
            entry = hit.entry
            for theme_id, weight in entry.themes:
                found = terms.get(theme_id)
                if found is None:
                    found = terms[theme_id] = {}
                slot = found.get(entry.phrase)
                if slot is None:
                    # The headline comes first, so a term's first hit says if it is in it.
                    scale = title_weight if hit.start < title_len else 1.0
                    found[entry.phrase] = _TermHits(hit, weight * scale)
                    totals[theme_id] = totals.get(theme_id, 0.0) + weight * scale
                elif slot.count < _MAX_REPEATS:
                    slot.count += 1
                    totals[theme_id] += slot.weight * bonus
        ranked = sorted(totals.items(), key=lambda r: (-r[1], self._order[r[0]]))
        best = ranked[0][1] if ranked else 0.0
        # Long articles brush past many themes; a theme must weigh more in them to apply.
        length_factor = max(1.0, math.sqrt(len(doc.codes) / cfg.length_norm))
        floor = max(cfg.theme_threshold * length_factor, cfg.relative_floor * best)
        return tuple(
            ThemeScore(
                theme_id,
                round(1 - math.exp(-total / cfg.score_scale), 4),
                _evidence(doc, terms[theme_id].values(), cfg),
            )
            for theme_id, total in ranked[: cfg.max_themes]
            if total >= floor
        )


@dataclass(slots=True)
class _TermHits:
    first: _Hit  # evidence is the phrase as first written in the text
    weight: float  # term weight, times the headline weight when in the headline
    count: int = 1

    def value(self, cfg: TaggingConfig) -> float:
        return self.weight * (1 + cfg.repeat_bonus * (self.count - 1))


def _evidence(doc: _Doc, terms: Iterable[_TermHits], cfg: TaggingConfig) -> tuple[str, ...]:
    """The phrases that contributed most, strongest first, as written in the text."""
    ranked = sorted((t for t in terms if t.weight > 0), key=lambda t: (-t.value(cfg), t.first))
    return tuple(_surface(doc, t.first) for t in ranked[:_MAX_EVIDENCE])


def _surface(doc: _Doc, hit: _Hit) -> str:
    return doc.surface(hit.start, hit.end)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


class _Relevance:
    """Relevance features of one document; see RelevanceWeights for the model."""

    def __init__(self, pack: Pack, doc: _Doc, hits: list[_Hit]) -> None:
        self.cfg = pack.relevance
        self.doc = doc
        self.mentions: list[_Hit] = []
        self.topical: list[tuple[_Hit, float, bool]] = []  # hit, weight, names a product
        self.peers: list[int] = []
        self.peer_at: dict[int, _Hit] = {}  # peer hits by first and last token
        self.cues: set[int] = set()
        self.other: list[tuple[_Hit, float]] = []
        self.off: list[tuple[_Hit, float]] = []
        for hit in hits:
            s = hit.entry.signals
            if s is None:
                continue
            name, _, product, topical, peer, cue, other_sense, off_topic = s
            if name:
                self.mentions.append(hit)
            if topical:
                self.topical.append((hit, topical, product))
            if peer:
                self.peers.append(hit.start)
                self.peer_at[hit.start] = self.peer_at[hit.end - 1] = hit
            if cue:
                self.cues.add(hit.start)
            if other_sense:
                self.other.append((hit, other_sense))
            if off_topic:
                self.off.append((hit, off_topic))

    def _in_list(self, hit: _Hit) -> bool:
        """Is the mention one name in a run like "Rival A, Rival B, Subject and Rival C"?

        Walks outwards over peer names separated only by punctuation or list words.
        """
        linked = 0
        for step in (-1, 1):
            pos = hit.start - 1 if step < 0 else hit.end
            skipped = 0
            while 0 <= pos < len(self.doc.codes) and skipped <= self.cfg.list_window:
                peer = self.peer_at.get(pos)
                if peer is not None:
                    linked += 1
                    pos = peer.start - 1 if step < 0 else peer.end
                    skipped = 0
                elif self.doc.is_list_word(pos):
                    pos += step
                    skipped += 1
                else:
                    break
        return linked >= 2

    def _peer_leads(self) -> bool:
        """Is another company the first name in the headline?"""
        return bool(self.peers) and self.peers[0] < _SUBJECT_SLOTS

    def _yardstick(self, hit: _Hit) -> bool:
        return any(p in self.cues for p in range(hit.start - _CUE_WINDOW, hit.start))

    def score(self) -> tuple[float, tuple[str, ...]]:
        cfg, w, doc = self.cfg, self.cfg.weights, self.doc
        subject, topic = cfg.subject, cfg.topic
        reasons: list[str] = []
        mentions = self.mentions
        # Only a mention next to a peer can be in a list, only one after a cue a yardstick.
        listed = [h for h in mentions if self._in_list(h)] if self.peers else []
        yard = [h for h in mentions if h not in listed and self._yardstick(h)] if self.cues else []
        focus = (
            [h for h in mentions if h not in listed and h not in yard]
            if listed or yard
            else mentions
        )
        in_title: list[_Hit] = []
        in_body: list[_Hit] = []
        product = named = False
        for h in focus:
            (in_title if h.start < doc.title_len else in_body).append(h)
            signals = _signals(h)
            product = product or signals.product
            named = named or signals.entity

        z = w.bias
        if in_title:
            z += w.title_entity * min(sum(_signals(h).name for h in in_title), 2.0)
            reasons.append(f"{subject} named in the headline ({_surface(doc, in_title[0])!r})")
            if in_title[0].start < _SUBJECT_SLOTS:
                z += w.title_subject
                reasons.append(f"{subject} is the subject of the headline")
        if in_body:
            z += w.body_entity * math.log1p(sum(_signals(h).name for h in in_body))
            subj = sum(1 for h in in_body if doc.sentence_pos(h.start) < _SUBJECT_SLOTS)
            z += w.sentence_subject * min(subj, 2)
            reasons.append(f"{len(in_body)} mention(s) of {subject} in the text")
        if product:
            z += w.product
            reasons.append(f"names a {subject} {topic} product")
        # A product name alone may be a common word (an animal, say): then other product
        # mentions are no proof of the topic, only the surrounding vocabulary is.
        near, near_terms = self._topic_near(focus, count_products=named)
        if near > 0:
            z += w.topic_near * math.log1p(near)
            reasons.append(f"{topic} vocabulary near {subject} mentions ({', '.join(near_terms)})")
        if near < cfg.min_topic:
            # Graded: one ambiguous word ("model") near the name is weak evidence.
            z -= w.no_topic * (1 - near / cfg.min_topic)
            if not self.mentions:
                reasons.append(f"{subject} is not mentioned")
            elif near == 0:
                reasons.append(f"no {topic} vocabulary near {subject} mentions")
            else:
                reasons.append(f"little {topic} vocabulary near {subject} mentions")
        if self.peers and not in_title and any(p < doc.title_len for p in self.peers):
            z -= w.peer_headline
            reasons.append(f"the headline is about another company, not {subject}")
        elif in_title and in_title[0].start >= _SUBJECT_SLOTS and self._peer_leads():
            z -= w.peer_headline / 2
            reasons.append(f"the headline leads with another company, not {subject}")
        if (listed or yard) and not focus:
            z -= w.list_only
            reasons.append(f"{subject} appears only in a list or as a comparison")
        if yard and not in_title:
            z -= w.yardstick
            reasons.append(
                f"{subject} named only as a yardstick or past affiliation"
                f" ({_surface(doc, yard[0])!r})"
            )
        if self.other:
            z -= w.other_sense * min(sum(wt for _, wt in self.other), 2.0)
            reasons.append(f"other sense of the name ({_surface(doc, self.other[0][0])!r})")
        if self.off:
            z -= w.off_topic_context * min(sum(wt for _, wt in self.off), 2.0)
            reasons.append(
                f"off-topic context ({', '.join(sorted({_surface(doc, h) for h, _ in self.off}))})"
            )
        return _sigmoid(z), tuple(reasons)

    def _topic_near(self, focus: list[_Hit], count_products: bool) -> tuple[float, list[str]]:
        """Weight of topic vocabulary within `window` tokens of another subject mention."""
        if not focus:
            return 0.0, []
        positions = sorted(h.start for h in focus)
        window, count = self.cfg.window, len(positions)
        total = 0.0
        terms: list[str] = []
        seen: set[tuple[str, ...]] = set()
        j = 0
        for hit, weight, product in self.topical:  # in text order, so j only moves forward
            if product and not count_products:
                continue
            p = hit.start
            while j < count and positions[j] < p:
                j += 1
            after = j + 1 if j < count and positions[j] == p else j  # skip the hit itself
            if (j > 0 and p - positions[j - 1] <= window) or (
                after < count and positions[after] - p <= window
            ):
                total += weight
                if len(terms) < 3 and hit.entry.phrase not in seen:
                    seen.add(hit.entry.phrase)
                    terms.append(_surface(self.doc, hit))
        return total, terms

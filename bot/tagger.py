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
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.pack import Pack, TaggingConfig

# Kinds of feature a lexicon phrase can carry.
THEME, ENTITY, PRODUCT, AI, PEER, OTHER_SENSE, OFF_CONTEXT, CUE = range(8)

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
_TOKEN = re.compile(r"[^\W_]+(?:\.\d+)*(?:'s)?")
_SENTENCE_END = frozenset(".!?\n")
_SUBJECT_SLOTS = 3  # a mention in the first tokens of a sentence is its grammatical subject
_CUE_WINDOW = 5  # a yardstick cue must come this close before the mention
_MAX_EVIDENCE = 5
_LIST_WORDS = frozenset({"and", "or", "as", "well", "plus", "&"})


@dataclass(frozen=True)
class ThemeScore:
    id: str
    score: float
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class TagResult:
    """relevant/relevance: is the subject's AI work the main topic (score in [0, 1]).

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
    """Fold plural forms so 'H100s', 'GPUs' and 'data centres' meet their singulars."""
    if len(token) <= 3 or token[-1] != "s" or token.endswith(("ss", "us", "is")):
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "xes", "ches", "shes")):
        return token[:-2]
    return token[:-1]


@dataclass
class _Doc:
    text: str  # what evidence is cut from
    tokens: list[str]
    spans: list[tuple[int, int]]
    sentence_start: list[bool]
    title_len: int


def tokenize(text: str) -> list[str]:
    """Normalised tokens of a phrase or text (the form lexicon keys take)."""
    return _tokenize(text).tokens


def _tokenize(text: str, title_len_chars: int = 0) -> _Doc:
    norm = text.translate(_PUNCT).lower()
    tokens: list[str] = []
    spans: list[tuple[int, int]] = []
    starts: list[bool] = []
    prev_end = 0
    for m in _TOKEN.finditer(norm):
        tok, start, end = m.group(), m.start(), m.end()
        starts.append(not tokens or any(c in _SENTENCE_END for c in norm[prev_end:start]))
        prev_end = end
        if tok.endswith("'s"):
            # The possessive stays a token of its own: "Meta's AI" is not the product "Meta AI".
            tokens.append(stem(tok[:-2]))
            spans.append((start, end - 2))
            tok, start = "'s", end - 2
            starts.append(False)
        tokens.append(stem(tok))
        spans.append((start, end))
    title_len = sum(1 for start, _ in spans if start < title_len_chars)
    # Evidence comes from the original text unless lowercasing changed its length.
    source = text if len(norm) == len(text) else norm
    return _Doc(source, tokens, spans, starts, title_len)


Feature = tuple[int, str, float]


class _Lexicon:
    """All pack phrases, keyed by first token, longest phrase first."""

    def __init__(self) -> None:
        self._features: dict[tuple[str, ...], list[Feature]] = {}

    def add(self, phrases: Iterable[str] | Mapping[str, float], kind: int, key: str = "") -> None:
        weights = phrases if isinstance(phrases, Mapping) else dict.fromkeys(phrases, 1.0)
        for phrase, weight in weights.items():
            toks = tuple(tokenize(phrase))
            if toks:
                self._features.setdefault(toks, []).append((kind, key or phrase, weight))

    def _inherited(self, toks: tuple[str, ...]) -> list[Feature]:
        """Relevance features of the shorter phrases inside `toks`.

        The longest match wins, so "Llama 3.1" must still count as a product mention and
        "Meta AI" as a name of the subject. A phrase marking another sense inherits nothing:
        that is how "Chan Zuckerberg" hides the "Zuckerberg" inside it.
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

    def compile(self) -> dict[str, list[tuple[tuple[str, ...], tuple[Feature, ...]]]]:
        index: dict[str, list[tuple[tuple[str, ...], tuple[Feature, ...]]]] = {}
        for toks, feats in self._features.items():
            merged = tuple(feats + self._inherited(toks))
            index.setdefault(toks[0], []).append((toks, merged))
        for entries in index.values():
            entries.sort(key=lambda e: -len(e[0]))
        return index


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    features: tuple[Feature, ...]


class Tagger:
    def __init__(self, pack: Pack) -> None:
        self.pack = pack
        rel = pack.relevance
        lex = _Lexicon()
        for theme in pack.themes:
            lex.add(theme.terms, THEME, theme.id)
        lex.add(rel.entities, ENTITY, "entity")
        lex.add(rel.products, PRODUCT, "product")
        lex.add(rel.ai_terms, AI, "ai")
        lex.add(rel.peers, PEER, "peer")
        lex.add(rel.other_senses, OTHER_SENSE, "other")
        lex.add(rel.off_topic_context, OFF_CONTEXT, "off")
        lex.add(rel.yardstick_cues, CUE, "cue")
        self._index = lex.compile()
        self._order = {t.id: i for i, t in enumerate(pack.themes)}

    def tag(self, title: str, text: str) -> TagResult:
        title = title or ""
        doc = _tokenize(f"{title}\n\n{text or ''}", title_len_chars=len(title))
        hits = self._match(doc)
        relevance, reasons = _Relevance(self.pack, doc, hits).score()
        candidates = self._themes(doc, hits)
        relevant = relevance >= self.pack.relevance.threshold
        return TagResult(
            relevant=relevant,
            relevance=round(relevance, 4),
            themes=candidates if relevant else (),
            reasons=reasons,
            candidates=candidates,
        )

    def _match(self, doc: _Doc) -> list[_Hit]:
        hits: list[_Hit] = []
        tokens, starts, index = doc.tokens, doc.sentence_start, self._index
        n, i = len(tokens), 0
        while i < n:
            step = 1
            for phrase, feats in index.get(tokens[i], ()):
                size = len(phrase)
                if size == 1 or (
                    tuple(tokens[i : i + size]) == phrase and not any(starts[i + 1 : i + size])
                ):
                    hits.append(_Hit(i, i + size, feats))
                    step = size
                    break
            i += step
        return hits

    def _themes(self, doc: _Doc, hits: list[_Hit]) -> tuple[ThemeScore, ...]:
        cfg = self.pack.tagging
        found: dict[str, dict[str, _TermHits]] = {}  # theme -> phrase as written -> hits
        for hit in hits:
            for kind, theme_id, weight in hit.features:
                if kind == THEME:
                    surface = _surface(doc, hit)
                    terms = found.setdefault(theme_id, {})
                    slot = terms.setdefault(surface.lower(), _TermHits(surface, weight))
                    slot.count += 1
                    slot.in_title = slot.in_title or hit.start < doc.title_len
        raw: list[tuple[float, str, tuple[str, ...]]] = []
        for theme_id, terms in found.items():
            parts = sorted(((t.value(cfg), t.surface) for t in terms.values()), reverse=True)
            evidence = tuple(surface for value, surface in parts if value > 0)
            raw.append((sum(v for v, _ in parts), theme_id, evidence[:_MAX_EVIDENCE]))
        raw.sort(key=lambda r: (-r[0], self._order[r[1]]))
        best = raw[0][0] if raw else 0.0
        floor = max(cfg.theme_threshold, cfg.relative_floor * best)
        return tuple(
            ThemeScore(theme_id, round(1 - math.exp(-total / cfg.score_scale), 4), evidence)
            for total, theme_id, evidence in raw[: cfg.max_themes]
            if total >= floor
        )


@dataclass
class _TermHits:
    surface: str
    weight: float
    count: int = 0
    in_title: bool = False

    def value(self, cfg: TaggingConfig) -> float:
        repeats = min(self.count, 4) - 1
        value = self.weight * (1 + cfg.repeat_bonus * repeats)
        return value * cfg.title_weight if self.in_title else value


def _surface(doc: _Doc, hit: _Hit) -> str:
    return doc.text[doc.spans[hit.start][0] : doc.spans[hit.end - 1][1]]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


class _Relevance:
    """Relevance features of one document; see RelevanceWeights for the model."""

    def __init__(self, pack: Pack, doc: _Doc, hits: list[_Hit]) -> None:
        self.cfg = pack.relevance
        self.doc = doc
        self.mentions: list[_Hit] = []
        self.peers: list[int] = []
        self.peer_at: dict[int, _Hit] = {}  # peer hits by first and last token
        self.ai: list[tuple[_Hit, float]] = []
        self.cues: list[int] = []
        self.other: list[tuple[str, float]] = []
        self.off: list[tuple[str, float]] = []
        for hit in hits:
            for kind, _key, weight in hit.features:
                if kind in (ENTITY, PRODUCT) and (
                    not self.mentions or self.mentions[-1] is not hit
                ):
                    self.mentions.append(hit)
                if kind in (PRODUCT, AI):
                    self.ai.append((hit, weight))
                elif kind == PEER:
                    self.peers.append(hit.start)
                    self.peer_at[hit.start] = self.peer_at[hit.end - 1] = hit
                elif kind == CUE:
                    self.cues.append(hit.start)
                elif kind == OTHER_SENSE:
                    self.other.append((_surface(doc, hit), weight))
                elif kind == OFF_CONTEXT:
                    self.off.append((_surface(doc, hit), weight))

    def _weight(self, hit: _Hit, kind: int) -> float:
        return max((w for k, _, w in hit.features if k == kind), default=0.0)

    def _in_list(self, hit: _Hit) -> bool:
        """Is the mention one name in a run like "Microsoft, Google, Meta and Amazon"?

        Walks outwards over peer names separated only by punctuation or list words.
        """
        linked = 0
        for step in (-1, 1):
            pos = hit.start - 1 if step < 0 else hit.end
            skipped = 0
            while 0 <= pos < len(self.doc.tokens) and skipped <= self.cfg.list_window:
                peer = self.peer_at.get(pos)
                if peer is not None:
                    linked += 1
                    pos = peer.start - 1 if step < 0 else peer.end
                    skipped = 0
                elif self.doc.tokens[pos] in _LIST_WORDS:
                    pos += step
                    skipped += 1
                else:
                    break
        return linked >= 2

    def _yardstick(self, hit: _Hit) -> bool:
        return any(hit.start - _CUE_WINDOW <= c < hit.start for c in self.cues)

    def score(self) -> tuple[float, tuple[str, ...]]:
        cfg, w, doc = self.cfg, self.cfg.weights, self.doc
        subject = cfg.subject
        reasons: list[str] = []
        listed = [h for h in self.mentions if self._in_list(h)]
        yard = [h for h in self.mentions if h not in listed and self._yardstick(h)]
        focus = [h for h in self.mentions if h not in listed and h not in yard]
        in_title = [h for h in focus if h.start < doc.title_len]
        in_body = [h for h in focus if h.start >= doc.title_len]

        def name(h: _Hit) -> float:
            return max(self._weight(h, ENTITY), self._weight(h, PRODUCT))

        z = w.bias
        if in_title:
            z += w.title_entity * min(sum(name(h) for h in in_title), 2.0)
            reasons.append(f"{subject} named in the headline ({_surface(doc, in_title[0])!r})")
            if in_title[0].start < _SUBJECT_SLOTS:
                z += w.title_subject
                reasons.append(f"{subject} is the subject of the headline")
        if in_body:
            z += w.body_entity * math.log1p(sum(name(h) for h in in_body))
            subj = sum(1 for h in in_body if _sentence_pos(doc, h.start) < _SUBJECT_SLOTS)
            z += w.sentence_subject * min(subj, 2)
            reasons.append(f"{len(in_body)} mention(s) of {subject} in the text")
        if any(self._weight(h, PRODUCT) for h in focus):
            z += w.product
            reasons.append(f"names a {subject} AI product")
        near, near_terms = self._ai_near(focus)
        if near > 0:
            z += w.ai_near * math.log1p(near)
            reasons.append(f"AI vocabulary near {subject} mentions ({', '.join(near_terms)})")
        if near < cfg.min_ai:
            # Graded: one ambiguous word ("model") near the name is weak evidence.
            z -= w.no_ai * (1 - near / cfg.min_ai)
            if not self.mentions:
                reasons.append(f"{subject} is not mentioned")
            elif near == 0:
                reasons.append(f"no AI vocabulary near {subject} mentions")
            else:
                reasons.append(f"little AI vocabulary near {subject} mentions")
        if self.peers and not in_title and any(p < doc.title_len for p in self.peers):
            z -= w.peer_headline
            reasons.append(f"the headline is about another company, not {subject}")
        if (listed or yard) and not focus:
            z -= w.list_only
            reasons.append(f"{subject} appears only in a list or as a comparison")
        if yard and not in_title:
            z -= w.yardstick
            reasons.append(f"{subject}'s product used as a yardstick ({_surface(doc, yard[0])!r})")
        if self.other:
            z -= w.other_sense * min(sum(wt for _, wt in self.other), 2.0)
            reasons.append(f"other sense of the name ({self.other[0][0]!r})")
        if self.off:
            z -= w.off_topic_context * min(sum(wt for _, wt in self.off), 2.0)
            reasons.append(f"off-topic context ({', '.join(sorted({s for s, _ in self.off}))})")
        return _sigmoid(z), tuple(reasons)

    def _ai_near(self, focus: list[_Hit]) -> tuple[float, list[str]]:
        """Weight of AI vocabulary within `window` tokens of another subject mention."""
        positions = sorted(h.start for h in focus)
        total, terms = 0.0, list[str]()
        for hit, weight in self.ai:
            i = bisect_left(positions, hit.start)
            near = [positions[j] for j in (i - 1, i, i + 1) if 0 <= j < len(positions)]
            if any(p != hit.start and abs(p - hit.start) <= self.cfg.window for p in near):
                total += weight
                surface = _surface(self.doc, hit)
                if surface.lower() not in (t.lower() for t in terms) and len(terms) < 3:
                    terms.append(surface)
        return total, terms


def _sentence_pos(doc: _Doc, index: int) -> int:
    """How many tokens precede `index` in its sentence."""
    pos = 0
    while index - pos > 0 and not doc.sentence_start[index - pos]:
        pos += 1
        if pos >= _SUBJECT_SLOTS:
            break
    return pos

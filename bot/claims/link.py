"""Link coverage to the ledger claims it speaks about, building each claim's trail.

An item speaks about a claim when it shares the claim's distinctive words (its subject)
and, for claims with figures, the figure itself. An item with the same subject and a
figure of the same kind but another value *updates* the claim ("350,000 H100s" later
reported as "600,000"): it is linked with ``updates_figure`` so both show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.claims.figures import Figure, extract_figures, match_figure
from bot.claims.query import TermFinder, Vocabulary, tokenize
from bot.compiled import by_fields

SUBJECT_TERMS = 10
GENERIC_SHARE = 0.3
KEYWORD_BOOST = 1.5
FLOOR = 0.5
FIGURE_HIT = 0.7
FIGURE_SUBJECT = 0.25  # subject share needed beside a figure hit
EXACT_SUBJECT = 0.1  # ... when the figure's unit matches too ("405B parameters")
UPDATE_SUBJECT = 0.45
# Below this subject share a claim's figures cannot count (see _link), so none are looked for.
FIGURES_MATTER = min(EXACT_SUBJECT, FIGURE_SUBJECT, UPDATE_SUBJECT)
MAX_TEXT = 50_000


class LinkTarget(Protocol):
    """What linking reads of a claim (a ledger claim or a lookup record)."""

    @property
    def id(self) -> str: ...
    @property
    def statement(self) -> str: ...
    @property
    def keywords(self) -> tuple[str, ...]: ...
    @property
    def figures(self) -> tuple[Figure, ...]: ...


@dataclass(frozen=True, slots=True)
class ClaimLink:
    claim_id: str
    score: float
    updates_figure: bool = False

    def __reduce__(self) -> tuple[type[Any], tuple[object, ...]]:
        return by_fields(self)


@dataclass(frozen=True, slots=True)
class _Profile:
    record: LinkTarget
    subject: tuple[tuple[str, float], ...]  # distinctive tokens with idf weights
    weight: float  # the sum of the subject's weights


class Linker:
    """Precomputes each claim's subject once; ``link`` is then cheap per item."""

    def __init__(self, claims: Sequence[LinkTarget], vocabulary: Vocabulary | None = None) -> None:
        if vocabulary is None:
            vocabulary = Vocabulary()
            for record in claims:
                vocabulary.add_document(_subject_tokens(record))
        self._profiles = [_profile(record, vocabulary) for record in claims]
        self._by_token: dict[str, list[int]] = {}  # subject token -> claims (their positions)
        for position, profile in enumerate(self._profiles):
            for token, _ in profile.subject:
                self._by_token.setdefault(token, []).append(position)
        self._subject_tokens = frozenset(self._by_token)
        self._find_terms = TermFinder(self._subject_tokens)

    def link(
        self,
        title: str,
        text: str,
        figures: Sequence[Figure] | None = None,
        *,
        floor: float = FLOOR,
    ) -> list[ClaimLink]:
        """Claims the item speaks about, best first."""
        body = f"{title}\n{text[:MAX_TEXT]}"
        # Only subject tokens are ever looked up in the item's tokens.
        tokens = self._find_terms(body)
        found: list[Figure] | None = None  # the item's figures, found when a claim needs them
        links = []
        for profile in self._candidates(tokens, floor):
            subject = _subject_score(profile, tokens)
            if found is None and profile.record.figures and subject >= FIGURES_MATTER:
                found = list(figures) if figures is not None else extract_figures(body)
            if link := _link(profile, subject, found or [], floor):
                links.append(link)
        return sorted(links, key=lambda link: (-link.score, link.claim_id))

    def _candidates(self, tokens: frozenset[str], floor: float) -> list[_Profile]:
        """The claims that can clear `floor`, in ledger order.

        A claim that shares no subject token with the item has a subject score of 0, and
        every score `_link` gives is then 0, so with a positive floor only claims sharing
        a token can link.
        """
        if floor <= 0:
            return self._profiles
        # The term finder gives subject tokens only (no intersection with _by_token
        # needed); get() keeps a stray token from failing the item.
        by_token = self._by_token
        shared = {position for token in tokens for position in by_token.get(token, ())}
        return [self._profiles[position] for position in sorted(shared)]


def _subject_tokens(record: LinkTarget) -> list[str]:
    text = " ".join([record.statement, " ".join(record.keywords)])
    return [t for t in tokenize(text) if not t[0].isdigit() and not t.startswith(("fx", "fd"))]


def _profile(record: LinkTarget, vocabulary: Vocabulary) -> _Profile:
    """Curated keywords first, then the statement's rarer words; common words never."""
    common = max(3, int(vocabulary.n_docs * GENERIC_SHARE))
    keywords = [t for t in tokenize(" ".join(record.keywords)) if not t[0].isdigit()]
    # Ties in idf are broken by the token: a set's order changes with the process's hash
    # seed, and every worker process must pick the same subject.
    rest = sorted(
        set(_subject_tokens(record)) - set(keywords), key=lambda t: (-vocabulary.idf(t), t)
    )
    chosen = [t for t in dict.fromkeys(keywords + rest) if vocabulary.df.get(t, 0) <= common]
    weights = {t: vocabulary.idf(t) * (KEYWORD_BOOST if t in keywords else 1.0) for t in chosen}
    subject = tuple(weights.items())[:SUBJECT_TERMS]
    return _Profile(record, subject, sum(w for _, w in subject))


def _subject_score(profile: _Profile, tokens: frozenset[str]) -> float:
    if profile.weight <= 0:
        return 0.0
    # The weights of the tokens present, summed in subject order (as floats must be, for
    # the same result every time).
    total = 0.0
    for token, weight in profile.subject:
        if token in tokens:
            total += weight
    return total / profile.weight


def _link(
    profile: _Profile, subject: float, figures: Sequence[Figure], floor: float
) -> ClaimLink | None:
    claim_figures = profile.record.figures
    if not claim_figures:
        score = subject * 0.8
        return ClaimLink(profile.record.id, round(score, 4)) if score >= floor else None
    hits = [(match_figure(f, c), f.kind == c.kind != "") for f in figures for c in claim_figures]
    best, same_kind = max(hits, default=(0.0, False))
    if best >= FIGURE_HIT and subject >= (EXACT_SUBJECT if same_kind else FIGURE_SUBJECT):
        return ClaimLink(
            profile.record.id, round(0.5 + 0.5 * subject, 4), _updates(profile, figures, subject)
        )
    if _updates(profile, figures, subject):
        return ClaimLink(profile.record.id, round(0.4 + 0.4 * subject, 4), updates_figure=True)
    score = subject * 0.6
    return ClaimLink(profile.record.id, round(score, 4)) if score >= floor else None


def _updates(profile: _Profile, figures: Sequence[Figure], subject: float) -> bool:
    """Same subject, a figure of the same kind with another value: the claim moved."""
    if subject < UPDATE_SUBJECT:
        return False
    claim_figures = profile.record.figures
    return any(
        f.kind and f.kind == c.kind and match_figure(f, c) == 0.0
        for f in figures
        for c in claim_figures
    )

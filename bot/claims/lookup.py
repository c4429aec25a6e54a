"""The /claim lookup engine: parse the query, fetch candidates, score them in [0, 1].

Candidates come from a ``ClaimStore``: the in-memory ``ClaimIndex`` here (tests, the
offline demo) or the full-text search in ``storage.search``. Scoring is the same for both:
an idf-weighted share of the query's terms found in the claim, and figure matches that
weigh more than words when the user typed a number.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import func, select

from bot.claims.figures import Figure, match_figure, query_figure_tokens
from bot.claims.ledger import LedgerClaim
from bot.claims.query import ParsedQuery, Vocabulary, claim_search_text, parse_query
from storage.db import Database
from storage.models import Claim, ClaimCoverage, Item
from storage.search import ClaimSearch

FLOOR = 0.4
FIGURE_WEIGHT = 0.65
ALTERNATIVE_WEIGHT = 0.8
SECONDARY_FIGURE_WEIGHT = 0.85
# Queries made only of very common words ("Meta", "AI") are too general to rank.
SPECIFIC_IDF = 1.5
NOTHING = "No tracked claim matches."
BROAD_COUNT = 8
COMMON_SHARE = 0.2
CANDIDATE_CACHE = 100_000


@dataclass(frozen=True, slots=True)
class CoverageRef:
    title: str
    url: str
    published: str  # ISO 8601, UTC

    def to_json(self) -> dict[str, str]:
        return {"title": self.title, "url": self.url, "published": self.published}


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """A claim as the lookup sees it: from the ledger or extracted from coverage."""

    id: str
    statement: str
    speaker: str | None
    claimed_on: date | None
    publication: str
    source_title: str
    url: str | None = None
    seed: str | None = None
    themes: tuple[str, ...] = ()
    status: str = "open"
    figures: tuple[Figure, ...] = ()
    keywords: tuple[str, ...] = ()
    origin: str = "ledger"
    superseded_by: str | None = None
    status_note: str | None = None
    tokens: frozenset[str] = field(default=frozenset(), compare=False)

    @classmethod
    def from_ledger(cls, claim: LedgerClaim) -> ClaimRecord:
        record = cls(
            id=claim.id,
            statement=claim.statement,
            speaker=claim.speaker,
            claimed_on=claim.claimed_on,
            publication=claim.source.publication,
            source_title=claim.source.title,
            url=claim.source.url,
            seed=claim.source.seed,
            themes=claim.themes,
            status=claim.status,
            figures=claim.figures,
            keywords=claim.keywords,
            superseded_by=claim.superseded_by,
            status_note=claim.status_note,
        )
        return record.with_tokens()

    def search_text(self) -> str:
        """What the full-text index stores for this claim (the ``search_text`` column)."""
        return claim_search_text(
            self.statement, self.speaker, self.keywords, self.themes, self.figures
        )

    def with_tokens(self, search_text: str | None = None) -> ClaimRecord:
        text = search_text if search_text is not None else self.search_text()
        return _replace_tokens(self, frozenset(text.split()))


def _replace_tokens(record: ClaimRecord, tokens: frozenset[str]) -> ClaimRecord:
    from dataclasses import replace

    return replace(record, tokens=tokens)


@dataclass(frozen=True, slots=True)
class Match:
    claim: ClaimRecord
    score: float
    coverage: tuple[CoverageRef, ...] = ()

    def to_json(self) -> dict[str, Any]:
        c = self.claim
        return {
            "id": c.id,
            "statement": c.statement,
            "speaker": c.speaker,
            "claimed_on": c.claimed_on.isoformat() if c.claimed_on else None,
            "source": {
                "publication": c.publication,
                "title": c.source_title,
                "url": c.url,
                "seed": c.seed,
            },
            "themes": list(c.themes),
            "status": c.status,
            "score": round(self.score, 4),
            "coverage": [ref.to_json() for ref in self.coverage],
        }


@dataclass(frozen=True, slots=True)
class LookupResult:
    query: str
    matches: tuple[Match, ...] = ()
    problem: str | None = None
    corrections: tuple[tuple[str, str], ...] = ()

    @property
    def message(self) -> str | None:
        """What to tell the user when there is nothing to list."""
        return self.problem or (None if self.matches else NOTHING)

    def to_json(self) -> dict[str, Any]:
        """Exactly the ``briefbot claim --json`` contract."""
        return {"query": self.query, "matches": [m.to_json() for m in self.matches]}


@dataclass(frozen=True, slots=True)
class Candidate:
    """What scoring needs of a claim; the full record is fetched only for the winners."""

    id: str
    tokens: frozenset[str]
    figures: tuple[Figure, ...]
    length: int

    @classmethod
    def of(cls, record: ClaimRecord) -> Candidate:
        return cls(record.id, record.tokens, record.figures, len(record.statement))


class ClaimStore(Protocol):
    def vocabulary(self) -> Vocabulary: ...

    def candidates(self, query: ParsedQuery, limit: int) -> list[Candidate]: ...

    def get(self, claim_ids: Sequence[str]) -> list[ClaimRecord]: ...

    def coverage(
        self, claim_ids: Sequence[str], per_claim: int
    ) -> dict[str, list[CoverageRef]]: ...


def search_terms(query: ParsedQuery) -> list[str]:
    """Tokens a full-text index should OR together for this query."""
    terms = list(query.terms)
    for figure in query.figures:
        terms.extend(query_figure_tokens(figure))
    return list(dict.fromkeys(terms))


def _text_score(query: ParsedQuery, tokens: frozenset[str], vocabulary: Vocabulary) -> float:
    if not query.groups:
        return 0.0
    total = found = 0.0
    for main, *alternatives in query.groups:
        weight = vocabulary.idf(main)
        total += weight
        if main in tokens:
            found += weight
            continue
        hits = [vocabulary.idf(alt) for alt in alternatives if alt in tokens]
        if hits:
            found += min(weight, max(hits)) * ALTERNATIVE_WEIGHT
    if total <= 0:
        return 0.0
    specificity = min(1.0, total / SPECIFIC_IDF)
    return (found / total) * specificity


def _figure_score(query: Sequence[Figure], claim: Sequence[Figure]) -> float:
    if not query:
        return 0.0
    best = [
        max(
            (
                match_figure(wanted, have) * (1.0 if i == 0 else SECONDARY_FIGURE_WEIGHT)
                for i, have in enumerate(claim)
            ),
            default=0.0,
        )
        for wanted in query
    ]
    return sum(best) / len(best)


def score_claim(
    query: ParsedQuery, record: ClaimRecord | Candidate, vocabulary: Vocabulary
) -> float:
    """Relevance of one claim to a parsed query, in [0, 1]."""
    text = _text_score(query, record.tokens, vocabulary)
    if not query.figures:
        return text
    figures = _figure_score(query.figures, record.figures)
    if not query.groups:
        return figures
    return FIGURE_WEIGHT * figures + (1 - FIGURE_WEIGHT) * text


class ClaimIndex:
    """An in-memory ``ClaimStore``: postings per token, coverage trails per claim."""

    def __init__(self, records: Iterable[ClaimRecord] = ()) -> None:
        self._records: dict[str, ClaimRecord] = {}
        self._candidates: dict[str, Candidate] = {}
        self._postings: dict[str, set[str]] = {}
        self._vocabulary = Vocabulary()
        self._coverage: dict[str, list[CoverageRef]] = {}
        for record in records:
            self.add(record)

    @classmethod
    def from_ledger(cls, claims: Iterable[LedgerClaim]) -> ClaimIndex:
        return cls(ClaimRecord.from_ledger(claim) for claim in claims)

    def add(self, record: ClaimRecord) -> None:
        if not record.tokens:
            record = record.with_tokens()
        self._records[record.id] = record
        self._candidates[record.id] = Candidate.of(record)
        for token in record.tokens:
            self._postings.setdefault(token, set()).add(record.id)
        self._vocabulary.add_document(record.tokens)

    def add_coverage(self, claim_id: str, ref: CoverageRef) -> None:
        trail = self._coverage.setdefault(claim_id, [])
        if ref not in trail:
            trail.append(ref)
            trail.sort(key=lambda r: r.published, reverse=True)

    def vocabulary(self) -> Vocabulary:
        return self._vocabulary

    def candidates(self, query: ParsedQuery, limit: int) -> list[Candidate]:
        ids: set[str] = set()
        for term in search_terms(query):
            ids |= self._postings.get(term, set())
        return [self._candidates[i] for i in sorted(ids)][:limit]

    def get(self, claim_ids: Sequence[str]) -> list[ClaimRecord]:
        return [self._records[i] for i in claim_ids if i in self._records]

    def coverage(self, claim_ids: Sequence[str], per_claim: int) -> dict[str, list[CoverageRef]]:
        return {i: self._coverage.get(i, [])[:per_claim] for i in claim_ids}


class LookupEngine:
    """Answers ``/claim`` queries from any ``ClaimStore``."""

    def __init__(
        self,
        store: ClaimStore,
        *,
        floor: float = FLOOR,
        candidate_limit: int = 100,
        coverage_per_claim: int = 3,
    ) -> None:
        self.store = store
        self.floor = floor
        self.candidate_limit = candidate_limit
        self.coverage_per_claim = coverage_per_claim

    def lookup(self, query: str, limit: int = 5) -> LookupResult:
        vocabulary = self.store.vocabulary()
        parsed = parse_query(query, vocabulary)
        shown = query.strip()[:200]
        if parsed.problem:
            return LookupResult(shown, problem=parsed.problem)
        limit = max(1, min(limit, 50))
        scored = [
            (score_claim(parsed, record, vocabulary), record)
            for record in self.store.candidates(parsed, self.candidate_limit)
        ]
        nothing = not any(s >= self.floor for s, _ in scored)
        if nothing and len(scored) >= BROAD_COUNT and _too_general(parsed, vocabulary):
            return LookupResult(shown, problem=_broad_message(parsed, len(scored)))
        top = sorted(
            ((s, c) for s, c in scored if s >= self.floor),
            # On a tie the tracked (ledger) claim comes before a candidate from coverage
            # (candidate ids start with "cov-", see extract.candidate_id).
            key=lambda pair: (
                -round(pair[0], 6),
                pair[1].id.startswith("cov-"),
                pair[1].length,
                pair[1].id,
            ),
        )[:limit]
        records = {r.id: r for r in self.store.get([c.id for _, c in top])}
        ranked = [(s, records[c.id]) for s, c in top if c.id in records]
        ranked = self._with_successors(ranked, limit)
        trails = self.store.coverage([r.id for _, r in ranked], self.coverage_per_claim)
        matches = tuple(
            Match(record, _clamp(score), tuple(trails.get(record.id, ())))
            for score, record in ranked
        )
        return LookupResult(shown, matches, None, parsed.corrections)

    def _with_successors(
        self, ranked: list[tuple[float, ClaimRecord]], limit: int
    ) -> list[tuple[float, ClaimRecord]]:
        """A superseded claim is shown with what replaced it, right after it."""
        present = {record.id for _, record in ranked}
        out: list[tuple[float, ClaimRecord]] = []
        for score, record in ranked:
            out.append((score, record))
            successor_id = record.superseded_by
            if successor_id and successor_id not in present:
                for successor in self.store.get([successor_id]):
                    out.append((score * 0.95, successor))
                    present.add(successor.id)
        return out[: max(limit, len(ranked))]


def _too_general(query: ParsedQuery, vocabulary: Vocabulary) -> bool:
    if query.figures or not query.groups:
        return False
    return sum(vocabulary.idf(group[0]) for group in query.groups) < SPECIFIC_IDF


def _broad_message(query: ParsedQuery, count: int) -> str:
    words = " ".join(group[0] for group in query.groups)
    return (
        f'Too broad: {count} tracked claims mention "{words}". '
        'Add a topic, a model or a figure, e.g. "Zuckerberg open source" or "350k H100s".'
    )


def _clamp(score: float) -> float:
    return 0.0 if math.isnan(score) else max(0.0, min(1.0, score))


def claim_values(
    record: ClaimRecord, *, item_id: int | None = None, search_text: str | None = None
) -> dict[str, Any]:
    """Column values of ``storage.models.Claim`` for a record (search_text included, or
    given when it was computed already)."""
    return {
        "id": record.id,
        "origin": record.origin,
        "statement": record.statement,
        "speaker": record.speaker,
        "claimed_on": record.claimed_on,
        "publication": record.publication,
        "source_title": record.source_title,
        "source_url": record.url,
        "seed": record.seed,
        "themes": list(record.themes),
        "figures": [figure.as_dict() for figure in record.figures],
        "keywords": list(record.keywords),
        "status": record.status,
        "superseded_by": record.superseded_by,
        "status_note": record.status_note,
        "item_id": item_id,
        "search_text": record.search_text() if search_text is None else search_text,
    }


def record_from_row(row: Claim) -> ClaimRecord:
    """A stored claim as a lookup record; tokens come from its indexed search_text."""
    return ClaimRecord(
        id=row.id,
        statement=row.statement,
        speaker=row.speaker,
        claimed_on=row.claimed_on,
        publication=row.publication,
        source_title=row.source_title,
        url=row.source_url,
        seed=row.seed,
        themes=tuple(str(t) for t in row.themes or ()),
        status=row.status,
        figures=_figures(row.figures),
        keywords=tuple(str(k) for k in row.keywords or ()),
        origin=row.origin,
        superseded_by=row.superseded_by,
        status_note=row.status_note,
        tokens=frozenset(row.search_text.split()),
    )


class StoredClaims:
    """A ``ClaimStore`` over the database: full-text candidates, coverage trails from SQL.

    Term counts for idf weights and typo correction are read from the index and cached
    for ``refresh_seconds``; a slightly stale count only nudges scores.
    """

    def __init__(self, db: Database, *, refresh_seconds: float = 300.0) -> None:
        self.db = db
        self.search = ClaimSearch(db.engine)
        self.refresh_seconds = refresh_seconds
        self._vocabulary: Vocabulary | None = None
        self._loaded_at = 0.0
        # Candidate claims change rarely (status lives in the full record, read fresh), so
        # they are cached as long as the term counts and dropped with them.
        self._candidates: dict[str, Candidate] = {}

    def vocabulary(self) -> Vocabulary:
        now = time.monotonic()
        if self._vocabulary is None or now - self._loaded_at > self.refresh_seconds:
            counts, total = self.search.term_counts()
            vocabulary = Vocabulary()
            vocabulary.add_counts(counts, total)
            self._vocabulary, self._loaded_at = vocabulary, now
            self._candidates = {}
        return self._vocabulary

    def candidates(self, query: ParsedQuery, limit: int) -> list[Candidate]:
        terms = _informative_terms(search_terms(query), self.vocabulary())
        ids = self.search.search(terms, limit)
        missing = [i for i in ids if i not in self._candidates]
        if missing:
            if len(self._candidates) > CANDIDATE_CACHE:
                self._candidates = {}
            columns = select(
                Claim.id, Claim.search_text, Claim.figures, func.length(Claim.statement)
            ).where(Claim.id.in_(missing))
            with self.db.engine.connect() as conn:
                for claim_id, text, figures, length in conn.execute(columns):
                    self._candidates[claim_id] = Candidate(
                        claim_id, frozenset(text.split()), _figures(figures), length
                    )
        return [self._candidates[i] for i in ids if i in self._candidates]

    def get(self, claim_ids: Sequence[str]) -> list[ClaimRecord]:
        """Full records, in the order asked for."""
        if not claim_ids:
            return []
        with self.db.session() as session:
            rows = session.scalars(select(Claim).where(Claim.id.in_(list(claim_ids)))).all()
            found = {row.id: record_from_row(row) for row in rows}
        return [found[i] for i in claim_ids if i in found]

    def coverage(self, claim_ids: Sequence[str], per_claim: int) -> dict[str, list[CoverageRef]]:
        if not claim_ids or per_claim <= 0:
            return {}
        newest = (
            func.row_number()
            .over(partition_by=ClaimCoverage.claim_id, order_by=Item.published_at.desc())
            .label("n")
        )
        ranked = (
            select(ClaimCoverage.claim_id, Item.title, Item.url, Item.published_at, newest)
            .join(Item, Item.id == ClaimCoverage.item_id)
            .where(ClaimCoverage.claim_id.in_(list(claim_ids)))
            .subquery()
        )
        query = select(ranked).where(ranked.c.n <= per_claim).order_by(ranked.c.n)
        trails: dict[str, list[CoverageRef]] = {}
        with self.db.engine.connect() as conn:
            for claim_id, title, url, published, _ in conn.execute(query):
                ref = CoverageRef(title, url or "", _iso(published))
                trails.setdefault(claim_id, []).append(ref)
        return trails


def _figures(raw: Any) -> tuple[Figure, ...]:
    """Stored figures; a malformed entry is skipped rather than failing the lookup."""
    figures: list[Figure] = []
    for entry in raw if isinstance(raw, list) else ():
        try:
            figures.append(Figure.from_dict(entry))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(figures)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _informative_terms(terms: list[str], vocabulary: Vocabulary) -> list[str]:
    """Drop terms found in most claims when rarer ones remain: they only slow the search."""
    common = max(50, int(vocabulary.n_docs * COMMON_SHARE))
    rare = [t for t in terms if vocabulary.df.get(t, 0) <= common]
    return rare or terms

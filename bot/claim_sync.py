"""Claims in the database: the pack's ledger synced at start, and the claim links and
candidate claims of newly stored coverage (computed beforehand by bot.prepare)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, insert, literal_column, null, select
from sqlalchemy.orm import Session

from bot.claims.extract import CandidateClaim, candidate_id
from bot.claims.link import ClaimLink
from bot.claims.lookup import ClaimRecord, claim_values
from bot.prepare import Prepared
from storage.db import Database
from storage.models import Claim, ClaimCoverage, table_of
from storage.records import NewItem

# The columns in which every candidate claim's row holds the same value (that of
# claim_values for a to_record record).
CANDIDATE_CONSTANTS: dict[str, Any] = {
    "origin": "coverage",
    "seed": None,
    "themes": [],
    "keywords": [],
    "status": "open",
    "superseded_by": None,
    "status_note": None,
}


def _sql_constant(value: str | list[Any] | None) -> ColumnElement[Any]:
    """A constant of CANDIDATE_CONSTANTS as SQL text (a JSON column's empty list too)."""
    if value is None:
        return null()
    text = "[]" if value == [] else value
    assert isinstance(text, str) and "'" not in text
    return literal_column(f"'{text}'")


# Built once: a statement executed again skips SQLAlchemy's cache-key work. The
# candidates' INSERT holds CANDIDATE_CONSTANTS as SQL constants, so that rows bind (and
# encode) only what differs between them.
_INSERT_CANDIDATES = insert(table_of(Claim)).values(
    {column: _sql_constant(value) for column, value in CANDIDATE_CONSTANTS.items()}
)
_INSERT_COVERAGE = insert(table_of(ClaimCoverage))


def sync_ledger(db: Database, records: list[ClaimRecord]) -> int:
    """Insert or update every ledger claim; ledger claims no longer in the pack go away."""
    wanted = {r.id: claim_values(r) for r in records}
    with db.session() as session:
        stored = {c.id: c for c in session.scalars(select(Claim).where(Claim.origin == "ledger"))}
        for claim_id, values in wanted.items():
            row = stored.get(claim_id)
            if row is None:
                session.add(Claim(**values))
                continue
            for column, value in values.items():
                if getattr(row, column) != value:
                    setattr(row, column, value)
        for claim_id, row in stored.items():
            if claim_id not in wanted:
                session.delete(row)
    return len(wanted)


def store_claims(session: Session, stored: Sequence[tuple[int, Prepared]]) -> None:
    """Coverage trails and candidate claims of items just stored (same transaction), in
    two multi-row INSERTs."""
    coverage: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    for item_id, prepared in stored:
        if prepared.links:  # most items link to no claim and have no candidate
            coverage.extend(_coverage_rows(item_id, prepared.links))
        if prepared.candidates:
            claims.extend(candidate_rows(item_id, prepared.item, prepared.candidates))
    conn = session.connection()
    if claims:
        conn.execute(_INSERT_CANDIDATES, claims)
    if coverage:
        conn.execute(_INSERT_COVERAGE, coverage)


def _coverage_rows(item_id: int, links: Sequence[ClaimLink]) -> list[dict[str, Any]]:
    return [
        {
            "claim_id": link.claim_id,
            "item_id": item_id,
            "score": link.score,
            "updates_figure": link.updates_figure,
        }
        for link in links
    ]


def candidate_rows(
    item_id: int, item: NewItem, candidates: Sequence[CandidateClaim]
) -> list[dict[str, Any]]:
    """The claims rows of an item's candidates but for CANDIDATE_CONSTANTS: what
    ``claim_values`` gives for their ``to_record`` records, written out (the storing
    process would build and copy two records a row)."""
    published = item.published_at.date()
    return [
        {
            "id": candidate_id(item_id, candidate.statement),
            "statement": candidate.statement,
            "speaker": candidate.speaker,
            "claimed_on": published,
            "publication": item.source,
            "source_title": item.title,
            "source_url": item.url,
            "figures": [figure.as_dict() for figure in candidate.figures],
            "item_id": item_id,
            "search_text": candidate.search_text,
        }
        for candidate in candidates
    ]

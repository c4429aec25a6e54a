"""Claims in the database: the pack's ledger synced at start, and the claim links and
candidate claims of newly stored coverage (computed beforehand by bot.prepare)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from bot.claims.extract import candidate_id, to_record
from bot.claims.lookup import ClaimRecord, claim_values
from bot.prepare import Prepared
from storage.db import Database
from storage.models import Claim, ClaimCoverage, table_of

# Built once: a statement executed again skips SQLAlchemy's cache-key work.
_INSERT_CLAIMS = insert(table_of(Claim))
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
        item = prepared.item
        coverage.extend(
            {
                "claim_id": link.claim_id,
                "item_id": item_id,
                "score": link.score,
                "updates_figure": link.updates_figure,
            }
            for link in prepared.links
        )
        for candidate in prepared.candidates:
            record = to_record(
                candidate,
                claim_id=candidate_id(item_id, candidate.statement),
                publication=item.source,
                title=item.title,
                url=item.url,
                published=item.published_at.date(),
            )
            claims.append(claim_values(record, item_id=item_id, search_text=candidate.search_text))
    conn = session.connection()
    if claims:
        conn.execute(_INSERT_CLAIMS, claims)
    if coverage:
        conn.execute(_INSERT_COVERAGE, coverage)

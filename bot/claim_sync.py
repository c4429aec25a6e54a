"""Claims in the database: the pack's ledger synced at start, and an ingest hook that
links new coverage to tracked claims and stores the candidate claims it carries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.claims.extract import candidate_id, extract_candidates, to_record
from bot.claims.ledger import load_ledger
from bot.claims.link import Linker
from bot.claims.lookup import ClaimRecord, claim_values
from bot.pack import Pack
from bot.stories import load_items
from storage.db import Database
from storage.items import StoreReport
from storage.models import Claim, ClaimCoverage


def ledger_records(pack: Pack) -> list[ClaimRecord]:
    if not pack.claims_path.is_file():
        return []
    claims = load_ledger(pack.claims_path, pack.theme_ids)
    return [ClaimRecord.from_ledger(claim) for claim in claims]


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


class ClaimLinkHook:
    """Ingest hook: runs inside the transaction that stored the items."""

    def __init__(self, records: list[ClaimRecord]) -> None:
        self.linker = Linker(records)
        self.known = {r.id for r in records}

    def __call__(self, session: Session, report: StoreReport) -> None:
        items = [i for i in load_items(session, [s.item_id for s in report.stored]) if i.relevant]
        for item in items:
            for link in self.linker.link(item.title, item.text):
                if link.claim_id in self.known:
                    session.add(
                        ClaimCoverage(
                            claim_id=link.claim_id,
                            item_id=item.id,
                            score=link.score,
                            updates_figure=link.updates_figure,
                        )
                    )
            for candidate in extract_candidates(item.title, item.text):
                claim_id = candidate_id(item.id, candidate.statement)
                record = to_record(
                    candidate,
                    claim_id=claim_id,
                    publication=item.source,
                    title=item.title,
                    url=item.url,
                    published=item.published_at.date(),
                )
                session.add(Claim(**claim_values(record, item_id=item.id)))
        session.flush()

"""Coverage claims reach SQLite's full-text index once per transaction, not row by row.

FTS5 flushes the terms it holds in memory whenever a statement inside a transaction
opens (each statement is a savepoint), so a per-row trigger wrote a tiny index segment
for almost every claim the ingest writer stored, and merging them back made indexing the
costliest part of storing a claim (~30 us each, five times what one statement over all
of a transaction's claims costs). Coverage claims are therefore left out of the insert
trigger (migration 0005) and indexed in one statement as their transaction commits: the
coverage rows above the largest rowid the transaction started with (SQLite gives a new
row the next rowid up). A savepoint rolled back takes its rows with it, so they are never
indexed. Ledger claims, edits and deletions still go through the triggers.

PostgreSQL needs none of this: its search vector is a generated column.
"""

from __future__ import annotations

from sqlalchemy import Connection, event, text
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

_START = "claims_rowid_at_begin"
# The largest rowid, and whether the schema leaves coverage claims to this module (a
# database not yet migrated to 0005 indexes them in its trigger: never index them twice).
_START_IF_DEFERRED = text(
    "SELECT coalesce(max(rowid), 0), EXISTS (SELECT 1 FROM sqlite_master"
    " WHERE type = 'trigger' AND name = 'claims_fts_ai' AND sql LIKE '%IS NOT ''coverage''%')"
    " FROM claims"
)
_INDEX_NEW_COVERAGE = text(
    "INSERT INTO claims_fts(rowid, search_text) "
    "SELECT rowid, search_text FROM claims WHERE rowid > :start AND origin = 'coverage'"
)


def index_coverage_at_commit(sessions: sessionmaker[Session]) -> None:
    """Make every write session from `sessions` index its new coverage claims on commit."""
    event.listen(sessions, "after_begin", _note_start)
    event.listen(sessions, "before_commit", _index_new_coverage)


def _note_start(session: Session, transaction: SessionTransaction, conn: Connection) -> None:
    if transaction.nested or conn.dialect.name != "sqlite":
        return
    start, deferred = conn.execute(_START_IF_DEFERRED).one()
    session.info[_START] = (transaction, start if deferred else None)


def _index_new_coverage(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: its rows are indexed with the whole transaction
    session.flush()  # claims added through the ORM are written only now (this may begin)
    noted = session.info.pop(_START, None)
    # Noted by this very transaction (a session may outlive one that was rolled back).
    if noted is None or noted[0] is not session.get_transaction() or noted[1] is None:
        return
    session.connection().execute(_INDEX_NEW_COVERAGE, {"start": noted[1]})

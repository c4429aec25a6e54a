"""Coverage claims join SQLite's full-text index once per transaction (storage.claim_index),
exactly once each, and only if their transaction (and savepoint) kept them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DatabaseError

from storage.db import Database, downgrade, upgrade
from storage.models import Claim
from storage.search import ClaimSearch


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    # SQLite only: the mechanism under test is FTS5's (PostgreSQL's search vector is a
    # generated column, covered with the rest of search in test_claims_search).
    database = Database(f"sqlite:///{tmp_path / 'claims.db'}")
    yield database
    database.dispose()


def coverage(word: str) -> dict[str, object]:
    return {
        "id": f"coverage-{word}",
        "origin": "coverage",
        "statement": f"Meta said {word}.",
        "search_text": f"meta said {word}",
    }


def indexed_docs(db: Database, term: str) -> int:
    """Occurrences of `term` in the index: 0 until a claim holding it is indexed. (A row
    indexed twice shadows itself here; the integrity check is what catches that.)"""
    with db.reading() as session:
        found = session.scalar(
            text("SELECT cnt FROM claims_fts_vocab WHERE term = :t"), {"t": term}
        )
        return int(found or 0)


def assert_index_matches_table(db: Database) -> None:
    """FTS5's own check: the index holds exactly the claims table's rows and terms."""
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO claims_fts(claims_fts, rank) VALUES ('integrity-check', 1)"))


def test_core_and_orm_inserts_are_indexed_once_at_commit(db: Database) -> None:
    with db.session() as session:
        session.execute(insert(Claim), [coverage("zephyrine"), coverage("quillon")])
        session.add(Claim(**coverage("marrowby")))  # flushed only as the commit starts
        with session.begin_nested():  # a released savepoint is indexed with the rest
            session.execute(insert(Claim), [coverage("thistlewick")])
    for word in ("zephyrine", "quillon", "marrowby", "thistlewick"):
        assert indexed_docs(db, word) == 1, word
        assert ClaimSearch(db.engine).search([word]) == [f"coverage-{word}"]
    assert_index_matches_table(db)


def test_a_transaction_that_only_adds_through_the_orm(db: Database) -> None:
    """Nothing runs before the commit's flush: the transaction begins inside the commit."""
    with db.session() as session:
        session.add(Claim(**coverage("ormonly")))
    assert indexed_docs(db, "ormonly") == 1
    assert_index_matches_table(db)


def test_a_rolled_back_savepoint_leaves_nothing_in_the_index(db: Database) -> None:
    with db.session() as session:
        with pytest.raises(RuntimeError), session.begin_nested():
            session.execute(insert(Claim), [coverage("discarded")])
            raise RuntimeError("this feed's write failed")
        session.execute(insert(Claim), [coverage("kept")])
    assert indexed_docs(db, "discarded") == 0 and indexed_docs(db, "kept") == 1
    assert_index_matches_table(db)


def test_a_rolled_back_transaction_indexes_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as session:
        session.execute(insert(Claim), [coverage("rolledback")])
        raise RuntimeError("the whole write failed")
    with db.session() as session:  # the next transaction starts from its own rowid
        session.execute(insert(Claim), [coverage("afterwards")])
    assert indexed_docs(db, "rolledback") == 0 and indexed_docs(db, "afterwards") == 1
    assert_index_matches_table(db)


def test_ledger_claims_still_go_through_the_trigger(db: Database) -> None:
    with db.session() as session:
        session.execute(insert(Claim), [{**coverage("ledgerword"), "origin": "ledger"}])
    assert indexed_docs(db, "ledgerword") == 1
    assert_index_matches_table(db)


def test_a_database_before_migration_0005_is_never_indexed_twice(db: Database) -> None:
    downgrade(db.engine, "0004")  # its trigger indexes coverage claims itself
    with db.session() as session:
        session.execute(insert(Claim), [coverage("oldschema")])
    assert indexed_docs(db, "oldschema") == 1
    assert_index_matches_table(db)
    upgrade(db.engine)
    with db.session() as session:
        session.execute(insert(Claim), [coverage("newschema")])
    assert indexed_docs(db, "newschema") == 1
    assert_index_matches_table(db)


def test_the_integrity_check_catches_a_doubly_indexed_row(db: Database) -> None:
    """The check the other tests rely on fails when a row is indexed twice."""
    with db.session() as session:
        session.execute(insert(Claim), [coverage("twice")])
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO claims_fts(rowid, search_text) "
                "SELECT rowid, search_text FROM claims WHERE id = 'coverage-twice'"
            )
        )
    with pytest.raises(DatabaseError):
        assert_index_matches_table(db)

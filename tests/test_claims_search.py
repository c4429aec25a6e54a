"""/claim on a real database: FTS5 on SQLite, tsvector on PostgreSQL (both when it answers)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.claims.extract import candidate_id, extract_candidates, to_record
from bot.claims.ledger import DEFAULT_PACK_DIR, load_ledger
from bot.claims.lookup import ClaimRecord, LookupEngine, StoredClaims, claim_values
from storage.db import Database, downgrade, upgrade
from storage.models import Claim, ClaimCoverage, Feed, Item
from storage.search import ClaimSearch, fts5_expression, safe_terms, tsquery_expression

HOSTILE = [
    '"',
    "*",
    "NEAR(",
    'NEAR("a" "b", 3) OR * AND NOT ^col:x',
    "'; DROP TABLE claims; --",
    "🦙" * 50,
    "x" * 10_000,
    "\\x00 %s %(q)s :q ?",
]


def _store_ledger(db: Database) -> None:
    with db.session() as session:
        for claim in load_ledger(DEFAULT_PACK_DIR):
            session.add(Claim(**claim_values(ClaimRecord.from_ledger(claim))))


def _item(session_db: Database, n: int, title: str, day: int) -> int:
    with session_db.session() as session:
        feed = session.scalar(select(Feed).where(Feed.url == "https://feeds.example/rss"))
        if feed is None:
            feed = Feed(url="https://feeds.example/rss", title="Example")
            session.add(feed)
            session.flush()
        item = Item(
            feed_id=feed.id,
            guid=f"g{n}",
            url=f"https://news.example/{n}",
            source="Example News",
            title=title,
            title_key=title.lower(),
            published_at=datetime(2024, 3, day, 9, 0, tzinfo=UTC),
            content_hash=f"h{n}",
        )
        session.add(item)
        session.flush()
        return item.id


@pytest.fixture
def stored(db: Database) -> StoredClaims:
    _store_ledger(db)
    return StoredClaims(db)


def test_ranked_lookup_on_the_database(stored: StoredClaims) -> None:
    engine = LookupEngine(stored)
    assert engine.lookup("350k H100s").matches[0].claim.id == "meta-350k-h100-2024"
    assert engine.lookup("700 million").matches[0].claim.id == "llama-licence-700m-users"
    assert engine.lookup("$10bn").matches[0].claim.id == "ten-billion-dollar-models"
    typo = engine.lookup("Zuckerburg smart glases")
    assert typo.matches[0].claim.id == "smart-glasses-ideal-for-ai"
    assert ("zuckerburg", "zuckerberg") in typo.corrections
    assert engine.lookup("banana bread").matches == ()


def test_hostile_queries_never_reach_sql(stored: StoredClaims) -> None:
    engine = LookupEngine(stored)
    for query in HOSTILE:
        result = engine.lookup(query)
        assert result.matches == () and result.message, query
        assert stored.search.search([query, "h100"], 5)  # bad token dropped, good one searched
    with stored.db.session() as session:
        assert session.scalar(select(Claim).limit(1)) is not None  # the table survived


def test_coverage_trail_is_newest_first_and_capped(stored: StoredClaims) -> None:
    db = stored.db
    ids = [_item(db, n, f"H100 story {n}", day=n) for n in range(1, 6)]
    with db.session() as session:
        for item_id in ids:
            session.add(ClaimCoverage(claim_id="meta-350k-h100-2024", item_id=item_id, score=0.8))
    match = LookupEngine(stored, coverage_per_claim=3).lookup("350k H100s").matches[0]
    assert [ref.title for ref in match.coverage] == ["H100 story 5", "H100 story 4", "H100 story 3"]
    assert match.coverage[0].published == "2024-03-05T09:00:00+00:00"
    assert match.coverage[0].url == "https://news.example/5"


def test_candidate_claims_from_coverage_are_searchable(stored: StoredClaims) -> None:
    db = stored.db
    item_id = _item(db, 99, "Meta raises its GPU target", day=20)
    text = "Zuckerberg said Meta will have 1.3 million GPUs by the end of 2025."
    candidate = extract_candidates("", text)[0]
    record = to_record(
        candidate,
        claim_id=candidate_id(item_id, candidate.statement),
        publication="Example News",
        title="Meta raises its GPU target",
        url="https://news.example/99",
        published=datetime(2024, 3, 20, tzinfo=UTC).date(),
    )
    with db.session() as session:
        session.add(Claim(**claim_values(record, item_id=item_id)))
    stored.refresh_seconds = 0  # see the new term counts at once
    match = LookupEngine(stored).lookup("1.3 million GPUs").matches[0]
    assert match.claim.id == record.id and match.claim.seed is None
    assert match.to_json()["source"]["publication"] == "Example News"


def test_index_follows_updates_and_deletes(stored: StoredClaims) -> None:
    with stored.db.session() as session:
        claim = session.get(Claim, "llama4-in-development")
        assert claim is not None
        claim.search_text = claim.search_text + " behemoth"
        session.delete(session.get(Claim, "meta-most-gpus"))
    assert stored.search.search(["behemoth"]) == ["llama4-in-development"]
    assert "meta-most-gpus" not in stored.search.search(["gpu", "nvidia"], 500)


def test_term_counts_feed_the_vocabulary(stored: StoredClaims) -> None:
    counts, total = stored.search.term_counts()
    assert total == len(load_ledger(DEFAULT_PACK_DIR))
    assert dict(counts)["h100"] >= 5


def test_search_migration_downgrades_and_upgrades(db: Database) -> None:
    _store_ledger(db)
    downgrade(db.engine, "0001")
    upgrade(db.engine)
    ClaimSearch(db.engine).rebuild()
    assert "meta-350k-h100-2024" in ClaimSearch(db.engine).search(["fx3p5e05"])


def test_match_expressions_contain_only_quoted_plain_tokens() -> None:
    hostile = ['a" OR "b', "NEAR(", "*", "x:y", "h100", "", "DROP", "fx3p5e05"]
    assert safe_terms(hostile) == ["h100", "fx3p5e05"]
    assert fts5_expression(hostile) == '"h100" OR "fx3p5e05"'
    assert tsquery_expression(hostile) == "h100 | fx3p5e05"

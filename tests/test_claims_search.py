"""/claim on a real database: FTS5 on SQLite, tsvector on PostgreSQL (both when it answers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Text, cast, insert, select

from bot.claim_sync import CANDIDATE_CONSTANTS, candidate_rows, store_claims
from bot.claims.extract import CandidateClaim, candidate_id, extract_candidates, to_record
from bot.claims.ledger import DEFAULT_PACK_DIR, load_ledger
from bot.claims.link import ClaimLink
from bot.claims.lookup import ClaimRecord, LookupEngine, StoredClaims, claim_values
from bot.prepare import Prepared
from storage.db import Database, downgrade, upgrade
from storage.models import Claim, ClaimCoverage, Feed, Item, table_of
from storage.records import NewItem
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


# -- candidate claims' rows, written out, against claim_values of their records --------


def _dev_candidates() -> list[CandidateClaim]:
    lines = (Path(__file__).parent / "data" / "devset.jsonl").read_text().splitlines()
    found = []
    for line in lines:
        entry = json.loads(line)
        found.extend(extract_candidates(entry["title"], entry["text"]))
    return found


DEV_CANDIDATES = _dev_candidates()


def _new_item(source: str, title: str, url: str | None, published: datetime) -> NewItem:
    return NewItem(
        guid=None,
        url=url,
        canonical_url=url,
        source=source,
        title=title,
        title_key=title.lower(),
        author=None,
        published_at=published,
        published_was_missing=False,
        fetched_at=published,
        text="",
        summary="",
        content_hash="h",
    )


def _record_values(item_id: int, item: NewItem, candidate: CandidateClaim) -> dict[str, object]:
    record = to_record(
        candidate,
        claim_id=candidate_id(item_id, candidate.statement),
        publication=item.source,
        title=item.title,
        url=item.url,
        published=item.published_at.date(),
    )
    return claim_values(record, item_id=item_id, search_text=candidate.search_text)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=2**62),
    st.text(max_size=20),
    st.text(max_size=40),
    st.none() | st.text(max_size=30),
    st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-8)), timezone(timedelta(hours=13))]
        )
    ),
    st.integers(min_value=0, max_value=len(DEV_CANDIDATES)),
    st.integers(min_value=0, max_value=4),
)
def test_candidate_rows_and_constants_are_claim_values_of_their_records(
    item_id: int,
    source: str,
    title: str,
    url: str | None,
    published: datetime,
    first: int,
    count: int,
) -> None:
    assert DEV_CANDIDATES
    item = _new_item(source, title, url, published)
    candidates = DEV_CANDIDATES[first : first + count]
    rows = [{**row, **CANDIDATE_CONSTANTS} for row in candidate_rows(item_id, item, candidates)]
    assert rows == [_record_values(item_id, item, c) for c in candidates]


def test_store_claims_stores_the_candidates_rows_and_links(stored: StoredClaims) -> None:
    # Candidates stored by store_claims for one item, and inserted the plain way (rows of
    # claim_values) for another: every column reads the same, as the database keeps it.
    db = stored.db
    item_id, plain_id, bare_id = (_item(db, n, f"Story {n}", day=n) for n in (7, 8, 9))
    published = datetime(2024, 3, 20, 9, 0, tzinfo=UTC)
    item = _new_item(
        "Example News", "Meta plans a bigger GPU fleet", "https://n.example/7", published
    )
    text = (
        "Zuckerberg said Meta will have 1.3 million GPUs by the end of 2025. "
        "According to Meta, its assistant has 500 million monthly users."
    )
    candidates = tuple(extract_candidates(item.title, text))
    assert len(candidates) == 3
    links = (ClaimLink("meta-350k-h100-2024", 0.75, True), ClaimLink("meta-most-gpus", 0.5))
    prepared = [
        (item_id, Prepared(item, candidates=candidates, links=links)),
        (bare_id, Prepared(_new_item("Example News", "x", None, published))),
    ]
    with db.session() as session:
        store_claims(session, prepared)
        plain = [_record_values(plain_id, item, c) for c in candidates]
        session.connection().execute(insert(table_of(Claim)), plain)
    columns = [c for c in table_of(Claim).columns if c.name not in ("id", "item_id", "created_at")]
    as_kept = select(*(cast(c, Text) for c in columns)).order_by(Claim.statement)
    with db.session() as session:
        got = list(session.execute(as_kept.where(Claim.item_id == item_id)))
        want = list(session.execute(as_kept.where(Claim.item_id == plain_id)))
        ids = set(session.scalars(select(Claim.id).where(Claim.item_id == item_id)))
        trails = session.execute(
            select(
                ClaimCoverage.claim_id,
                ClaimCoverage.item_id,
                ClaimCoverage.score,
                ClaimCoverage.updates_figure,
            ).order_by(ClaimCoverage.claim_id)
        )
        assert [tuple(trail) for trail in trails] == [
            ("meta-350k-h100-2024", item_id, 0.75, True),
            ("meta-most-gpus", item_id, 0.5, False),
        ]
    assert len(got) == 3 and got == want
    assert ids == {candidate_id(item_id, c.statement) for c in candidates}

"""Lookup latency with 100,000 items and 5,000 claims stored (a benchmark, not a test).

    python bench/lookup.py [--url DATABASE_URL] [--items 100000] [--claims 5000] [--runs 2000]

Builds a throwaway database (SQLite file in a temporary directory unless --url is given),
stores the pack's ledger plus synthetic coverage claims and items, links coverage, then
times ``LookupEngine.lookup`` over a mix of realistic, misspelt and hostile queries and
prints p50 / p95 / p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from bot.claims.figures import Figure
from bot.claims.ledger import DEFAULT_PACK_DIR, load_ledger
from bot.claims.lookup import (
    ClaimRecord,
    LookupEngine,
    StoredClaims,
    claim_values,
)
from storage.db import Database
from storage.models import Claim, ClaimCoverage, Feed, Item

QUERIES = [
    "350k H100s",
    "600k",
    "700 million",
    "$10B",
    "10 billion dollars",
    "Zuck AGI",
    "Zuckerburg open sorce",
    "lama 405B",
    "Llama3 8B benchmarks",
    "OSS licence",
    "gigawatt data center energy",
    "China lead",
    "smart glasses Ray-Ban",
    "Meta AI users",
    "training data Instagram posts",
    "LeCun human-level intelligence",
    "capex guidance investors",
    "Llama 4",
    "'; DROP TABLE claims; --",
    'NEAR("a" OR *)',
    "banana bread",
    "Meta",
    "x" * 10_000,
]
WORDS = (
    "meta llama model gpu h100 nvidia cluster training release open source licence assistant "
    "users chatbot datacenter power energy capex spending investors agi research fair genai "
    "glasses metaverse china export safety policy regulation data posts copyright lawsuit "
    "benchmark reasoning coding agents revenue ads reels instagram whatsapp facebook"
).split()
SPEAKERS = ["Mark Zuckerberg", "Meta", "Yann LeCun", "Chris Cox", None]
UNITS = [
    ("H100 GPUs", "gpu_count"),
    ("USD", "money"),
    ("parameters", "parameters"),
    ("users", "users"),
]


def _pseudo_words(rng: random.Random, n: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(5, 10))) for _ in range(n)]


def _synthetic_claim(rng: random.Random, n: int, extra: list[str], day: datetime) -> ClaimRecord:
    words = rng.sample(WORDS, 6) + rng.sample(extra, 4)
    value = float(
        rng.choice([8, 70, 405, 350, 600, 700, 10, 40, 1.3]) * 10 ** rng.choice([3, 6, 9])
    )
    unit, kind = rng.choice(UNITS)
    speaker = rng.choice(SPEAKERS)
    statement = f"{speaker or 'A report'} said {' '.join(words)} about {value:,.0f} {unit}."
    return ClaimRecord(
        id=f"cov-bench-{n}",
        statement=statement[:280],
        speaker=speaker,
        claimed_on=day.date(),
        publication="Bench News",
        source_title=f"Story {n}",
        url=f"https://bench.example/{n}",
        figures=(Figure(value, value, unit, kind),),
        origin="coverage",
    ).with_tokens()


def build(db: Database, n_items: int, n_claims: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    extra = _pseudo_words(rng, 20_000)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with db.session() as session:
        feed = Feed(url="https://bench.example/rss", title="Bench")
        session.add(feed)
        session.flush()
        feed_id = feed.id
    items = [
        {
            "feed_id": feed_id,
            "guid": f"b{n}",
            "url": f"https://bench.example/{n}",
            "canonical_url": f"https://bench.example/{n}",
            "source": "Bench News",
            "title": " ".join(rng.sample(WORDS, 6)),
            "title_key": f"k{n}",
            "published_at": start + timedelta(minutes=7 * n),
            "content_hash": f"h{n}",
            "text": " ".join(rng.sample(WORDS, 20) + rng.sample(extra, 20)),
        }
        for n in range(1, n_items + 1)
    ]
    ledger = [ClaimRecord.from_ledger(c) for c in load_ledger(DEFAULT_PACK_DIR)]
    synthetic = [
        _synthetic_claim(rng, n, extra, start + timedelta(hours=n))
        for n in range(max(0, n_claims - len(ledger)))
    ]
    claims = [claim_values(r) for r in ledger] + [
        claim_values(r, item_id=rng.randint(1, n_items)) for r in synthetic
    ]
    coverage = {(rng.choice(claims)["id"], rng.randint(1, n_items)) for _ in range(n_items // 2)}
    with db.session() as session:
        for batch in range(0, len(items), 5_000):
            session.execute(insert(Item), items[batch : batch + 5_000])
        session.execute(insert(Claim), claims)
        session.execute(
            insert(ClaimCoverage),
            [{"claim_id": c, "item_id": i, "score": 0.7} for c, i in coverage],
        )


def measure(engine: LookupEngine, runs: int) -> list[float]:
    for query in QUERIES:  # warm-up: term counts, typo index, connection pool
        engine.lookup(query)
    timings: list[float] = []
    for n in range(runs):
        query = QUERIES[n % len(QUERIES)]
        began = time.perf_counter()
        engine.lookup(query)
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        began = time.perf_counter()
        build(db, args.items, args.claims)
        built = time.perf_counter() - began
        timings = sorted(measure(LookupEngine(StoredClaims(db)), args.runs))
        db.dispose()
    q = statistics.quantiles(timings, n=100)
    print(
        f"lookup bench: {db.dialect}, {args.items} items, {args.claims} claims, built {built:.1f}s"
    )
    print(f"  {len(timings)} lookups over {len(QUERIES)} queries")
    print(
        f"  p50 {q[49]:.2f} ms   p95 {q[94]:.2f} ms   p99 {q[98]:.2f} ms   max {timings[-1]:.2f} ms"
    )


if __name__ == "__main__":
    main()

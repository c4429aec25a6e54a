"""Digest build for a busy day: 2,000 relevant items in 24 hours (a benchmark, not a test).

    python bench/digest.py [--url DATABASE_URL] [--items 2000] [--copies 3] [--runs 5]

Stores the items as stories of ``--copies`` syndicated copies each (clusters), tagged with
the pack's themes and a day of yesterday's items before them, then times
``bot.digest.build_digest`` over the last 24 hours and prints milliseconds per build and the
process's peak RSS.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from bot.digest import build_digest
from bot.pack import load_pack
from storage.db import Database
from storage.models import Cluster, Feed, Item, ItemTheme

WORDS = (
    "meta llama model open weights zuckerberg gpu cluster data center training inference "
    "assistant release benchmark parameters nvidia power gigawatt investors capex spending "
    "research fair team license developers cloud partners chips compute safety regulators"
).split()
SOURCES = [f"Outlet {n}" for n in range(40)]


def build(db: Database, until: datetime, n_items: int, copies: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    themes = [t.id for t in load_pack().themes]
    with db.session() as session:
        feed = Feed(url="https://bench.example/rss", title="Bench", backlog_done=True)
        session.add(feed)
        session.flush()
        feed_id = feed.id
    # Yesterday's day plus today's: the digest must skip the earlier one by its window.
    total = n_items * 2
    n_clusters = total // copies
    step = timedelta(hours=48) / total
    clusters = [
        {
            "id": c,
            "title": " ".join(rng.sample(WORDS, 7)),
            "first_seen_at": until - timedelta(hours=48) + step * ((c - 1) * copies + 1),
            "item_count": copies,
            "source_count": copies,
        }
        for c in range(1, n_clusters + 1)
    ]
    items, tags = [], []
    for n in range(1, total + 1):
        cluster_id = min((n - 1) // copies + 1, n_clusters)
        fetched = until - timedelta(hours=48) + step * n
        title = clusters[cluster_id - 1]["title"]
        items.append(
            {
                "id": n,
                "feed_id": feed_id,
                "guid": f"g{n}",
                "url": f"https://outlet{n % 40}.example/{n}",
                "canonical_url": f"https://outlet{n % 40}.example/{n}",
                "source": rng.choice(SOURCES),
                "title": f"{title} ({n % copies})",
                "title_key": f"k{n}",
                "published_at": fetched - timedelta(minutes=rng.randint(0, 90)),
                "fetched_at": fetched,
                "text": " ".join(rng.choices(WORDS, k=120)),
                "summary": " ".join(rng.choices(WORDS, k=35)) + ".",
                "content_hash": f"h{n}",
                "cluster_id": cluster_id,
                "relevance": rng.uniform(0.5, 1.0),
                "relevant": True,
                "relevance_reasons": ["bench"],
            }
        )
        for theme in rng.sample(themes, rng.randint(1, 3)):
            tags.append(
                {"item_id": n, "theme_id": theme, "score": rng.uniform(0.3, 1.0), "evidence": []}
            )
    with db.session() as session:
        session.execute(insert(Cluster), clusters)
        for start in range(0, total, 2_000):
            session.execute(insert(Item), items[start : start + 2_000])
        session.execute(insert(ItemTheme), tags)


def measure(db: Database, until: datetime, runs: int) -> tuple[list[float], int]:
    pack = load_pack()
    timings: list[float] = []
    stories = 0
    for _ in range(runs + 1):  # the first run warms the connection pool and caches
        with db.session() as session:
            began = time.perf_counter()
            digest = build_digest(session, pack, since=until - timedelta(hours=24), until=until)
            timings.append((time.perf_counter() - began) * 1000)
        stories = digest.total_stories
    return timings[1:], stories


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--copies", type=int, default=3, help="syndicated copies per story")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    until = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        build(db, until, args.items, args.copies)
        timings, stories = measure(db, until, args.runs)
        db.dispose()
    print(
        f"digest bench: {db.dialect}, {args.items} items in the last 24 h "
        f"({stories} stories of {args.copies} copies), {args.runs} builds"
    )
    print(
        f"  median {statistics.median(timings):.1f} ms   max {max(timings):.1f} ms   "
        f"peak RSS {peak_rss_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()

"""Tagger throughput on one core: prints items/s for ~1,500-character items.

Items are built from the dev set by joining several texts, so vocabulary is realistic.
Run: PYTHONPATH=. python bench/tagger.py [--items N] [--chars N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bot.evaluate import load_items
from bot.pack import load_pack
from bot.tagger import Tagger

DEVSET = Path(__file__).resolve().parent.parent / "tests" / "data" / "devset.jsonl"


def build_items(count: int, chars: int) -> list[tuple[str, str]]:
    source = load_items(DEVSET)
    out: list[tuple[str, str]] = []
    for i in range(count):
        parts: list[str] = []
        j = i
        while sum(len(p) + 1 for p in parts) < chars:
            parts.append(source[j % len(source)].text)
            j += 7
        out.append((source[i % len(source)].title, " ".join(parts)[:chars]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--chars", type=int, default=1500)
    args = parser.parse_args()
    tagger = Tagger(load_pack())
    items = build_items(args.items, args.chars)
    tagger.tag(*items[0])  # warm up
    wall, cpu = time.perf_counter(), time.process_time()
    relevant = sum(tagger.tag(title, text).relevant for title, text in items)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # CPU time is the one-core figure; wall time also counts other load on the machine.
    print(
        f"tagged {len(items)} items of {args.chars} chars ({relevant} relevant): "
        f"{len(items) / cpu:,.0f} items/s of CPU time, {len(items) / wall:,.0f} items/s wall"
    )


if __name__ == "__main__":
    main()

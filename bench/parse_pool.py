"""Thread pool vs process pool for feed parsing: entries/s and peak RSS.

    python -m bench.parse_pool                 # corpus + generated feeds, all modes
    python -m bench.parse_pool --workload generated --feeds 400 --workers 4

Each mode runs in a fresh interpreter so one mode's memory peak cannot hide another's.
Peak RSS is sampled every 10 ms over the parent and all pool processes together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from bot.parse import make_parse_executor, parse_feed, parse_feed_sync

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "feedparser-tests"
MODES = ("inline", "thread", "process")
FETCHED_AT = datetime(2024, 7, 24, tzinfo=UTC)

PARAGRAPH = (
    "<p>Meta said its newest open model was trained on a cluster of <b>H100</b> GPUs and "
    "is available to developers under its community licence. Analysts compared the "
    'release with rival systems; <a href="https://example.com/analysis?utm_source=rss">'
    "read the analysis</a> &amp; the company&#8217;s own notes.</p>"
)


def generated_feed(number: int, entries: int) -> bytes:
    items = "".join(
        f"<item><title>Story {number}-{n}: Meta AI update</title>"
        f"<link>https://outlet{number}.example/2024/07/story-{n}?utm_medium=feed</link>"
        f"<guid>outlet{number}-{n}</guid><pubDate>Tue, 23 Jul 2024 1{n % 10}:00:00 GMT</pubDate>"
        f"<category>AI</category><description><![CDATA[{PARAGRAPH}]]></description>"
        f"<content:encoded><![CDATA[{PARAGRAPH * 8}]]></content:encoded></item>"
        for n in range(entries)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>Outlet {number}</title><link>https://outlet{number}.example/</link>"
        f"{items}</channel></rss>"
    ).encode()


def load_workload(name: str, feeds: int) -> list[bytes]:
    if name == "corpus":
        if not CORPUS.is_dir():
            sys.exit(f"corpus not found at {CORPUS}")
        return [path.read_bytes() for path in sorted(CORPUS.rglob("*.xml"))]
    return [generated_feed(number, 40) for number in range(feeds)]


class RssSampler:
    """Peak of the summed resident set of this process and its children."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(pid) for pid in _family()))
            self._stop.wait(0.01)


def _family() -> Iterator[int]:
    me = os.getpid()
    yield me
    for line in Path(f"/proc/{me}/task/{me}/children").read_text().split():
        yield int(line)


def _rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def run_mode(mode: str, bodies: list[bytes], workers: int) -> int:
    executor = None if mode == "inline" else make_parse_executor(mode, workers)
    try:
        if executor is None:
            feeds = [
                parse_feed_sync(
                    b, url="https://b.example/", content_type=None, fetched_at=FETCHED_AT
                )
                for b in bodies
            ]
        else:
            feeds = await asyncio.gather(
                *(
                    parse_feed(
                        body,
                        url="https://b.example/",
                        content_type=None,
                        fetched_at=FETCHED_AT,
                        executor=executor,
                    )
                    for body in bodies
                )
            )
    finally:
        if executor is not None:
            executor.shutdown()
    return sum(len(feed.entries) for feed in feeds)


def child(mode: str, workload: str, feeds: int, workers: int) -> None:
    bodies = load_workload(workload, feeds)
    with RssSampler() as sampler:
        started = time.perf_counter()
        entries = asyncio.run(run_mode(mode, bodies, workers))
        elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "mode": mode,
                "workload": workload,
                "feeds": len(bodies),
                "mbytes": round(sum(map(len, bodies)) / 1e6, 1),
                "entries": entries,
                "seconds": round(elapsed, 2),
                "entries_per_s": round(entries / elapsed),
                "peak_rss_mib": round(sampler.peak_kib / 1024),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("corpus", "generated", "both"), default="both")
    parser.add_argument("--feeds", type=int, default=100, help="generated feeds (40 entries each)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workload, args.feeds, args.workers)
        return
    workloads = ("corpus", "generated") if args.workload == "both" else (args.workload,)
    print(f"workers={args.workers} cpus={os.cpu_count()}")
    header = f"{'workload':<10} {'mode':<8} {'feeds':>6} {'MB':>6} {'entries':>8} "
    print(header + f"{'sec':>7} {'entries/s':>10} {'peak RSS MiB':>13}")
    for workload in workloads:
        for mode in MODES:
            command = [sys.executable, "-m", "bench.parse_pool", "--child", mode]
            command += ["--workload", workload, "--feeds", str(args.feeds)]
            command += ["--workers", str(args.workers)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{workload:<10} {mode:<8} {row['feeds']:>6} {row['mbytes']:>6} "
                f"{row['entries']:>8} {row['seconds']:>7} {row['entries_per_s']:>10} "
                f"{row['peak_rss_mib']:>13}"
            )


if __name__ == "__main__":
    main()

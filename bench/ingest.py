"""Ingest benchmark: N feeds x M entries served on loopback, briefbot vs the reader library.

Each side runs in its own subprocess on a fresh SQLite file, fetching every feed over
real HTTP and storing every entry; we report entries/s end to end and peak RSS.

    .venv/bin/python bench/ingest.py --feeds 200 --entries 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
SUBJECTS = (
    "Meta",
    "Meta's Llama team",
    "Zuckerberg",
    "Meta's AI lab",
    "OpenAI",
    "Google",
    "Nvidia",
    "Microsoft",
    "Anthropic",
    "Apple",
)
TOPICS = (
    "open-weight model",
    "GPU cluster",
    "data center",
    "AI assistant",
    "chip",
    "licence",
    "capital spending plan",
    "research team",
    "smart glasses",
    "training data deal",
)


def vocabulary(size: int = 3000) -> list[str]:
    """Pronounceable made-up words: realistic token statistics without real text."""
    onsets, vowels, codas = "bcdfghklmnprstvz", "aeiou", ["", "n", "r", "s", "l", "t"]
    rng = random.Random(7)
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.randint(1, 3)
        words.add(
            "".join(
                rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
                for _ in range(syllables)
            )
        )
    return sorted(words)


WORDS = vocabulary()


def story(seed: int) -> tuple[str, str]:
    """A title and a 150-word body; the same seed gives the same story (syndication)."""
    rng = random.Random(seed)
    subject, topic = rng.choice(SUBJECTS), rng.choice(TOPICS)
    figure = f"{rng.randint(2, 900)} {rng.choice(['billion dollars', 'GPUs', 'megawatts'])}"
    title = f"{subject} {rng.choice(['unveils', 'expands', 'cuts', 'plans'])} {topic}: " + " ".join(
        rng.choice(WORDS) for _ in range(5)
    )
    body = " ".join(rng.choice(WORDS) for _ in range(150))
    return title, f"{subject} said the {topic} involves {figure}. {body.capitalize()}."


def make_feed(n: int, entries: int) -> bytes:
    rng = random.Random(n)
    # Recent entries, as a live feed carries: the newest an hour old, the oldest ~15 hours.
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    items = []
    for i in range(entries):
        # One entry in ten is a story several outlets carry (syndication).
        seed = rng.randint(0, 49) if rng.random() < 0.1 else 1000 + n * entries + i
        title, body = story(seed)
        when = format_datetime(now - timedelta(minutes=17 * i + n))
        items.append(
            f"<item><title>{title}</title>"
            f"<link>https://outlet{n}.example/{n}/{i}?utm_source=rss</link>"
            f"<guid>urn:feed{n}:{i}</guid><pubDate>{when}</pubDate>"
            f"<description>&lt;p&gt;{body}&lt;/p&gt;</description></item>"
        )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel>'
        f"<title>Outlet {n}</title><link>https://outlet{n}.example/</link>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def serve(feeds: dict[str, bytes], hosts: int) -> tuple[list[str], threading.Event]:
    """Serve every feed on loopback, from `hosts` addresses (127.0.0.1, 127.0.0.2...): real
    feeds live on many hosts, so per-host politeness limits apply as they would there.
    The base URL of each address, in order."""
    ready = threading.Event()
    stop = threading.Event()
    bases: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            body=feeds[request.match_info["name"]], content_type="application/rss+xml"
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{name}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        for n in range(hosts):
            address = f"127.0.{n // 250}.{n % 250 + 1}"
            site = web.TCPSite(runner, address, 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            bases.append(f"http://{address}:{port}")
        ready.set()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    ready.wait(30)
    return bases, stop


def run_briefbot(urls: list[str], db: str, rounds: int = 1) -> None:
    from bot import heap
    from bot.app import open_app
    from bot.config import Settings

    settings = Settings(database_url=f"sqlite:///{db}", allow_private_feeds="127.0.0.0/8")
    app = open_app(settings)
    with app.db.session() as s:
        from storage.feeds import add_feed

        for url in urls:
            add_feed(s, url)
    # A running bot has its parse workers up and loaded, and its heap settled (bot.launch).
    workers_start = sum(_process_cpu(pid) for pid in app.start_workers())
    heap.settle()
    start, cpu_start = time.perf_counter(), _cpu()["cpu_main"]
    report = asyncio.run(app.ingestor().fetch_due(force=True))
    elapsed = time.perf_counter() - start
    # Later rounds re-fetch every feed unchanged (a server without validators): all seen
    # entries are duplicates, so this measures the steady state.
    again: dict[str, float] = {}
    for _ in range(rounds - 1):
        start = time.perf_counter()
        repeat = asyncio.run(app.ingestor().fetch_due(force=True))
        again = {
            "again_seen": sum(f.stored + f.duplicates for f in repeat.feeds),
            "again_seconds": time.perf_counter() - start,
        }
    workers = _worker_peaks_mb(app.executor)
    app.executor.shutdown(wait=True)
    cpu = _cpu()
    cpu["cpu_main"] -= cpu_start
    cpu["cpu_workers"] -= workers_start
    _emit(report.stored, elapsed, len(report.failed), workers=workers, extra={**again, **cpu})


def _process_cpu(pid: int) -> float:
    """CPU seconds a live process has used so far (user + system, from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu() -> dict[str, float]:
    """CPU seconds of this process and of its reaped children (the parse workers): on a
    busy machine a steadier figure than wall time. The main process's start-up (imports,
    opening the database) is left out on both sides, as the timing leaves it out."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_main": own.ru_utime + own.ru_stime,
        "cpu_workers": children.ru_utime + children.ru_stime,
    }


def _worker_peaks_mb(executor: object) -> list[float]:
    """Each live pool worker's own peak RSS (VmHWM: reset at exec, unlike ru_maxrss, which
    a spawned child inherits from the parent it was forked from)."""
    processes = getattr(executor, "_processes", None) or {}
    return [_peak_mb(f"/proc/{pid}/status") for pid in processes]


def _peak_mb(status_path: str = "/proc/self/status") -> float:
    for line in Path(status_path).read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_reader(urls: list[str], db: str) -> None:
    from reader import make_reader

    reader = make_reader(db)
    for url in urls:
        reader.add_feed(url)
    start, cpu_start = time.perf_counter(), _cpu()["cpu_main"]
    reader.update_feeds(workers=16)
    elapsed = time.perf_counter() - start
    count = reader.get_entry_counts().total
    _emit(
        count or 0,
        elapsed,
        0,
        extra={"cpu_main": _cpu()["cpu_main"] - cpu_start, "cpu_workers": 0.0},
    )


def _emit(
    entries: int,
    elapsed: float,
    failed: int,
    *,
    workers: Sequence[float] = (),
    extra: dict[str, float] | None = None,
) -> None:
    """Peak RSS: this process plus every pool worker, each at its own peak (an upper bound
    of the whole ingest's memory)."""
    main_mb = _peak_mb()
    worker_mb = max(workers, default=0.0)
    print(
        json.dumps(
            {
                "entries": entries,
                "seconds": elapsed,
                "rss_mb": main_mb + sum(workers),
                "main_mb": main_mb,
                "worker_mb": worker_mb,
                "failed": failed,
                **(extra or {}),
            }
        )
    )


def measure(
    which: str, urls: list[str], pool: str = "process", rounds: int = 1
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        urls_file = Path(tmp) / "urls.json"
        urls_file.write_text(json.dumps(urls))
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                which,
                str(urls_file),
                str(Path(tmp) / "db.sqlite"),
                "--rounds",
                str(rounds),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO),
                "BRIEFBOT_PARSE_POOL": pool,
                # As the Docker image and `make run` run the bot (both sides get it).
                "MALLOC_ARENA_MAX": "2",
            },
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{which} failed:\n{proc.stderr[-3000:]}")
        result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result


def _per_entry(result: dict[str, float]) -> str:
    """CPU per entry, split into the main process and the parse workers."""
    main_ms = result["cpu_main"] / result["entries"] * 1000
    workers_ms = result["cpu_workers"] / result["entries"] * 1000
    return f"{main_ms + workers_ms:.2f} ms/entry (main {main_ms:.2f}, workers {workers_ms:.2f})"


def _compare(urls: list[str], pool: str, rounds: int, *, reader: bool) -> float:
    """One run of each side, one after the other; briefbot's rate over reader's."""
    ours = measure("briefbot", urls, pool, rounds)
    print(
        f"briefbot: {ours['entries']:.0f} entries in {ours['seconds']:.2f} s = "
        f"{ours['entries'] / ours['seconds']:.0f} entries/s, peak RSS {ours['rss_mb']:.0f} MB "
        f"(main {ours['main_mb']:.0f} MB, largest worker {ours['worker_mb']:.0f} MB); "
        f"CPU {_per_entry(ours)}"
    )
    if rounds > 1:
        print(
            f"briefbot round {rounds} (same feeds again): {ours['again_seen']:.0f} "
            f"entries seen in {ours['again_seconds']:.2f} s = "
            f"{ours['again_seen'] / ours['again_seconds']:.0f} entries/s"
        )
    if not reader:
        return 0.0
    theirs = measure("reader", urls)
    print(
        f"reader:   {theirs['entries']:.0f} entries in {theirs['seconds']:.2f} s = "
        f"{theirs['entries'] / theirs['seconds']:.0f} entries/s, "
        f"peak RSS {theirs['rss_mb']:.0f} MB; CPU {_per_entry(theirs)}"
    )
    ratio = (ours["entries"] / ours["seconds"]) / (theirs["entries"] / theirs["seconds"])
    print(f"ratio: briefbot is {ratio:.2f}x reader's entries/s")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--child", nargs=3, metavar=("WHICH", "URLS", "DB"))
    parser.add_argument("--skip-reader", action="store_true")
    parser.add_argument(
        "--hosts", type=int, default=200, help="loopback addresses the feeds are spread over"
    )
    parser.add_argument("--pool", choices=["process", "thread"], default="process")
    parser.add_argument(
        "--rounds", type=int, default=1, help="later rounds re-fetch the same feeds (briefbot)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="alternate briefbot and reader runs this many times (a shared machine drifts)",
    )
    args = parser.parse_args()
    if args.child:
        which, urls_file, db = args.child
        urls = json.loads(Path(urls_file).read_text())
        if which == "briefbot":
            run_briefbot(urls, db, args.rounds)
        else:
            run_reader(urls, db)
        return
    feeds = {f"feed{n}.xml": make_feed(n, args.entries) for n in range(args.feeds)}
    bases, stop = serve(feeds, hosts=min(args.feeds, args.hosts))
    urls = [f"{bases[n % len(bases)]}/{name}" for n, name in enumerate(feeds)]
    try:
        print(
            f"ingest benchmark: {args.feeds} feeds x {args.entries} entries on loopback, "
            f"{len(bases)} hosts"
        )
        ratios = [
            _compare(urls, args.pool, args.rounds, reader=not args.skip_reader)
            for _ in range(args.repeat)
        ]
        if len(ratios) > 1 and not args.skip_reader:
            print(
                f"median ratio over {len(ratios)} alternating runs: "
                f"{statistics.median(ratios):.2f}x (from {min(ratios):.2f}x to {max(ratios):.2f}x)"
            )
    finally:
        stop.set()


if __name__ == "__main__":
    main()

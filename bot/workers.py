"""Starting the parse workers before they are needed.

A process pool spawns its workers on first use, and each then imports the parser and
loads the topic pack: about a second of work that would otherwise fall on the first
fetch after start. Kept free of SQLAlchemy imports: workers load this module.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor

from bot import heap
from bot.prepare import preparer_for

# Each warm-up task lingers this long, so the pool hands the next one to another worker.
LINGER_S = 0.2
ROUNDS = 5


def load_pack(pack_dir: str) -> int:
    """Runs in a worker: build its Preparer for the pack; returns the worker's pid."""
    preparer_for(pack_dir)
    heap.settle()
    time.sleep(LINGER_S)
    return os.getpid()


def start_workers(executor: Executor, pack_dir: str, workers: int) -> set[int]:
    """Spawn every worker of a process pool and load the pack in each; the pids of the
    workers that did (empty for a thread pool, whose threads share the main process's)."""
    if not isinstance(executor, ProcessPoolExecutor):
        return set()
    pids: set[int] = set()
    # A worker that is up first may take a second task before another has started:
    # rounds go on until every worker answered (a handful at most).
    for _ in range(ROUNDS):
        futures = [executor.submit(load_pack, pack_dir) for _ in range(workers)]
        pids |= {future.result() for future in futures}
        if len(pids) >= workers:
            break
    return pids

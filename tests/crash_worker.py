"""The process that test_outbox_crash.py kills mid-send and starts again.

    python tests/crash_worker.py DB_URL CHAT_URL OWNER LEASE_SECONDS

Drains the outbox against the loopback chat server until no message is pending or in
flight, then prints the totals as JSON and exits 0 (2 if it ran out of time).
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta

from bot.outbox import Deliverer, DrainReport, outbox_status
from storage.db import Database
from tests.chatserver import HttpSender

DEADLINE_S = 15.0


async def drain_all(db: Database, deliverer: Deliverer) -> DrainReport | None:
    totals = DrainReport()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while loop.time() < deadline:
        report = await deliverer.drain_once()
        for name in ("claimed", "sent", "recovered", "retried", "failed"):
            setattr(totals, name, getattr(totals, name) + getattr(report, name))
        with db.session() as session:
            counts = outbox_status(session).counts
        if not counts.get("pending") and not counts.get("sending"):
            return totals
        await asyncio.sleep(0.05)
    return None


def main(db_url: str, chat_url: str, owner: str, lease_s: str) -> int:
    db = Database(db_url, migrate=False)
    deliverer = Deliverer(
        db,
        {"test": HttpSender(chat_url, timeout=60)},
        owner=owner,
        lease=timedelta(seconds=float(lease_s)),
        base_backoff=timedelta(seconds=0.1),
        pace_per_destination=0.0,
    )
    try:
        totals = asyncio.run(drain_all(db, deliverer))
    finally:
        db.dispose()
    if totals is None:
        return 2
    print(json.dumps(vars(totals)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))

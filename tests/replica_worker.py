"""One bot replica for test_replicas.py: the real runtime with a fast schedule.

    python tests/replica_worker.py DB_URL CHAT_URL HTTP_PORT OWNER

Runs ``BotRuntime`` with PostgreSQL leader election, the outbox deliverer against the
loopback chat server (platform "test") and the HTTP side (/healthz, /metrics) on HTTP_PORT,
until SIGTERM. Test-only speed-ups: jobs every half second, digests every two seconds
(instead of once a day at HH:MM), a one-second alert window, short leases. JSON logs go to
stderr.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot import scheduler
from bot.alerts import flush_alerts
from bot.app import open_app
from bot.config import Settings
from bot.launch import http_side
from bot.leader import AdvisoryLockLeader, libpq_conninfo
from bot.logs import setup_logging
from bot.outbox import Deliverer
from bot.runtime import BotRuntime
from storage.models import Channel
from tests.chatserver import HttpSender


def every_two_seconds(channel: Channel) -> CronTrigger | None:
    if not channel.digest_enabled or not channel.digest_time:
        return None
    return CronTrigger(second="*/2", timezone=ZoneInfo("UTC"))


def main(db_url: str, chat_url: str, http_port: str, owner: str) -> int:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        http_port=int(http_port),
        allow_private_feeds="127.0.0.1",
        log_format="json",
    )
    setup_logging(settings)
    scheduler.digest_trigger = every_two_seconds
    app = open_app(settings)
    senders = {"test": HttpSender(chat_url, timeout=10)}
    runtime = BotRuntime(
        app,
        senders,
        owner=owner,
        flush_alerts=functools.partial(flush_alerts, window=timedelta(seconds=1)),
        fetch_every_s=0.5,
        alerts_every_s=0.5,
        resync_every_s=1.0,
        drain_interval_s=0.1,
        deliverer=Deliverer(
            app.db,
            senders,
            owner=owner,
            lease=timedelta(seconds=4),
            base_backoff=timedelta(seconds=0.2),
            pace_per_destination=0.0,
        ),
        leadership=AdvisoryLockLeader(libpq_conninfo(app.db.url), retry_s=0.5),
    )
    runtime.tasks.append(http_side(app, [], runtime))
    try:
        asyncio.run(runtime.run(asyncio.Event()))
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))

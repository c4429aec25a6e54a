"""The composition root of a bot process: one place wires the core's parts together.

Adapters receive a ``Services`` and use only its handler, pack and database. A schedule
change reaches the running scheduler through ``bot.runtime.current()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import metrics
from bot.app import App
from bot.claims.lookup import LookupEngine, StoredClaims
from bot.commands.handlers import CommandHandler
from bot.digest import digest_now
from bot.messages import Message
from bot.runtime import current


@dataclass
class Services:
    app: App
    handler: CommandHandler
    lookup: LookupEngine
    interactive: bool = True


def _schedule_changed(channel_id: int) -> None:
    """Tell the running scheduler; without one (CLI, tests) the change waits for start."""
    runtime = current()
    if runtime is not None:
        runtime.reschedule_channel(channel_id)


def build_services(app: App, *, interactive: bool = True) -> Services:
    lookup = LookupEngine(StoredClaims(app.db))

    def now_digest(channel_id: int) -> Message:
        return digest_now(app.db, app.pack, channel_id)

    handler = CommandHandler(
        app.db,
        app.pack.themes,
        claims=metrics.TimedLookups(lookup),
        digest_now=now_digest,
        on_schedule_changed=_schedule_changed,
        allowlist=app.allowlist,
    )
    return Services(app=app, handler=handler, lookup=lookup, interactive=interactive)

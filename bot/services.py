"""The composition root of a bot process: one place wires the core's parts together.

Adapters receive a ``Services`` and use only its handler, pack and database; the runtime
fills in ``on_schedule_changed`` once the scheduler exists.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.alerts import match_new_items
from bot.app import App
from bot.claims.lookup import LookupEngine, StoredClaims
from bot.commands.handlers import CommandHandler
from bot.digest import digest_now
from bot.messages import Message


@dataclass
class Services:
    app: App
    handler: CommandHandler
    lookup: LookupEngine
    interactive: bool = True
    schedule_listeners: list[asyncio.Queue[int]] = field(default_factory=list)

    def schedule_changed(self, channel_id: int) -> None:
        for queue in self.schedule_listeners:
            queue.put_nowait(channel_id)


def build_services(app: App, *, interactive: bool = True) -> Services:
    if match_new_items not in app.hooks:
        app.hooks.append(match_new_items)
    lookup = LookupEngine(StoredClaims(app.db))

    def now_digest(channel_id: int) -> Message:
        return digest_now(app.db, app.pack, channel_id)

    services: Services
    handler = CommandHandler(
        app.db,
        app.pack.themes,
        claims=lookup,
        digest_now=now_digest,
        on_schedule_changed=lambda channel_id: services.schedule_changed(channel_id),
        allowlist=app.allowlist,
    )
    services = Services(app=app, handler=handler, lookup=lookup, interactive=interactive)
    return services

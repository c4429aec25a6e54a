"""`briefbot run`: pick the adapters that are configured and run the bot until stopped."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from bot.app import App, open_app
from bot.delivery import Sender
from bot.plugins import AdapterParts, adapter_factories
from bot.runtime import BotRuntime
from bot.services import Services, build_services

log = logging.getLogger(__name__)


def configured_adapters(services: Services) -> list[AdapterParts]:
    """Every chat adapter with credentials; the console when there is none."""
    factories = adapter_factories()
    parts = [
        built
        for name, factory in sorted(factories.items())
        if name != "console" and (built := factory(services)) is not None
    ]
    if not parts and "console" in factories:
        console = factories["console"](services)
        if console is not None:
            parts.append(console)
    return parts


async def health(request: web.Request) -> web.Response:
    app: App = request.app["briefbot"]
    try:
        await asyncio.to_thread(_ping, app)
    except Exception as exc:
        return web.json_response({"ok": False, "database": str(exc)[:200]}, status=503)
    return web.json_response({"ok": True})


def _ping(app: App) -> None:
    with app.db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


async def serve_http(app: App, parts: list[AdapterParts], stop: asyncio.Event) -> None:
    """The HTTP side: adapters' routes (Slack events, OAuth) and /healthz."""
    web_app = web.Application()
    web_app["briefbot"] = app
    web_app.router.add_get("/healthz", health)
    for part in parts:
        web_app.router.add_routes(part.web_routes)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", app.settings.http_port)
    await site.start()
    log.info("HTTP side on port %d", app.settings.http_port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def run_bot(app: App | None = None, *, interactive: bool = True) -> None:
    app = app or open_app()
    services = build_services(app, interactive=interactive)
    parts = configured_adapters(services)
    senders: dict[str, Sender] = {p.name: p.sender for p in parts if p.sender is not None}
    tasks = [task for p in parts for task in p.tasks]
    if any(p.web_routes for p in parts):

        async def http_task(stop: asyncio.Event) -> None:
            await serve_http(app, parts, stop)

        tasks.append(http_task)
    log.info("adapters: %s", ", ".join(p.name for p in parts) or "none")
    try:
        await BotRuntime(app, senders, tasks=tasks).run(asyncio.Event())
    finally:
        app.close()

"""`briefbot run`: pick the adapters that are configured and run the bot until stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiohttp import web

from bot import heap
from bot.app import App, open_app
from bot.delivery import Sender
from bot.logs import setup_logging
from bot.metrics import CONTENT_TYPE, RoleProbe, health_report, render_metrics
from bot.plugins import AdapterParts, adapter_factories
from bot.runtime import AdapterTask, BotRuntime
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


APP_KEY = web.AppKey("briefbot", App)
ROLE_KEY = web.AppKey("briefbot_role", RoleProbe)


async def health(request: web.Request) -> web.Response:
    """200 or 503 with a JSON account: database, role, scheduler, last successful fetch."""
    role = request.app.get(ROLE_KEY)
    status, body = await asyncio.to_thread(health_report, request.app[APP_KEY].db, role)
    return web.json_response(body, status=status)


async def metrics_endpoint(request: web.Request) -> web.Response:
    data = await asyncio.to_thread(render_metrics, request.app[APP_KEY].db)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE})


def build_web_app(
    app: App, parts: Sequence[AdapterParts] = (), role: RoleProbe | None = None
) -> web.Application:
    """The HTTP side: /healthz, /metrics and the adapters' routes (Slack events, OAuth)."""
    web_app = web.Application()
    web_app[APP_KEY] = app
    if role is not None:
        web_app[ROLE_KEY] = role
    web_app.router.add_get("/healthz", health)
    web_app.router.add_get("/metrics", metrics_endpoint)
    for part in parts:
        web_app.router.add_routes(part.web_routes)
    return web_app


async def serve_http(
    app: App,
    parts: Sequence[AdapterParts],
    stop: asyncio.Event,
    *,
    role: RoleProbe | None = None,
    host: str = "0.0.0.0",
) -> None:
    """Serve the HTTP side on ``BRIEFBOT_HTTP_PORT`` until ``stop`` is set."""
    runner = web.AppRunner(build_web_app(app, parts, role), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, app.settings.http_port)
        try:
            await site.start()
        except OSError as exc:
            log.error("HTTP side: cannot listen on port %d: %s", app.settings.http_port, exc)
            return
        log.info("HTTP side on port %d (/healthz, /metrics)", app.settings.http_port)
        await stop.wait()
    finally:
        await runner.cleanup()


def http_side(app: App, parts: Sequence[AdapterParts], role: RoleProbe) -> AdapterTask:
    async def task(stop: asyncio.Event) -> None:
        await serve_http(app, parts, stop, role=role)

    return task


async def run_bot(app: App | None = None, *, interactive: bool = True) -> None:
    app = app or open_app()
    setup_logging(app.settings)
    services = build_services(app, interactive=interactive)
    parts = configured_adapters(services)
    senders: dict[str, Sender] = {p.name: p.sender for p in parts if p.sender is not None}
    tasks = [task for p in parts for task in p.tasks]
    runtime = BotRuntime(app, senders, tasks=tasks)
    runtime.tasks.append(http_side(app, parts, runtime))
    log.info("adapters: %s", ", ".join(p.name for p in parts) or "none")
    try:
        await asyncio.to_thread(app.start_workers)  # not on the first fetch's time
        heap.settle()
        await runtime.run(asyncio.Event())
    finally:
        app.close()

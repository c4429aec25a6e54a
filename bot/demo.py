"""`briefbot demo`: the whole bot offline, end to end, in under a minute.

A loopback HTTP server serves the bundled sample feeds. The first fetch sees the older
half of the entries (a new feed's backlog: stored, never alerted); the second sees the
rest, as if new coverage arrived. Then the digest and a topic alert go through the outbox
to the console adapter, and three /claim lookups are answered.
"""

from __future__ import annotations

import asyncio
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

from aiohttp import web

from bot.alerts import flush_alerts
from bot.app import App, open_app
from bot.commands.requests import Caller
from bot.config import Settings
from bot.digest import queue_digest
from bot.outbox import Deliverer
from bot.plugins import adapter_factories
from bot.samples import SAMPLE_NOW, sample_files
from bot.services import Services, build_services
from bot.textrender import render_text
from storage import channels as channel_repo
from storage.feeds import add_feed

FIRST_ROUND_CUTOFF = SAMPLE_NOW - timedelta(hours=30)
LOOKUPS = ("350k H100s", "Llama 3 405B still training", "Zuckerberg Meta AI monthly users")
ATOM = "{http://www.w3.org/2005/Atom}"


def entries_until(xml: bytes, cutoff: datetime | None) -> bytes:
    """The feed with only the entries published up to ``cutoff`` (all when None)."""
    if cutoff is None:
        return xml
    root = ET.fromstring(xml)
    for parent in [*root.iter("channel"), root]:
        for entry in [*parent.findall("item"), *parent.findall(f"{ATOM}entry")]:
            when = _entry_date(entry)
            if when is not None and when > cutoff:
                parent.remove(entry)
    data: bytes = ET.tostring(root, xml_declaration=True, encoding="utf-8")
    return data


def _entry_date(entry: ET.Element) -> datetime | None:
    text = entry.findtext("pubDate") or entry.findtext(f"{ATOM}published")
    text = text or entry.findtext(f"{ATOM}updated")
    if not text:
        return None
    try:
        if "," in text:
            return parsedate_to_datetime(text).astimezone(UTC)
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except (TypeError, ValueError):
        return None


class SampleServer:
    """Serves the sample feeds on 127.0.0.1; ``cutoff`` decides what "now" looks like."""

    def __init__(self) -> None:
        self.files = {p.name: p.read_bytes() for p in sample_files()}
        self.cutoff: datetime | None = FIRST_ROUND_CUTOFF
        self.base = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> SampleServer:
        app = web.Application()
        app.router.add_get("/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        body = self.files.get(request.match_info["name"])
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=entries_until(body, self.cutoff), content_type="application/xml")

    def urls(self) -> list[str]:
        return [f"{self.base}/{name}" for name in sorted(self.files)]


async def run_demo(say: Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="briefbot-demo-") as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'demo.db'}", allow_private_feeds="127.0.0.1"
        )
        app = open_app(settings)
        try:
            await _demo(app, build_services(app, interactive=False), say)
        finally:
            app.close()


async def _demo(app: App, services: Services, say: Callable[[str], None]) -> None:
    console = adapter_factories()["console"](services)
    assert console is not None and console.sender is not None
    caller = Caller("console", "local", "demo-user", "terminal", is_admin=True)
    handle = services.handler.handle_text
    async with SampleServer() as server:
        with app.db.session() as session:
            for url in server.urls():
                add_feed(session, url)
        say(f"== Following {len(server.urls())} sample feeds served on {server.base}")
        for command, text in (
            ("brief", "digest schedule 09:00 Europe/Berlin"),
            ("brief", "subscribe datacenters-energy here"),
            ("brief", 'subscribe "Llama 5" here'),
        ):
            say(f"> /{command} {text}")
            say(render_text(await handle(caller, command, text)).rstrip())
        ingestor = app.ingestor()
        first = await ingestor.fetch_due(force=True)
        say(f"== First fetch (the feeds' backlog, never alerted): {first.stored} entries")
        server.cutoff = None
        second = await ingestor.fetch_due(force=True)
        say(f"== Second fetch (new coverage arrives): {second.stored} new entries")
    with app.db.session() as session:
        channel = channel_repo.get_channel(session, "console", "local", "terminal")
        assert channel is not None
        channel_id = channel.id
    now = datetime.now(UTC)
    await asyncio.to_thread(queue_digest, app.db, app.pack, channel_id, now)
    await asyncio.to_thread(flush_alerts, app.db, app.pack, now)
    say("== Delivering the outbox to the console adapter")
    deliverer = Deliverer(app.db, {"console": console.sender}, owner="demo", pace_per_destination=0)
    await deliverer.drain_once()
    for query in LOOKUPS:
        say(f"> /claim {query}")
        say(render_text(await handle(caller, "claim", query)).rstrip())

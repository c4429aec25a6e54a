"""Socket Mode over a loopback WebSocket, mode selection, and the app manifest."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.slack_app.app import build_slack, slack_mode
from adapters.slack_app.oauth import BOT_SCOPES
from bot.commands import CommandHandler
from bot.pack import load_pack
from storage.db import Database
from tests.slack_fake_api import FakeSlack, slack_settings

MANIFEST = Path(__file__).resolve().parents[1] / "slack" / "manifest.yml"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.close()
    assert server.violations == []


async def test_socket_mode_acks_the_envelope_and_answers_the_command(
    fake: FakeSlack, sqlite_db: Database
) -> None:
    settings = slack_settings(
        slack_api_url=fake.api_url,
        slack_bot_token="xoxb-socket",
        slack_app_token="xapp-socket",
    )
    adapter = build_slack(settings, CommandHandler(sqlite_db, load_pack().themes), pace=0.0)
    assert adapter.web_routes() == []
    (run,) = adapter.tasks(http_port=8080)  # Socket Mode needs no HTTP server
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    try:
        command = {
            "team_id": "T1",
            "channel_id": "C1",
            "user_id": "U1",
            "command": "/brief",
            "text": "themes",
            "response_url": fake.response_url("socket"),
            "trigger_id": "t",
            "api_app_id": "A1",
        }
        await fake.push(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": command,
            }
        )
        (answer,) = await fake.wait_for("response_url")
        assert "Open weights" in str(answer.args["blocks"])
        assert answer.args["response_type"] == "ephemeral"
        # Bolt acks the envelope after the listener returns: give it a moment.
        for _ in range(500):
            if any(ack.get("envelope_id") == "env-1" for ack in fake.socket_acks):
                break
            await asyncio.sleep(0.01)
        assert any(ack.get("envelope_id") == "env-1" for ack in fake.socket_acks)
        assert fake.of("apps.connections.open")[0].token == "xapp-socket"
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def test_mode_follows_the_credentials() -> None:
    def mode(**values: str) -> str | None:
        return slack_mode(slack_settings(**values))

    assert mode() is None
    assert mode(slack_bot_token="b", slack_app_token="a") == "socket"
    assert mode(slack_bot_token="b", slack_signing_secret="s") == "http"
    assert mode(slack_signing_secret="s", slack_client_id="i", slack_client_secret="c") == "oauth"
    with pytest.raises(ValueError, match="not configured"):
        build_slack(slack_settings(), object())  # type: ignore[arg-type]


def test_manifest_asks_for_exactly_the_scopes_and_features_the_bot_uses() -> None:
    text = MANIFEST.read_text()
    bot_scopes = text.split("    bot:\n", 1)[1].split("settings:", 1)[0]
    assert re.findall(r"- (\S+)", bot_scopes) == list(BOT_SCOPES)
    assert re.findall(r"- command: (\S+)", text) == ["/claim", "/brief"]
    assert "- app_home_opened" in text and "home_tab_enabled: true" in text
    assert re.search(r"interactivity:\n\s+is_enabled: true", text)
    assert "/slack/oauth_redirect" in text and "socket_mode_enabled: true" in text


async def test_http_mode_task_serves_events_and_healthz_until_stopped(sqlite_db: Database) -> None:
    settings = slack_settings(slack_bot_token="xoxb-h", slack_signing_secret="s")
    adapter = build_slack(settings, CommandHandler(sqlite_db, load_pack().themes))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (serve,) = adapter.tasks(http_port=port, host="127.0.0.1")
    stop = asyncio.Event()
    task = asyncio.create_task(serve(stop))
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status == 200
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
        else:
            raise AssertionError("the HTTP task never listened")
        async with session.post(f"http://127.0.0.1:{port}/slack/events", data="x") as response:
            assert response.status == 401  # unsigned
    stop.set()
    await asyncio.wait_for(task, 5)

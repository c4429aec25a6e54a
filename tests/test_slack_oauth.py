"""Multi-workspace install over loopback: /slack/install, the OAuth redirect, then use."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
import sqlalchemy as sa
import time_machine
from aiohttp import web

from adapters.slack_app.app import SlackAdapter, build_slack
from adapters.slack_app.oauth import ThreadedInstallationStore
from bot.commands import CommandHandler
from bot.delivery import Destination
from bot.messages import Notice
from bot.pack import load_pack
from storage.db import Database
from tests.slack_fake_api import FakeSlack, signed_headers, slack_settings

SECRET = "oauth-signing-secret"
TOKEN = "xoxb-team2-very-secret"
NEW_TOKEN = "xoxb-team2-reinstalled"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack(team_id="T2")
    server.installs["code-1"] = {
        "ok": True,
        "app_id": "A1",
        "authed_user": {"id": "U_INSTALLER"},
        "scope": "commands,chat:write",
        "token_type": "bot",
        "access_token": TOKEN,
        "bot_user_id": "UBOT2",
        "team": {"id": "T2", "name": "Two"},
        "enterprise": None,
        "is_enterprise_install": False,
    }
    server.installs["code-2"] = {**server.installs["code-1"], "access_token": NEW_TOKEN}
    await server.start()
    yield server
    await server.close()
    assert server.violations == []


@pytest.fixture
async def served(
    fake: FakeSlack, db: Database
) -> AsyncIterator[tuple[str, SlackAdapter, aiohttp.ClientSession]]:
    settings = slack_settings(
        slack_api_url=fake.api_url,
        slack_signing_secret=SECRET,
        slack_client_id="111.222",
        slack_client_secret="client-secret",
    )
    handler = CommandHandler(db, load_pack().themes)
    adapter = build_slack(settings, handler, engine=db.engine, pace=0.0)
    assert adapter.mode == "oauth"
    runner = web.AppRunner(adapter.web_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        yield f"http://127.0.0.1:{port}", adapter, session
    await runner.cleanup()


async def start_install(base: str, session: aiohttp.ClientSession) -> tuple[str, str]:
    """Open /slack/install like a browser: the state in the link and in the cookie."""
    async with session.get(f"{base}/slack/install") as response:
        assert response.status == 200
        page = await response.text()
        cookie = response.headers["Set-Cookie"].split(";")[0]
    authorize = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page)
    assert authorize is not None
    query = parse_qs(urlsplit(authorize.group(1).replace("&amp;", "&")).query)
    assert query["client_id"] == ["111.222"]
    assert "commands" in query["scope"][0] and "chat:write" in query["scope"][0]
    return query["state"][0], cookie


async def finish_install(
    base: str, session: aiohttp.ClientSession, state: str, cookie: str, code: str = "code-1"
) -> int:
    url = f"{base}/slack/oauth_redirect?{urlencode({'code': code, 'state': state})}"
    async with session.get(url, headers={"Cookie": cookie}) as response:
        await response.read()
        return response.status


async def test_install_stores_the_workspace_token_and_the_bot_uses_it(
    served: tuple[str, SlackAdapter, aiohttp.ClientSession],
    fake: FakeSlack,
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    base, adapter, session = served
    state, cookie = await start_install(base, session)
    assert await finish_install(base, session, state, cookie) == 200
    assert fake.of("oauth.v2.access")[0].args["code"] == "code-1"

    store = ThreadedInstallationStore(db.engine, "111.222")
    assert await store.bot_token("T2") == TOKEN
    assert await store.bot_token("T_OTHER") is None

    # the outbox sender posts into the new workspace with its own token
    await adapter.sender.send(Destination("slack", "T2", "C9"), Notice(level="ok", text="hi"), "k1")
    assert fake.of("chat.postMessage")[0].token == TOKEN

    # and a slash command from that workspace is authorised and answered
    form = {
        "team_id": "T2",
        "channel_id": "C9",
        "user_id": "U5",
        "command": "/brief",
        "text": "help",
        "response_url": fake.response_url("t2"),
        "trigger_id": "t",
        "api_app_id": "A1",
    }
    body = urlencode(form)
    headers = signed_headers(SECRET, body, "application/x-www-form-urlencoded")
    async with session.post(f"{base}/slack/events", data=body, headers=headers) as response:
        assert response.status == 200
    (answer,) = await fake.wait_for("response_url")
    assert "subscribe" in json.dumps(answer.args["blocks"])

    assert TOKEN not in caplog.text


async def test_a_state_cannot_be_replayed_or_forged(
    served: tuple[str, SlackAdapter, aiohttp.ClientSession], fake: FakeSlack
) -> None:
    base, _adapter, session = served
    state, cookie = await start_install(base, session)
    assert await finish_install(base, session, "forged-state", cookie) != 200
    assert await finish_install(base, session, state, cookie) == 200
    assert await finish_install(base, session, state, cookie) != 200
    assert len(fake.of("oauth.v2.access")) == 1


async def test_a_reinstall_replaces_the_token_the_bot_uses(
    served: tuple[str, SlackAdapter, aiohttp.ClientSession], fake: FakeSlack
) -> None:
    base, adapter, session = served
    for code in ("code-1", "code-2"):
        state, cookie = await start_install(base, session)
        assert await finish_install(base, session, state, cookie, code) == 200
    await adapter.sender.send(Destination("slack", "T2", "C9"), Notice(level="ok", text="hi"), "k1")
    assert fake.of("chat.postMessage")[0].token == NEW_TOKEN


async def test_an_expired_state_is_refused_and_cleared_away(
    served: tuple[str, SlackAdapter, aiohttp.ClientSession], fake: FakeSlack, db: Database
) -> None:
    base, _adapter, session = served
    with time_machine.travel(time.time(), tick=True) as clock:
        stale, cookie = await start_install(base, session)
        clock.shift(11 * 60)
        assert await finish_install(base, session, stale, cookie) != 200
        assert fake.of("oauth.v2.access") == []
        # every visit to /slack/install stores a state: old ones must not pile up
        fresh, _cookie = await start_install(base, session)
    with db.engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT state FROM slack_oauth_states")).scalars().all()
    assert kept == [fresh]

"""The Slack app in HTTP mode on loopback: signed requests in, a fake Web API out.

Requests are built and signed exactly as Slack sends them; the bot's Web API calls and
response_url replies land in ``FakeSlack``, which fails the test on any Block Kit problem.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from adapters.slack_app.app import SlackAdapter, build_slack
from bot.claims.ledger import load_ledger
from bot.claims.lookup import ClaimIndex, LookupEngine
from bot.commands import Caller, CommandHandler
from bot.commands.requests import ListSubscriptions, Subscribe
from bot.messages import Digest, Message, Story, SubscriptionList, ThemeSection
from bot.pack import Pack, load_pack
from storage.db import Database
from tests.slack_fake_api import FakeSlack, signed_headers, slack_settings

SECRET = "test-signing-secret"
NOW = datetime(2024, 7, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pack() -> Pack:
    return load_pack()


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack(users={"U_ADMIN": {"is_admin": True}, "U_ALICE": {}, "U_BOB": {}})
    await server.start()
    yield server
    await server.close()
    assert server.violations == []


def digest_now(_channel_id: int) -> Message:
    stories = tuple(
        Story(
            cluster_id=i,
            title=f"<!channel> Llama story {i}",
            url=f"https://news.example/{i}",
            source="Example News",
            published=NOW,
            summary="Meta shipped a model & said <@U1> things.",
            themes=("llama-models",),
        )
        for i in range(40)
    )
    section = ThemeSection(theme_id="llama-models", theme_name="Llama models", stories=stories)
    return Digest(
        title="Meta AI today",
        day=date(2024, 7, 23),
        since=NOW,
        until=NOW,
        sections=(section,),
        total_stories=40,
    )


@pytest.fixture
def handler(sqlite_db: Database, pack: Pack) -> CommandHandler:
    claims = LookupEngine(ClaimIndex.from_ledger(load_ledger(pack.claims_path)))
    return CommandHandler(sqlite_db, pack.themes, claims=claims, digest_now=digest_now)


class Slack:
    """Plays Slack's side of the HTTP conversation."""

    def __init__(self, base: str, fake: FakeSlack, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.fake = fake
        self.session = session

    async def send(self, body: str, content_type: str, **sign: Any) -> aiohttp.ClientResponse:
        headers = signed_headers(sign.pop("secret", SECRET), body, content_type, **sign)
        async with self.session.post(f"{self.base}/slack/events", data=body, headers=headers) as r:
            await r.read()
            return r

    async def command(
        self, text: str, user: str = "U_ALICE", name: str = "/brief", **sign: Any
    ) -> aiohttp.ClientResponse:
        form = {
            "token": "legacy",
            "team_id": "T1",
            "team_domain": "acme",
            "channel_id": "C_TEAM",
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": name,
            "text": text,
            "api_app_id": "A1",
            "response_url": self.fake.response_url(f"cmd-{user}"),
            "trigger_id": f"trig-{time.monotonic_ns()}",
        }
        return await self.send(urlencode(form), "application/x-www-form-urlencoded", **sign)

    async def click(
        self,
        action_id: str,
        value: str,
        user: str = "U_ALICE",
        *,
        in_home: bool = False,
        action: dict[str, Any] | None = None,
    ) -> aiohttp.ClientResponse:
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": "T1", "domain": "acme"},
            "user": {"id": user, "team_id": "T1"},
            "api_app_id": "A1",
            "trigger_id": "trig",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b",
                    "value": value,
                    "action_ts": "1700000000.1",
                }
                | (action or {})
            ],
        }
        if in_home:
            payload["container"] = {"type": "view", "view_id": "V1"}
            payload["view"] = {"id": "V1", "type": "home", "private_metadata": "{}"}
        else:
            payload["container"] = {"type": "message", "message_ts": "1.2", "channel_id": "C_TEAM"}
            payload["channel"] = {"id": "C_TEAM", "name": "general"}
            payload["response_url"] = self.fake.response_url(f"act-{user}")
        body = urlencode({"payload": json.dumps(payload)})
        return await self.send(body, "application/x-www-form-urlencoded")

    async def home_opened(self, user: str) -> aiohttp.ClientResponse:
        body = {
            "token": "legacy",
            "team_id": "T1",
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
            "event": {
                "type": "app_home_opened",
                "user": user,
                "channel": "D1",
                "tab": "home",
                "event_ts": "1700000000.2",
            },
            "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
        }
        return await self.send(json.dumps(body), "application/json")


@pytest.fixture
async def slack(fake: FakeSlack, handler: CommandHandler) -> AsyncIterator[Slack]:
    settings = slack_settings(
        slack_api_url=fake.api_url,
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SECRET,
        admin_users="U_LISTED",
    )
    adapter: SlackAdapter = build_slack(settings, handler, pace=0.01)
    runner = web.AppRunner(adapter.web_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        yield Slack(f"http://127.0.0.1:{port}", fake, session)
    await asyncio.sleep(0.05)  # let lazy listeners finish before the loop closes
    await runner.cleanup()


def all_text(call_args: dict[str, Any]) -> str:
    return json.dumps(call_args.get("blocks")) + str(call_args.get("text"))


async def test_claim_is_acked_at_once_and_answered_only_to_the_asker(
    slack: Slack, fake: FakeSlack
) -> None:
    started = time.monotonic()
    response = await slack.command("350k H100s", name="/claim")
    assert response.status == 200
    assert time.monotonic() - started < 3.0
    (answer,) = await fake.wait_for("response_url")
    assert answer.args["response_type"] == "ephemeral"
    assert "H100" in all_text(answer.args)
    assert fake.of("chat.postMessage") == []


async def test_bad_signature_or_stale_timestamp_is_refused_and_nothing_happens(
    slack: Slack, fake: FakeSlack
) -> None:
    forged = await slack.command("subscribe open-source", secret="not-the-secret")
    stale = await slack.command("subscribe open-source", timestamp=int(time.time()) - 6 * 60)
    assert (forged.status, stale.status) == (401, 401)
    await asyncio.sleep(0.3)
    assert fake.calls == []


async def test_subscribe_button_subscribes_the_person_who_clicked(
    slack: Slack, fake: FakeSlack, handler: CommandHandler
) -> None:
    response = await slack.click("briefbot_subscribe", "open-source", user="U_BOB")
    assert response.status == 200
    (answer,) = await fake.wait_for("response_url")
    assert answer.args["response_type"] == "ephemeral"
    assert answer.args["replace_original"] is False
    subs = await handler.handle(Caller("slack", "T1", "U_BOB", "U_BOB"), ListSubscriptions())
    assert isinstance(subs, SubscriptionList)
    assert [(s.value, s.delivery) for s in subs.subscriptions] == [("open-source", "dm")]


async def test_app_home_shows_subscriptions_with_unsubscribe_and_theme_buttons(
    slack: Slack, fake: FakeSlack, handler: CommandHandler
) -> None:
    alice = Caller("slack", "T1", "U_ALICE", "U_ALICE")
    await handler.handle(alice, Subscribe(kind="theme", value="compute"))
    assert (await slack.home_opened("U_ALICE")).status == 200
    (published,) = await fake.wait_for("views.publish")
    assert published.args["user_id"] == "U_ALICE"
    view = published.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    buttons = [b["accessory"] for b in view["blocks"] if "accessory" in b]
    unsubscribe = [b for b in buttons if b["action_id"] == "briefbot_unsubscribe"]
    subscribe_to = {b["value"] for b in buttons if b["action_id"] == "briefbot_subscribe"}
    assert len(unsubscribe) == 1
    assert "compute" not in subscribe_to and "open-source" in subscribe_to

    # the Unsubscribe button on the home tab removes it and refreshes the tab
    await slack.click("briefbot_unsubscribe", unsubscribe[0]["value"], in_home=True)
    await fake.wait_for("views.publish", 2)
    subs = await handler.handle(alice, ListSubscriptions())
    assert isinstance(subs, SubscriptionList) and subs.subscriptions == ()


async def test_digest_now_goes_to_the_channel_as_a_parent_and_its_thread(
    slack: Slack, fake: FakeSlack
) -> None:
    await slack.command("digest now")
    posts = await fake.wait_for("chat.postMessage", 2)
    await asyncio.sleep(0.2)
    posts = fake.of("chat.postMessage")
    parent, *thread = posts
    assert parent.args["channel"] == "C_TEAM" and "thread_ts" not in parent.args
    assert thread and all(p.args["thread_ts"] == "1700000000.000001" for p in thread)
    assert "&lt;!channel&gt;" in all_text(parent.args)
    assert fake.of("response_url") == []


async def test_admins_come_from_slack_or_the_admin_list_and_are_cached(
    slack: Slack, fake: FakeSlack
) -> None:
    await slack.command("feeds list", user="U_ALICE")
    await slack.command("feeds list", user="U_ADMIN")
    await slack.command("feeds list", user="U_ADMIN")
    await slack.command("feeds list", user="U_LISTED")
    answers = await fake.wait_for("response_url", 4)
    by_user = {a.args["_name"]: all_text(a.args) for a in answers}
    assert "Feeds" not in by_user["cmd-U_ALICE"]
    assert "Feeds" in by_user["cmd-U_ADMIN"] and "Feeds" in by_user["cmd-U_LISTED"]
    asked = [c.args["user"] for c in fake.of("users.info")]
    assert sorted(asked) == ["U_ADMIN", "U_ALICE"]


async def test_a_failing_command_layer_answers_without_a_traceback(
    slack: Slack, fake: FakeSlack, handler: CommandHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any) -> Message:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(handler, "handle_text", broken)
    await slack.command("themes")
    (answer,) = await fake.wait_for("response_url")
    text = all_text(answer.args)
    assert "something went wrong" in text and "on fire" not in text and "Traceback" not in text


def view_of(call_args: dict[str, Any]) -> str:
    view = call_args["view"]
    return json.dumps(json.loads(view) if isinstance(view, str) else view, ensure_ascii=False)


async def test_app_home_shows_a_channel_schedule_and_only_admins_change_it(
    slack: Slack, fake: FakeSlack
) -> None:
    picked = {"type": "conversations_select", "selected_conversation": "C_TEAM"}
    await slack.click("briefbot_home_channel", "", "U_ADMIN", in_home=True, action=picked)
    (first,) = await fake.wait_for("views.publish")
    assert "briefbot_digest_on" in view_of(first.args) and '"C_TEAM"' in view_of(first.args)

    await slack.click("briefbot_digest_on", "C_TEAM", "U_ALICE", in_home=True)
    refused = (await fake.wait_for("views.publish", 2))[1]
    assert "briefbot_digest_on" in view_of(refused.args)  # still off
    assert "⛔" in view_of(refused.args)  # the refusal notice tops the tab

    await slack.click("briefbot_digest_on", "C_TEAM", "U_ADMIN", in_home=True)
    turned_on = (await fake.wait_for("views.publish", 3))[2]
    assert "09:00" in view_of(turned_on.args) and "briefbot_digest_off" in view_of(turned_on.args)

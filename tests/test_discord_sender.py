"""The Discord sender against the loopback fake: nonces, markers, DMs and error mapping."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiohttp import web

from adapters.discord_bot.embeds import markers_in, render
from adapters.discord_bot.sender import DiscordRest, DiscordSender, UnclearSend
from bot.delivery import Destination, PermanentSendError, TransientSendError
from bot.messages import Alert, Digest, Story, ThemeSection
from tests.discord_fake_api import CHANNEL_ID, Failure, FakeDiscord, failure_response

NOW = datetime(2024, 7, 23, 9, 0, tzinfo=UTC)
CHANNEL = Destination("discord", "900000000000000100", CHANNEL_ID)
USER = Destination("discord", "900000000000000100", "800000000000000001", direct=True)


def story(i: int) -> Story:
    return Story(
        cluster_id=i,
        title=f"Meta ships Llama {i} @here",
        url=f"https://news.example/{i}",
        source="Example News",
        published=NOW,
        summary="A long summary of what Meta said about its models. " * 10,
        themes=("llama-models", "open-source"),
    )


def digest(count: int) -> Digest:
    section = ThemeSection(
        theme_id="llama-models",
        theme_name="Llama models",
        stories=tuple(story(i) for i in range(count)),
    )
    return Digest(
        title="Meta AI today",
        day=date(2024, 7, 23),
        since=NOW,
        until=NOW,
        sections=(section,),
        total_stories=count,
    )


ALERT = Alert(subscription_id=7, label="Llama models", theme_id="llama-models", stories=(story(1),))


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord().start()
    yield server
    await server.close()
    assert server.violations == []


@pytest.fixture
async def sender(fake: FakeDiscord) -> AsyncIterator[DiscordSender]:
    bot = DiscordSender(DiscordRest("fake-token", fake.api_url))
    yield bot
    await bot.close()


async def test_a_long_digest_goes_out_as_marked_parts_with_nonces(
    fake: FakeDiscord, sender: DiscordSender
) -> None:
    sent = await sender.send(CHANNEL, digest(40), "digest:1:2024-07-23")
    posts = fake.of("POST", f"/channels/{CHANNEL_ID}/messages")
    assert len(posts) == len(render(digest(40))) >= 3
    assert all(p.body["enforce_nonce"] is True for p in posts)
    assert len({p.body["nonce"] for p in posts}) == len(posts)
    assert all(len(p.body["nonce"]) <= 25 for p in posts)
    parts = [markers_in(p.body)[0][1:] for p in posts]
    assert parts == [(n, len(posts)) for n in range(1, len(posts) + 1)]
    stored = fake.channels[CHANNEL_ID]
    assert sent.message_id == f"{CHANNEL_ID}:{stored[0]['id']}"


async def test_a_retry_is_deduplicated_and_found_after_a_crash(
    fake: FakeDiscord, sender: DiscordSender
) -> None:
    first = await sender.send(CHANNEL, ALERT, "alert:7:42")
    again = await sender.send(CHANNEL, ALERT, "alert:7:42")
    assert again == first
    assert len(fake.channels[CHANNEL_ID]) == 1
    assert await sender.find_sent(CHANNEL, "alert:7:42") == first.message_id
    assert await sender.find_sent(CHANNEL, "alert:7:43") is None
    history = fake.of("GET", f"/channels/{CHANNEL_ID}/messages")
    assert history[-1].query == {"limit": "50"}


async def test_find_sent_wants_every_part(fake: FakeDiscord, sender: DiscordSender) -> None:
    key = "digest:1:2024-07-24"
    parts = len(render(digest(40)))
    posted = fake._post_message
    calls = 0

    def second_part_unclear(channel: str, body: dict[str, Any]) -> web.Response:
        nonlocal calls
        calls += 1
        return failure_response(Failure(500)) if calls == 2 else posted(channel, body)

    fake._post_message = second_part_unclear  # type: ignore[method-assign]
    with pytest.raises(UnclearSend):
        await sender.send(CHANNEL, digest(40), key)
    assert len(fake.channels[CHANNEL_ID]) == 1
    assert await sender.find_sent(CHANNEL, key) is None  # incomplete: the outbox sends again

    fake._post_message = posted  # type: ignore[method-assign]
    sent = await sender.send(CHANNEL, digest(40), key)
    assert len(fake.channels[CHANNEL_ID]) == parts  # the nonce kept part 1 from posting twice
    assert await sender.find_sent(CHANNEL, key) == sent.message_id


async def test_direct_messages_open_a_dm_channel(fake: FakeDiscord, sender: DiscordSender) -> None:
    sent = await sender.send(USER, ALERT, "alert:7:1")
    opened = fake.of("POST", "/users/@me/channels")
    assert [c.body for c in opened] == [{"recipient_id": USER.ref}]
    dm_channel = sent.message_id.split(":")[0]
    assert fake.channels[dm_channel][0]["embeds"][0]["title"].startswith("New coverage")
    await sender.send(USER, ALERT, "alert:7:2")
    assert len(fake.of("POST", "/users/@me/channels")) == 1  # the DM channel is reused


async def test_closed_dms_fail_permanently_with_a_clear_reason(
    fake: FakeDiscord, sender: DiscordSender
) -> None:
    fake.fail("POST", "/channels/", Failure(403, 50007, "Cannot send messages to this user"))
    with pytest.raises(PermanentSendError) as caught:
        await sender.send(USER, ALERT, "alert:7:3")
    assert "does not accept direct messages" in caught.value.reason
    assert USER.ref in sender.dms_closed
    await sender.send(USER, ALERT, "alert:7:4")  # DMs opened again: the hint goes away
    assert USER.ref not in sender.dms_closed


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (Failure(429, 20028, "rate limited", retry_after=2.5), TransientSendError),
        (Failure(503), TransientSendError),
        (Failure(502), TransientSendError),
        (Failure(500), UnclearSend),
        (Failure(404, 10003, "Unknown Channel"), PermanentSendError),
        (Failure(403, 50013, "Missing Permissions"), PermanentSendError),
        (Failure(400, 50035, "Invalid Form Body"), PermanentSendError),
    ],
)
async def test_failures_map_to_what_the_outbox_should_do(
    fake: FakeDiscord, sender: DiscordSender, failure: Failure, expected: type[Exception]
) -> None:
    fake.fail("POST", f"/channels/{CHANNEL_ID}/messages", failure)
    with pytest.raises(expected) as caught:
        await sender.send(CHANNEL, ALERT, "alert:7:9")
    if failure.status == 429:
        assert isinstance(caught.value, TransientSendError)
        assert caught.value.retry_after == 2.5


async def test_no_connection_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = DiscordSender(DiscordRest("fake-token", f"http://127.0.0.1:{port}/api/v10"))
    try:
        with pytest.raises(TransientSendError):
            await sender.send(CHANNEL, ALERT, "alert:7:10")
    finally:
        await sender.close()

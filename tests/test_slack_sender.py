"""The Slack Sender against the loopback fake Web API: rate limits, failures, idempotency."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest

from adapters.slack_app.sender import SlackSender
from bot.delivery import Destination, PermanentSendError, TransientSendError
from bot.messages import Digest, Notice, Story, ThemeSection
from tests.slack_fake_api import Failure, FakeSlack

NOW = datetime(2024, 7, 23, 9, 0, tzinfo=UTC)
CHANNEL = Destination("slack", "T1", "C_NEWS")
NOTE = Notice(level="info", text="Llama 3.1 405B is out")


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.close()
    assert server.violations == []


def sender_for(fake: FakeSlack, pace: float = 0.0) -> SlackSender:
    async def tokens(workspace: str) -> str | None:
        return "xoxb-one" if workspace == "T1" else None

    return SlackSender(tokens, fake.api_url, pace=pace)


def long_digest(count: int = 60) -> Digest:
    stories = tuple(
        Story(
            cluster_id=i,
            title=f"Story {i}",
            url=f"https://n.example/{i}",
            source="N",
            published=NOW,
            summary="s",
        )
        for i in range(count)
    )
    return Digest(
        title="Daily",
        day=date(2024, 7, 23),
        since=NOW,
        until=NOW,
        sections=(ThemeSection(theme_id="compute", theme_name="Compute", stories=stories),),
        total_stories=count,
    )


async def test_a_429_is_waited_out_and_the_message_arrives_exactly_once(fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", Failure(status=429, error="ratelimited", retry_after=0))
    sent = await sender_for(fake).send(CHANNEL, NOTE, "k-429")
    (post,) = fake.of("chat.postMessage")
    assert len(fake.of("chat.postMessage!failed")) == 1
    assert sent.message_id == f"C_NEWS:{fake.history['C_NEWS'][0]['ts']}"
    assert post.token == "xoxb-one"
    assert "Llama 3.1 405B" in post.args["text"]


async def test_a_lasting_rate_limit_becomes_transient_with_retry_after(fake: FakeSlack) -> None:
    fake.fail(
        "chat.postMessage",
        Failure(status=429, error="ratelimited", retry_after=0),
        Failure(status=429, error="ratelimited", retry_after=42),
    )
    with pytest.raises(TransientSendError) as caught:
        await sender_for(fake).send(CHANNEL, NOTE, "k")
    assert caught.value.retry_after == 42
    assert fake.of("chat.postMessage") == []


@pytest.mark.parametrize(
    "error",
    [
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "account_inactive",
        "invalid_auth",
        "token_revoked",
    ],
)
async def test_permanent_errors_are_not_retried(fake: FakeSlack, error: str) -> None:
    fake.fail("chat.postMessage", Failure(error=error))
    with pytest.raises(PermanentSendError) as caught:
        await sender_for(fake).send(CHANNEL, NOTE, "k")
    assert caught.value.reason == error
    assert len(fake.calls) == 1


async def test_server_errors_are_transient(fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", Failure(status=503, error="x"), Failure(status=503, error="x"))
    with pytest.raises(TransientSendError):
        await sender_for(fake).send(CHANNEL, NOTE, "k")
    assert len(fake.of("chat.postMessage!failed")) == 2


async def test_unknown_workspace_is_permanent(fake: FakeSlack) -> None:
    with pytest.raises(PermanentSendError):
        await sender_for(fake).send(Destination("slack", "T_GONE", "C1"), NOTE, "k")
    assert fake.calls == []


async def test_find_sent_reads_the_key_back_from_message_metadata(fake: FakeSlack) -> None:
    sender = sender_for(fake)
    sent = await sender.send(CHANNEL, NOTE, "digest:C_NEWS:2024-07-23")
    assert await sender.find_sent(CHANNEL, "digest:C_NEWS:2024-07-23") == sent.message_id
    assert await sender.find_sent(CHANNEL, "digest:C_NEWS:2024-07-24") is None
    # the fake, like Slack, returns metadata only when asked for it
    assert all(
        c.args["include_all_metadata"] in (True, "true", "1")
        for c in fake.of("conversations.history")
    )


async def test_direct_messages_are_found_through_the_dm_channel(fake: FakeSlack) -> None:
    sender = sender_for(fake)
    dm = Destination("slack", "T1", "U_ALICE", direct=True)
    sent = await sender.send(dm, NOTE, "alert:7:42")
    assert await sender.find_sent(dm, "alert:7:42") == sent.message_id
    assert fake.of("conversations.open")[0].args["users"] == "U_ALICE"


async def test_a_long_digest_resumes_its_thread_without_posting_the_parent_twice(
    fake: FakeSlack,
) -> None:
    sender = sender_for(fake)
    digest = long_digest()
    # the parent goes through; the first thread reply is refused twice, so the retry
    # handler gives up and the outbox would try again later
    original = fake._post
    posted = 0

    def flaky(args: dict[str, object]) -> dict[str, object]:
        nonlocal posted
        posted += 1
        if posted == 2:
            fake.fail(
                "chat.postMessage",
                Failure(status=429, error="ratelimited", retry_after=0),
                Failure(status=429, error="ratelimited", retry_after=0),
            )
        return original(args)

    fake._post = flaky  # type: ignore[method-assign]
    with pytest.raises(TransientSendError):
        await sender.send(CHANNEL, digest, "digest:big")
    sent = await sender.send(CHANNEL, digest, "digest:big")
    posts = fake.of("chat.postMessage")
    parents = [p for p in posts if "thread_ts" not in p.args]
    assert len(parents) == 1
    parent_ts = sent.message_id.split(":")[1]
    replies = [p for p in posts if p.args.get("thread_ts") == parent_ts]
    assert len(replies) == len(posts) - 1 >= 2
    texts = [p.args["text"] for p in replies]
    assert texts == sorted(set(texts), key=texts.index)  # each part once, in order


async def test_posts_to_one_channel_are_paced(fake: FakeSlack) -> None:
    sender = sender_for(fake, pace=0.2)
    started = time.monotonic()
    for key in ("a", "b", "c"):
        await sender.send(CHANNEL, NOTE, key)
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    await sender.send(Destination("slack", "T1", "C_OTHER"), NOTE, "d")
    assert time.monotonic() - started < 0.2

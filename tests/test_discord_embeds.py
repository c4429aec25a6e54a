"""The embed renderer holds Discord's limits and defuses feed text, whatever it is given."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.discord_bot import preview
from adapters.discord_bot.embeds import markers_in, render, with_marker
from adapters.discord_bot.escape import link, md
from bot.messages import (
    Alert,
    ClaimAnswer,
    ClaimMatch,
    ClaimSource,
    Coverage,
    Digest,
    FeedInfo,
    FeedList,
    Message,
    Notice,
    SourceRef,
    Story,
    SubscriptionInfo,
    SubscriptionList,
    ThemeInfo,
    ThemeList,
    ThemeSection,
)
from tests.discord_fake_api import message_problems

NOW = datetime(2024, 7, 23, 9, 0, tzinfo=UTC)
SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
HOSTILE = [
    "@everyone",
    "@here",
    "<@&123456789012345678>",
    "<@123456789012345678>",
    "[bank.com](http://evil.example)",
    "[a](b) [c](d)",
    "**",
    "`",
    "\\",
    "||",
    "# ",
    "-# ",
    "> ",
    "](",
    "\n",
    "😀",
    "\u202e",
]
hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12)), max_size=12).map(
    "".join
)
# Long text from a short draw repeated: big inputs without exhausting hypothesis' entropy.
long_text = st.builds(lambda text, times: text * times, hostile_text, st.integers(1, 600))
urls = st.one_of(
    st.none(),
    st.just("https://news.example/a_(b)"),
    st.just("javascript:alert(1)"),
    st.text(max_size=60),
)


@st.composite
def stories(draw: st.DrawFn) -> Story:
    return Story(
        cluster_id=draw(st.integers(0, 10**6)),
        title=draw(long_text),
        url=draw(urls),
        source=draw(hostile_text),
        published=NOW,
        summary=draw(long_text),
        themes=tuple(draw(st.lists(st.sampled_from(["llama-models", "capex", "x"]), max_size=3))),
        more_sources=(SourceRef(name=draw(hostile_text), url=draw(urls)),),
    )


@st.composite
def digests(draw: st.DrawFn) -> Digest:
    sections = tuple(
        ThemeSection(
            theme_id=draw(st.sampled_from(["llama-models", "capex", "Bad Id!"])),
            theme_name=draw(hostile_text),
            stories=tuple(draw(st.lists(stories(), max_size=12))),
        )
        for _ in range(draw(st.integers(0, 3)))
    )
    return Digest(
        title=draw(hostile_text),
        day=date(2024, 7, 23),
        since=NOW,
        until=NOW,
        sections=sections,
        total_stories=sum(len(s.stories) for s in sections),
        left_out=draw(st.integers(0, 3)),
    )


@st.composite
def other_messages(draw: st.DrawFn) -> Message:
    text = draw(long_text)
    match = ClaimMatch(
        id="c1",
        statement=text,
        speaker=draw(hostile_text),
        claimed_on=date(2024, 1, 18),
        source=ClaimSource(publication=draw(hostile_text), title=text, url=draw(urls)),
        themes=("compute",),
        status="reported",
        score=1.0,
        coverage=(Coverage(title=text, url="https://c.example", published="2024"),),
        status_note=draw(hostile_text),
    )
    feed = FeedInfo(url=text, title=text, state="failing", last_success=NOW, last_error=text)
    sub = SubscriptionInfo(id=1, kind="phrase", value=text, label=text, delivery="dm", dest_ref="u")
    options: list[Message] = [
        Alert(subscription_id=3, label=text, stories=tuple(draw(st.lists(stories(), max_size=8)))),
        ClaimAnswer(query=text, matches=(match,) * draw(st.integers(0, 5))),
        Notice(level="error", text=text, suggestions=(text,)),
        ThemeList(themes=(ThemeInfo(id="capex", name=text, description=text),) * 30),
        FeedList(feeds=(feed,) * draw(st.integers(0, 60))),
        SubscriptionList(subscriptions=(sub,) * draw(st.integers(0, 30))),
    ]
    return draw(st.sampled_from(options))


def all_text(payload: dict[str, Any]) -> str:
    parts = [payload.get("content") or ""]
    for embed in payload.get("embeds") or []:
        parts += [embed.get("title", ""), embed.get("description", "")]
        parts += [f"{f['name']}\n{f['value']}" for f in embed.get("fields", [])]
        parts.append((embed.get("footer") or {}).get("text", ""))
    return "\n".join(parts)


def assert_safe(payloads: list[dict[str, Any]]) -> None:
    assert payloads
    for n, payload in enumerate(payloads, start=1):
        marked = with_marker(payload, "some-key", n, len(payloads))
        assert message_problems(marked) == []
        assert markers_in(marked)[0][1:] == (n, len(payloads))
        shown = all_text(payload)
        assert not re.search(r"@(everyone|here)\b", shown)
        assert not re.search(r"<@[!&]?\d{17,20}>", shown)
        labels = re.findall(r"(?<!\\)\[([^\[\]]*)\]\(", shown)
        assert set(labels) <= {"read", "source"}, labels  # only the bot's own links


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW_OK)
@given(digests())
def test_any_digest_fits_discord_and_pings_no_one(digest: Digest) -> None:
    payloads = render(digest)
    assert_safe(payloads)
    assert len(payloads) <= 10


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW_OK)
@given(other_messages())
def test_any_other_message_fits_discord_and_pings_no_one(message: Message) -> None:
    assert_safe(render(message))


def test_a_long_digest_splits_and_counts_what_it_leaves_out() -> None:
    story = Story(
        cluster_id=1,
        title="Meta story",
        url="https://news.example/1",
        source="Example",
        published=NOW,
        summary="Meta said a lot. " * 100,
    )
    section = ThemeSection(theme_id="capex", theme_name="Spending", stories=(story,) * 400)
    digest = Digest(
        title="Big day",
        day=date(2024, 7, 23),
        since=NOW,
        until=NOW,
        sections=(section,),
        total_stories=400,
    )
    payloads = render(digest)
    assert len(payloads) == 10
    shown = sum(len(e.get("fields", [])) for p in payloads for e in p["embeds"])
    note = payloads[-1]["embeds"][-1]["description"]
    assert note == f"{400 - shown} more stories not shown."
    assert_safe(payloads)


def test_masked_links_and_mentions_in_feed_text_are_inert() -> None:
    shown = md("@everyone see [bank.com](http://evil.example) <@&123456789012345678>", 500)
    assert "](" not in shown
    assert "@everyone" not in shown and "<@&1" not in shown
    assert "bank.com" in shown and "evil.example" in shown  # still readable


def test_links_need_a_clean_http_url() -> None:
    assert link("HTTPS://a.example/p", "read") == "[read](https://a.example/p)"
    assert link("https://a.example/\u2028p", "read") == ""  # a line separator: not a link
    assert link("javascript:alert(1)", "read") == ""


def test_preview_is_what_would_be_sent() -> None:
    notice = Notice(level="ok", text="Done")
    assert preview(notice, destination="42") == [
        {"channel_id": "42", "content": "✅ Done", "allowed_mentions": {"parse": []}}
    ]

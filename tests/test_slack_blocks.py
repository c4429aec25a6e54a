"""Block Kit rendering: limits on any input, and feed text that can never ping or disguise."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.slack_app.blocks import SUBSCRIBE_ACTION, render
from adapters.slack_app.escape import link, mrkdwn
from bot.messages import (
    Alert,
    ClaimAnswer,
    ClaimMatch,
    ClaimSource,
    Coverage,
    Digest,
    FeedInfo,
    FeedList,
    Help,
    HelpEntry,
    Message,
    Notice,
    ScheduleInfo,
    SourceRef,
    Story,
    SubscriptionInfo,
    SubscriptionList,
    ThemeInfo,
    ThemeList,
    ThemeSection,
)
from tests.slack_fake_api import block_kit_problems, mrkdwn_problems

NOW = datetime(2024, 7, 23, 9, 0, tzinfo=UTC)
HOSTILE = [
    "<!channel> Llama wins",
    "<!here|here> read now",
    "<@U123> look",
    "<http://evil.example|bank.com>",
    "Tom & Jerry <b>bold</b> a|b > c",
    "x" * 20_000,
    "&lt;!channel&gt; pre-escaped",
]


def story(n: int, title: str, url: str | None = "https://news.example/a?b=1&c=2") -> Story:
    return Story(
        cluster_id=n,
        title=title,
        url=url,
        source=HOSTILE[n % len(HOSTILE)],
        published=NOW,
        summary=HOSTILE[(n + 1) % len(HOSTILE)] * 2,
        themes=("open-source", "<!channel>"),
        more_sources=(SourceRef(name="<@U1>", url="javascript:alert(1)"),),
    )


def hostile_digest(count: int = 500) -> Digest:
    themes = ["open-source", "compute", "llama-models", "agi", "capex"]
    sections = tuple(
        ThemeSection(
            theme_id=theme,
            theme_name=f"<!channel> {theme}",
            stories=tuple(
                story(i, HOSTILE[i % len(HOSTILE)]) for i in range(count) if i % 5 == t_index
            ),
        )
        for t_index, theme in enumerate(themes)
    )
    return Digest(
        title="Meta AI <!here> digest",
        day=date(2024, 7, 23),
        since=NOW,
        until=NOW,
        sections=sections,
        total_stories=count,
    )


def assert_clean(payloads: list[dict[str, object]]) -> None:
    assert payloads, "no payloads"
    for payload in payloads:
        assert block_kit_problems(payload) == []
    # plain_text (headers, buttons) is never parsed for mentions; mrkdwn is
    marked = json.dumps(list(mrkdwn_texts(payloads)))
    for ping in ("<!channel>", "<!here", "<@U", "<http://evil", "javascript:"):
        assert ping not in marked


def mrkdwn_texts(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" or "blocks" in node:
            yield str(node.get("text"))
        for value in node.values():
            yield from mrkdwn_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from mrkdwn_texts(item)


def shown_stories(payloads: list[dict[str, object]]) -> int:
    text = json.dumps(payloads)
    shown = text.count('"type": "section", "text": {"type": "mrkdwn", "text": "*')
    more = re.search(r"(\d+) more stor", text)
    return shown + (int(more.group(1)) if more else 0)


def test_hostile_digest_of_500_stories_splits_into_a_thread_within_limits() -> None:
    payloads = render(hostile_digest())
    assert_clean(payloads)
    assert 2 <= len(payloads) <= 20
    assert payloads[0]["blocks"][0]["type"] == "header"
    assert all(p["blocks"][0]["type"] != "header" for p in payloads[1:])
    # every story is either shown or counted in the "not shown" note, theme lines excluded
    assert shown_stories(payloads) - 5 == 500
    assert "&lt;!channel&gt;" in json.dumps(payloads)


def test_small_digest_is_one_message_with_subscribe_buttons() -> None:
    payloads = render(hostile_digest(6))
    assert len(payloads) == 1
    buttons = [
        b["accessory"] for b in payloads[0]["blocks"] if b["type"] == "section" and "accessory" in b
    ]
    assert {b["value"] for b in buttons} == {
        "open-source",
        "compute",
        "llama-models",
        "agi",
        "capex",
    }
    assert {b["action_id"] for b in buttons} == {SUBSCRIBE_ACTION}
    assert_clean(payloads)


def test_empty_digest_says_so() -> None:
    digest = Digest(
        title="Daily", day=date(2024, 1, 1), since=NOW, until=NOW, sections=(), total_stories=0
    )
    payloads = render(digest)
    assert "No new Meta AI coverage" in json.dumps(payloads)
    assert_clean(payloads)


def every_kind() -> list[Message]:
    long = "<!channel> " + "y" * 9000
    match = ClaimMatch(
        id="c1",
        statement=long,
        speaker="<@U1>",
        claimed_on=date(2024, 1, 18),
        source=ClaimSource(publication=long, title=long, url="https://a.example/|>x"),
        themes=("compute",),
        status="reported",
        score=1.0,
        coverage=tuple(
            Coverage(
                title=long, url="https://c.example/" + "p" * 1400, published="2024", source=long
            )
            for _ in range(5)
        ),
        status_note=long,
    )
    return [
        hostile_digest(40),
        Alert(subscription_id=7, label=long, theme_id="compute", stories=(story(1, long),) * 60),
        ClaimAnswer(query=long, matches=(match,) * 30),
        ClaimAnswer(query="nothing", matches=()),
        ThemeList(
            themes=tuple(ThemeInfo(id=f"t{i}", name=long, description=long) for i in range(70))
        ),
        SubscriptionList(
            subscriptions=tuple(
                SubscriptionInfo(
                    id=i, kind="phrase", value=long, label=long, delivery="dm", dest_ref="U1"
                )
                for i in range(70)
            )
        ),
        FeedList(
            feeds=tuple(
                FeedInfo(
                    url="https://f.example/" + "q" * 3000,
                    title=long,
                    state="failing",
                    last_success=NOW,
                    last_error=long,
                )
                for _ in range(70)
            )
        ),
        ScheduleInfo(enabled=True, time="09:00", timezone="<!here>", days="mon-fri", next_run=NOW),
        ScheduleInfo(enabled=False),
        Help(entries=tuple(HelpEntry(usage=long, description=long) for _ in range(40)), intro=long),
        Notice(level="error", text=long, suggestions=(long,) * 30),
    ]


def test_every_message_kind_renders_within_limits() -> None:
    for message in every_kind():
        assert_clean(render(message))


def test_alert_offers_unsubscribe_and_other_themes() -> None:
    alert = Alert(subscription_id=42, label="Compute", theme_id="compute", stories=(story(1, "t"),))
    blocks = render(alert)[0]["blocks"]
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert ("briefbot_unsubscribe", "42") in {(b["action_id"], b["value"]) for b in buttons}
    assert ("briefbot_subscribe", "open-source") in {(b["action_id"], b["value"]) for b in buttons}


def test_links_only_for_http_urls_and_labels_cannot_break_out() -> None:
    assert link("javascript:alert(1)", "x") == "x"
    assert link("ftp://a.example/", "x") == "x"
    made = link("https://a.example/p|q>r<s t", "bank.com|evil>")
    assert made.startswith("<https://a.example/p%7Cq%3Er%3Cs%20t|")
    assert made.count("|") == 1 and made.count(">") == 1 and made.endswith(">")
    assert mrkdwn_problems(made) == []
    # Found by hypothesis: an upper-case scheme is written as Slack links it, and a URL
    # holding a control or separator character (here NEL) is no link at all.
    assert link("HTTP://a.example/", "x") == "<http://a.example/|x>"
    assert link("https://a.example/\x85x", "x") == "x"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_escaped_text_never_carries_control_sequences(text: str) -> None:
    escaped = mrkdwn(text)
    assert "<" not in escaped and ">" not in escaped
    assert escaped.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0


@settings(max_examples=60, deadline=None)
@given(
    title=st.text(max_size=4000),
    summary=st.text(max_size=4000),
    source=st.text(max_size=300),
    url=st.one_of(
        st.none(), st.text(max_size=200), st.text(max_size=2500).map("https://x.example/".__add__)
    ),
    themes=st.lists(st.text(max_size=80), max_size=12),
    count=st.integers(min_value=0, max_value=120),
)
def test_any_story_renders_within_limits(
    title: str, summary: str, source: str, url: str | None, themes: list[str], count: int
) -> None:
    one = Story(
        cluster_id=1,
        title=title,
        url=url,
        source=source,
        published=NOW,
        summary=summary,
        themes=tuple(themes),
    )
    digest = Digest(
        title=title,
        day=date(2024, 1, 1),
        since=NOW,
        until=NOW,
        total_stories=count,
        sections=(ThemeSection(theme_id=source, theme_name=title, stories=(one,) * count),),
    )
    for message in (digest, Alert(subscription_id=1, label=title, stories=(one,) * min(count, 5))):
        for payload in render(message):
            assert block_kit_problems(payload) == []

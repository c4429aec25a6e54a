"""Digests and alerts on real storage: watermarks, clusters, caps, batching, no floods."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.alerts import flush_alerts, match_new_items
from bot.digest import EMPTY_LINE, build_digest, queue_digest
from bot.messages import Alert, Digest, load_message
from bot.pack import Pack, load_pack
from bot.textrender import render_text
from storage import feeds as feed_repo
from storage.db import Database
from storage.items import NewItem, ThemeTag, store_items
from storage.models import Channel, OutboxMessage, Subscription

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SNAPSHOT = Path(__file__).parent / "snapshots" / "digest.txt"


@pytest.fixture(scope="module")
def pack() -> Pack:
    return load_pack()


@pytest.fixture
def feed_id(db: Database) -> int:
    with db.session() as s:
        return feed_repo.add_feed(s, "https://desk.example/feed").id


def item(n: int, *, at: datetime, story: str | None = None, **over: object) -> NewItem:
    fields: dict[str, object] = dict(
        guid=f"g{n}",
        url=f"https://outlet{n}.example/{n}",
        canonical_url=f"https://outlet{n}.example/{n}",
        source=f"Outlet {n}",
        title=f"Story number {n} about Llama",
        title_key=f"story {n}",
        author=None,
        published_at=at,
        published_was_missing=False,
        fetched_at=at,
        text=f"Meta shipped thing {n}.",
        summary=f"Meta shipped thing {n}.",
        content_hash=f"h{n}",
        signature=story,
        band_keys=(story,) if story else (),
        relevance=0.8,
        relevant=True,
        themes=(ThemeTag("llama-models", 0.9, ("Llama",)),),
    )
    fields.update(over)
    return NewItem(**fields)  # type: ignore[arg-type]


def same(a: str, b: str) -> bool:
    return a == b


def store(db: Database, feed_id: int, *items: NewItem) -> None:
    with db.session() as s:
        report = store_items(s, feed_id, items, same)
        match_new_items(s, report)


def channel(db: Database, **over: object) -> int:
    with db.session() as s:
        row = Channel(platform="console", workspace="w", ref="general", digest_enabled=True)
        for key, value in over.items():
            setattr(row, key, value)
        s.add(row)
        s.flush()
        return row.id


def outbox(db: Database, kind: str) -> list[OutboxMessage]:
    with db.session() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)))


def test_syndicated_copies_are_one_entry_with_more_sources(
    db: Database, feed_id: int, pack: Pack
) -> None:
    store(
        db,
        feed_id,
        item(1, at=T0, story="s1", relevance=0.9),
        item(2, at=T0, story="s1"),
        item(3, at=T0, story="s1", source="Outlet 1"),  # same outlet twice: counted once
        item(4, at=T0, story="s2", themes=(ThemeTag("capex", 0.7, ("capex",)),)),
        item(5, at=T0, relevant=False),
    )
    with db.session() as s:
        digest = build_digest(s, pack, since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1))
    assert digest.total_stories == 2
    first = digest.sections[0].stories[0]
    assert first.title == "Story number 1 about Llama"
    assert [m.name for m in first.more_sources] == ["Outlet 2"]
    assert {s.theme_id for s in digest.sections} == {"llama-models", "capex"}


def test_watermark_means_nothing_skipped_or_repeated(
    db: Database, feed_id: int, pack: Pack
) -> None:
    cid = channel(db)
    store(db, feed_id, item(1, at=T0, story="a"))
    day1 = queue_digest(db, pack, cid, T0 + timedelta(hours=1))
    assert day1 and day1.queued and day1.stories == 1
    again = queue_digest(db, pack, cid, T0 + timedelta(hours=2))
    assert again and not again.queued, "one scheduled digest per channel per local day"
    # A late copy of yesterday's story and one new story arrive.
    store(db, feed_id, item(2, at=T0 + timedelta(hours=20), story="a"))
    store(db, feed_id, item(3, at=T0 + timedelta(hours=21), story="b"))
    day2 = queue_digest(db, pack, cid, T0 + timedelta(days=1, hours=1))
    assert day2 and day2.queued and day2.stories == 1, "the late copy is not a new story"
    digests = [load_message(m.payload) for m in outbox(db, "digest")]
    assert [d.total_stories for d in digests if isinstance(d, Digest)] == [1, 1]


def test_first_digest_covers_at_most_24_hours(db: Database, feed_id: int, pack: Pack) -> None:
    cid = channel(db)
    store(db, feed_id, item(1, at=T0 - timedelta(days=3), story="old"))
    store(db, feed_id, item(2, at=T0, story="new"))
    result = queue_digest(db, pack, cid, T0 + timedelta(hours=1))
    assert result and result.stories == 1


def test_empty_day_line_or_nothing(db: Database, feed_id: int, pack: Pack) -> None:
    line = channel(db)
    quiet = channel(db, ref="quiet", empty_digest="skip")
    queue_digest(db, pack, line, T0)
    skipped = queue_digest(db, pack, quiet, T0)
    assert skipped and not skipped.queued
    [only] = outbox(db, "digest")
    message = load_message(only.payload)
    assert isinstance(message, Digest) and message.empty_note == EMPTY_LINE


def test_digest_is_capped_with_a_count_of_the_rest(db: Database, feed_id: int, pack: Pack) -> None:
    themes = ["llama-models", "capex", "compute", "agi", "open-source", "talent-org"]
    store(
        db,
        feed_id,
        *(
            item(n, at=T0, story=f"s{n}", themes=(ThemeTag(themes[n % 6], 0.8, ("x",)),))
            for n in range(60)
        ),
    )
    with db.session() as s:
        digest = build_digest(s, pack, since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1))
    shown = sum(len(sec.stories) for sec in digest.sections)
    assert shown == 30 and digest.left_out == 30 and digest.total_stories == 60
    assert "…and 30 more stories not shown." in render_text(digest)


def test_rendered_digest_snapshot(db: Database, feed_id: int, pack: Pack) -> None:
    store(
        db,
        feed_id,
        item(1, at=T0, story="s1", summary="Meta released Llama 5 in three sizes."),
        item(2, at=T0 + timedelta(minutes=5), story="s1"),
        item(
            3,
            at=T0 + timedelta(minutes=9),
            story="s3",
            title="Meta raises 2027 capex guidance",
            summary="Spending will reach $150-170B, the CFO said.",
            themes=(ThemeTag("capex", 0.9, ("capex",)),),
        ),
    )
    with db.session() as s:
        digest = build_digest(s, pack, since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1))
    assert render_text(digest) == SNAPSHOT.read_text(encoding="utf-8")


@pytest.fixture
def subs(db: Database) -> Iterator[dict[str, int]]:
    with db.session() as s:
        rows = {
            "theme": Subscription(
                platform="console", user_ref="u1", kind="theme", value="capex",
                delivery="dm", dest_ref="u1",
            ),
            "phrase": Subscription(
                platform="console", user_ref="u2", kind="phrase", value="Llama 5",
                delivery="here", dest_ref="general",
            ),
        }  # fmt: skip
        s.add_all(rows.values())
        s.flush()
        ids = {k: v.id for k, v in rows.items()}
    yield ids


def test_alerts_batch_never_repeat_and_skip_backlog(
    db: Database, feed_id: int, pack: Pack, subs: dict[str, int]
) -> None:
    capex = (ThemeTag("capex", 0.9, ("capex",)),)
    store(db, feed_id, item(1, at=T0, story="c1", themes=capex, alertable=False))  # backlog
    store(db, feed_id, item(2, at=T0, story="c2", themes=capex))
    store(db, feed_id, item(3, at=T0, story="c2", themes=capex))  # a copy: same story
    store(db, feed_id, item(4, at=T0, story="l5", title="Hands-on with LLAMA 5 Titan"))
    assert flush_alerts(db, pack, T0) == 2
    store(db, feed_id, item(5, at=T0, story="c5", themes=capex))
    assert flush_alerts(db, pack, T0 + timedelta(minutes=5)) == 0, "inside the window"
    assert flush_alerts(db, pack, T0 + timedelta(minutes=16)) == 1
    assert flush_alerts(db, pack, T0 + timedelta(hours=2)) == 0, "nothing new: nothing sent"
    alerts = [load_message(m.payload) for m in outbox(db, "alert")]
    assert all(isinstance(a, Alert) for a in alerts)
    by_sub: dict[int, list[int]] = {}
    for a in alerts:
        assert isinstance(a, Alert)
        by_sub.setdefault(a.subscription_id, []).extend(s.cluster_id for s in a.stories)
    theme_clusters = by_sub[subs["theme"]]
    assert len(theme_clusters) == len(set(theme_clusters)) == 2, "c2 once, c5 once, no backlog"
    assert len(by_sub[subs["phrase"]]) == 1
    dm = [m for m in outbox(db, "alert") if m.dest_ref == "u1"]
    assert dm and all(m.payload.get("_direct") for m in dm)


def test_paused_feeds_are_reported_to_digest_channels_once(db: Database, pack: Pack) -> None:
    channel(db)
    channel(db, ref="no-digest", digest_enabled=False)
    with db.session() as s:
        feed = feed_repo.add_feed(s, "https://broken.example/feed")
        feed.enabled = False
        feed.paused_reason = "paused after 10 consecutive failures: HTTP 500"
        feed.last_error_at = T0
    flush_alerts(db, pack, T0)
    flush_alerts(db, pack, T0 + timedelta(hours=1))
    [notice] = outbox(db, "notice")
    assert notice.dest_ref == "general"
    assert "broken.example" in notice.payload["text"] and "HTTP 500" in notice.payload["text"]

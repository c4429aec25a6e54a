"""Story clustering on the bundled sample feeds, through the real storage path.

Every sample file is parsed, signed and stored on SQLite with ``store_items``, in file
order, exactly as an ingest would. The outlets reword the big stories (word overlap
between versions is 0.05-0.15), so this checks that each story becomes one cluster and
that no cluster mixes two events: not the Llama 5 release with its follow-ups of the
next days, not one data-center deal with another, not Threads' users with Meta AI's.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import normalise
from bot.cluster import Signature, band_keys, is_same_story, signature
from bot.parse import ParsedEntry, parse_feed_sync
from bot.samples import SAMPLE_NOW, sample_files
from storage import feeds as feed_repo
from storage.db import Database
from storage.items import NewItem, store_items
from storage.models import Item

# One story each, told by several outlets in their own words (title prefixes).
STORIES: dict[str, tuple[str, ...]] = {
    "llama-5-release": (
        "Llama 5 weights are out",  # and its update, under the same guid
        "Meta ships Llama 5 in three sizes",
        "Llama 5 is here: what Meta's open 2T-parameter",
        "Meta's Llama 5 arrives with a 1M-token context",
    ),
    "capex-2027": (
        "Meta lifts 2027 spending outlook",  # the wire story and its exact copy
        "Meta's AI bill keeps growing",
        "Meta's capex raise, in three charts",
    ),
    "ohio-power-deal": (
        "Meta signs 20-year deal for 2.2 gigawatts",  # three exact wire copies
        "Meta turns to gas and solar for Ohio",
    ),
    "meta-ai-users": (
        "Zuckerberg: Meta AI now has 1.5 billion",
        "Meta AI hits 1.5 billion monthly users",
        "Zuckerberg says Meta AI will overtake ChatGPT",
    ),
}
# Reaction and follow-up pieces that may go either way, but only into their own story.
EITHER_WAY: dict[str, str] = {
    "Llama 5 comes to the Meta AI app today": "llama-5-release",
    "Who wins from Meta's $170 billion spending plan": "capex-2027",
    "Ohio regulators to review Meta's gas-backed": "ohio-power-deal",
    "Correction: length of Meta's Ohio power contract": "ohio-power-deal",
    "Meta AI now has 1.5B users. How many": "meta-ai-users",
}
LLAMA_5_FOLLOW_UPS = (
    "llama.cpp adds support",
    "Community fine-tunes of Llama 5",
    "Meta publishes Llama 5 risk report",
    "Is Llama 5 open source?",
    "U.S. senators push export rules",
    "Meta publishes the training recipe",
    "Running Llama 5 Titan yourself",
    "Chinese labs post Llama 5 fine-tunes",
    "EU AI Office asks Meta",
)


def _story_of(title: str) -> str | None:
    for story, prefixes in STORIES.items():
        if title.startswith(prefixes):
            return story
    return None


def _either_way(title: str) -> str | None:
    return next((s for prefix, s in EITHER_WAY.items() if title.startswith(prefix)), None)


def _new_item(entry: ParsedEntry, source: str) -> NewItem:
    text = entry.content_text if len(entry.content_text) > len(entry.summary_text) else ""
    text = text or entry.summary_text
    sig = signature(entry.title, text, published=entry.published)
    return NewItem(
        guid=entry.guid,
        url=entry.link,
        canonical_url=normalise.canonical_url(entry.link) if entry.link else None,
        source=source,
        title=entry.title,
        title_key=normalise.normalise_title(entry.title),
        author=entry.author,
        published_at=entry.published,
        published_was_missing=entry.published_was_missing,
        fetched_at=SAMPLE_NOW,
        text=text,
        summary=text[:200],
        content_hash=normalise.content_hash(entry.title, text),
        signature=sig.dumps(),
        band_keys=band_keys(sig),
        relevant=True,  # only relevant items are grouped into stories
    )


def _same_story(a: str, b: str) -> bool:
    return is_same_story(Signature.loads(a), Signature.loads(b))


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[str]]:
    """Cluster id -> titles of its items, after storing every sample feed."""
    path = tmp_path_factory.mktemp("samples") / "briefbot.db"
    db = Database(f"sqlite:///{path}")
    try:
        for sample in sample_files():
            _store_sample(db, sample)
        with db.session() as session:
            rows = session.execute(select(Item.cluster_id, Item.title)).all()
    finally:
        db.dispose()
    grouped: dict[int, list[str]] = defaultdict(list)
    for cluster_id, title in rows:
        assert cluster_id is not None, title
        grouped[cluster_id].append(title)
    return dict(grouped)


def _store_sample(db: Database, sample: Path) -> None:
    parsed = parse_feed_sync(
        sample.read_bytes(),
        url=f"https://samples.example/{sample.name}",
        content_type=None,
        fetched_at=SAMPLE_NOW,
    )
    with db.session() as session:
        feed_id = feed_repo.add_feed(session, parsed.url).id
        items = [_new_item(entry, parsed.title) for entry in parsed.entries]
        store_items(session, feed_id, items, _same_story)


def _greedy_clusters() -> dict[int, list[str]]:
    """Every sample entry (exact wire copies included, which storage drops by URL) clustered
    in memory the way storage does: candidates from shared keys, then up to five members."""
    entries = {
        entry.guid or entry.title: (entry, sample.stem)
        for sample in sample_files()
        for entry in parse_feed_sync(
            sample.read_bytes(), url=sample.as_uri(), content_type=None, fetched_at=SAMPLE_NOW
        ).entries
    }
    members: dict[int, list[Signature]] = defaultdict(list)
    titles: dict[int, list[str]] = defaultdict(list)
    index: dict[str, set[int]] = defaultdict(set)
    for entry, outlet in sorted(entries.values(), key=lambda pair: pair[0].published):
        item = _new_item(entry, "")
        assert item.signature is not None
        sig = Signature.loads(item.signature)
        candidates = sorted(set().union(*(index[key] for key in item.band_keys)))
        home = next(
            (c for c in candidates if any(is_same_story(m, sig) for m in members[c][:5])),
            len(members),
        )
        members[home].append(sig)
        titles[home].append(f"{entry.title} [{outlet}]")  # exact copies stay distinct
        for key in item.band_keys:
            index[key].add(home)
    return dict(titles)


def _pairs(clusters: dict[int, list[str]]) -> tuple[set[frozenset[str]], set[frozenset[str]]]:
    """(pairs clustered together, pairs that truly are one story), over distinct titles."""
    together = {
        frozenset(pair)
        for titles in clusters.values()
        for pair in itertools.combinations(sorted(set(titles)), 2)
    }
    titles = sorted({t for ts in clusters.values() for t in ts})
    truth = {
        frozenset(pair)
        for pair in itertools.combinations(titles, 2)
        if _story_of(pair[0]) is not None and _story_of(pair[0]) == _story_of(pair[1])
    }
    return together, truth


def _tolerated(pair: frozenset[str]) -> bool:
    first, second = sorted(pair)
    stories = {_story_of(first) or _either_way(first), _story_of(second) or _either_way(second)}
    either = _either_way(first) or _either_way(second)
    return either is not None and len(stories) == 1


def test_each_story_is_one_cluster(clusters: dict[int, list[str]]) -> None:
    for story, prefixes in STORIES.items():
        homes = {
            cluster_id
            for cluster_id, titles in clusters.items()
            for title in titles
            if title.startswith(prefixes)
        }
        found = [t for ts in clusters.values() for t in ts if t.startswith(prefixes)]
        assert len(found) >= len(prefixes), (story, found)
        assert len(homes) == 1, (story, [clusters[c] for c in homes])


def test_no_cluster_mixes_two_events(clusters: dict[int, list[str]]) -> None:
    together, truth = _pairs(clusters)
    wrong = [sorted(pair) for pair in together - truth if not _tolerated(pair)]
    assert not wrong


def test_llama_5_follow_ups_stay_out_of_the_release(clusters: dict[int, list[str]]) -> None:
    release = next(
        titles
        for titles in clusters.values()
        if any(t.startswith(STORIES["llama-5-release"]) for t in titles)
    )
    assert not [t for t in release if t.startswith(LLAMA_5_FOLLOW_UPS)]
    follow_ups = [
        ts for ts in clusters.values() if any(t.startswith(LLAMA_5_FOLLOW_UPS) for t in ts)
    ]
    assert all(len(ts) == 1 for ts in follow_ups), follow_ups


def test_pairwise_precision_and_recall(clusters: dict[int, list[str]]) -> None:
    _assert_perfect(clusters, "stored")


def test_every_entry_including_exact_copies_clusters_in_memory() -> None:
    clusters = _greedy_clusters()
    assert sum(map(len, clusters.values())) == 81, "82 entries, one repeated guid"
    ohio = [ts for ts in clusters.values() if any(t.startswith("Meta signs 20-year") for t in ts)]
    assert len(ohio) == 1 and len(ohio[0]) >= 4, ohio
    _assert_perfect(clusters, "in memory")
    test_each_story_is_one_cluster(clusters)
    test_llama_5_follow_ups_stay_out_of_the_release(clusters)


def _assert_perfect(clusters: dict[int, list[str]], how: str) -> None:
    together, truth = _pairs(clusters)
    judged = {pair for pair in together if not _tolerated(pair)}
    precision = len(judged & truth) / len(judged) if judged else 1.0
    recall = len(together & truth) / len(truth)
    print(f"{how}: pairwise precision {precision:.3f} recall {recall:.3f} ({len(truth)} pairs)")
    assert precision == 1.0 and recall == 1.0


def test_a_follow_up_repeating_the_release_figures_a_day_later_stays_apart() -> None:
    release = signature(
        "Meta ships Llama 5 in three sizes, including a 2-trillion-parameter giant",
        "Meta released Llama 5: 14 billion and 110 billion parameter dense models plus a "
        "2 trillion parameter mixture-of-experts model with 180 billion active parameters.",
    )
    copy = signature(
        "Llama 5 is here: what Meta's open 2T-parameter model changes",
        "Llama 5 Titan activates about 180B of its roughly 2T parameters; the 14B and 110B "
        "models are dense.",
    )
    follow_up = signature(
        "llama.cpp adds support for Llama 5's new attention layout",
        "The local inference project now runs 4-bit builds of the 14B and 110B models on "
        "Macs and consumer GPUs.",
    )
    assert is_same_story(release, copy, hours_apart=2)
    assert not is_same_story(release, follow_up, hours_apart=30)
    assert not is_same_story(copy, follow_up, hours_apart=30)
    assert not is_same_story(release, copy, hours_apart=24 * 4), "beyond the copy window"

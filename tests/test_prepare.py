"""Preparing entries in the worker: what gets stored for relevant and irrelevant items."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from bot.pack import default_pack_path
from bot.parse import ParsedEntry
from bot.prepare import Prepared, preparer_for

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def prepare(title: str, text: str) -> Prepared:
    entry = ParsedEntry(
        guid="urn:1",
        link="https://news.example/a?utm_source=rss",
        title=title,
        author=None,
        published=NOW,
        published_was_missing=False,
        summary_text=text,
        content_text="",
        links=(),
        categories=(),
    )
    preparer = preparer_for(str(default_pack_path()))
    return preparer.prepare(entry, source="News", alertable=True, fetched_at=NOW)


def test_relevant_items_get_a_summary_a_story_signature_and_claims() -> None:
    prepared = prepare(
        "Meta now says it will have 600,000 H100 GPUs by year end",
        "Mark Zuckerberg told investors Meta expects to own 600,000 Nvidia H100 GPUs by the "
        "end of 2024, up from the 350,000 figure he gave in January. Analysts were surprised.",
    )
    item = prepared.item
    assert item.relevant and item.themes
    assert item.summary.startswith("Mark Zuckerberg told investors")
    assert item.signature and item.band_keys
    assert "meta-350k-h100-2024" in [link.claim_id for link in prepared.links]
    assert "Mark Zuckerberg" in [c.speaker for c in prepared.candidates]


def test_irrelevant_items_are_stored_without_summary_or_signature() -> None:
    # They are never posted: digests and alerts take relevant items only.
    prepared = prepare(
        "Apple unveils a new iPhone",
        "The phone has a faster chip and a better camera. It ships next month in five colours.",
    )
    item = prepared.item
    assert not item.relevant and item.reasons
    assert item.summary == "" and item.signature is None and item.band_keys == ()
    assert item.text.startswith("The phone has")
    assert prepared.links == () and prepared.candidates == ()


@pytest.mark.parametrize(
    "odd", ["m\u0131llion", "thou\u017fand", "\u0130llion", "\u017fix million"]
)
def test_odd_letter_forms_in_a_relevant_item_are_prepared(odd: str) -> None:
    prepared = prepare(
        "Meta plans a bigger Llama training cluster",
        f"Meta said it will buy two {odd} H100 GPUs for training Llama models next year.",
    )
    assert prepared.item.relevant
    assert prepared.item.summary


def test_a_prepared_entry_crosses_the_process_boundary_unchanged() -> None:
    # The storing process unpickles what the workers prepared (records pickle as tuples).
    prepared = prepare(
        "Meta now says it will have 600,000 H100 GPUs by year end",
        "Mark Zuckerberg told investors Meta expects to own 600,000 Nvidia H100 GPUs by the "
        "end of 2024, up from the 350,000 figure he gave in January.",
    )
    copy = pickle.loads(pickle.dumps(prepared, protocol=pickle.HIGHEST_PROTOCOL))
    assert copy == prepared
    assert copy.item.themes and copy.item.themes == prepared.item.themes
    assert copy.item.published_at == NOW and copy.item.band_keys == prepared.item.band_keys

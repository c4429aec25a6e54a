"""The tagger must hold its quality floor on the authored dev set, including the held-out split
that was not looked at while tuning the pack."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bot.evaluate import EvalReport, LabelledItem, evaluate, format_report, load_items
from bot.pack import load_pack
from bot.tagger import Tagger

DEVSET = Path(__file__).parent / "data" / "devset.jsonl"
RELEVANCE_FLOOR = 0.90
MICRO_F1_FLOOR = 0.75


@pytest.fixture(scope="module")
def items() -> list[LabelledItem]:
    return load_items(DEVSET)


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger(load_pack())


def test_dev_set_shape(items: list[LabelledItem]) -> None:
    pack_themes = set(load_pack().theme_ids)
    assert len(items) >= 100
    assert len({i.id for i in items}) == len(items)
    positives = Counter(t for i in items for t in i.themes)
    assert set(positives) == pack_themes
    assert min(positives.values()) >= 6, positives
    off_topic = [i for i in items if not i.relevant]
    assert len(off_topic) >= 25 and all(not i.themes for i in off_topic)
    holdout = sum(i.split == "holdout" for i in items)
    assert 0.25 <= holdout / len(items) <= 0.35


def _check(report: EvalReport) -> None:
    summary = format_report(report, show_misses=True)
    assert report.relevance_accuracy >= RELEVANCE_FLOOR, summary
    assert report.micro.f1 >= MICRO_F1_FLOOR, summary


def test_floor_on_whole_set(tagger: Tagger, items: list[LabelledItem]) -> None:
    _check(evaluate(tagger, items))


def test_floor_on_holdout_split(tagger: Tagger, items: list[LabelledItem]) -> None:
    _check(evaluate(tagger, [i for i in items if i.split == "holdout"]))

"""Figures as people write them, normalised so that equal quantities compare equal."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.claims.figures import (
    _HEDGES,
    FIGURE_RE,
    HEDGE_RE,
    WORD_FIGURE_RE,
    Figure,
    _figure_matches,
    _hedged,
    _word_matches,
    extract_figures,
    match_figure,
)


@pytest.mark.parametrize(
    ("text", "low", "high", "kind"),
    [
        ("350k H100s", 350_000, 350_000, "gpu_count"),
        ("350,000 H100 GPUs", 350_000, 350_000, "gpu_count"),
        ("350 thousand H100s", 350_000, 350_000, "gpu_count"),
        ("about 600,000 H100 equivalents", 600_000, 600_000, "compute"),
        ("$10B", 10e9, 10e9, "money"),
        ("$10bn", 10e9, 10e9, "money"),
        ("10 billion dollars", 10e9, 10e9, "money"),
        ("between $7-10B on GPUs", 7e9, 10e9, "money"),
        ("700 million monthly users", 7e8, 7e8, "users"),
        ("700m monthly active users", 7e8, 7e8, "users"),
        ("a 405 billion parameter model", 405e9, 405e9, "parameters"),
        ("1 GW data centres", 1e9, 1e9, "power"),
        ("76% of that capacity", 76, 76, "share"),
        ("hundreds of millions of dollars", 1e8, 1e9, "money"),
        ("tens of thousands of dollars", 1e4, 1e5, "money"),
    ],
)
def test_written_figures_normalise(text: str, low: float, high: float, kind: str) -> None:
    figure = extract_figures(text)[0]
    assert (figure.low, figure.high, figure.kind) == (low, high, kind)


@pytest.mark.parametrize("text", ["Llama 3.1 shipped in 2024", "GPT-4 and the H100", "3 models"])
def test_versions_years_and_names_are_not_figures(text: str) -> None:
    assert extract_figures(text) == []


def test_hedged_figures_are_approximate() -> None:
    assert extract_figures("roughly 350,000 H100s")[0].approx
    assert not extract_figures("350,000 H100s")[0].approx


def test_matching_prefers_exact_value_and_unit() -> None:
    gpus = Figure(350_000, 350_000, "H100 GPUs", "gpu_count")
    typed = extract_figures("350k H100s")[0]
    bare = extract_figures("350k")[0]
    assert match_figure(typed, gpus) == 1.0
    assert 0.5 < match_figure(bare, gpus) < 1.0
    assert match_figure(extract_figures("500k H100s")[0], gpus) == 0.0
    assert match_figure(extract_figures("350k users")[0], gpus) == 0.0


def test_a_point_inside_a_narrow_range_beats_one_inside_a_vague_range() -> None:
    ten_billion = extract_figures("$10B")[0]
    narrow = Figure(7e9, 10e9, "USD", "money")
    vague = Figure(1e9, 1e11, "USD", "money")
    assert match_figure(ten_billion, narrow) > match_figure(ten_billion, vague) > 0


def test_figures_round_trip_through_the_ledger_format() -> None:
    for figure in (Figure(7e9, 10e9, "USD", "money", True, "$7-10B"), Figure(8e9, 8e9)):
        assert Figure.from_dict(figure.as_dict()) == figure


@pytest.mark.parametrize(
    ("odd", "plain"),
    [
        ("5 thou\u017fand H100s", "5 thousand H100s"),
        ("two m\u0131llion users", "two million users"),
        ("\u017fix million users", "six million users"),
        ("3 b\u0130llion dollars", "3 billion dollars"),
        ("m\u0131llions of users", "millions of users"),
        ("tens of thou\u017fands of GPUs", "tens of thousands of GPUs"),
    ],
)
def test_odd_letter_forms_read_like_plain_ones(odd: str, plain: str) -> None:
    # The patterns ignore case, which also makes dotless "ı" an "i" and long "ſ" an "s";
    # feed text can hold them, and they used to raise KeyError.
    def read(text: str) -> list[tuple[float, float, str, str]]:
        return [(f.low, f.high, f.unit, f.kind) for f in extract_figures(text)]

    assert read(odd) == read(plain) != []


FRAGMENTS = [
    *"0123456789 $%.,-\n\t",
    "usd",
    "US$",
    "u\u017fd",
    "to",
    "k",
    "bn",
    "a",
    "one",
    "six",
    "tens of",
    "hundreds of",
    "thousand",
    "thousands",
    "Million",
    "m\u0131llions",
    "BILLION",
    "trillion",
    "illion",
    " of millions",
    "\u00a0",
    "\u2003",
    "x",
    "H100",
    "GPUs",
    "users",
    "GW",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=24))
def test_quick_scans_find_what_the_patterns_find(parts: list[str]) -> None:
    # The scans run the patterns only near digits and multiplier words.
    text = "".join(parts)
    assert [m.span() for m in _figure_matches(text)] == [m.span() for m in FIGURE_RE.finditer(text)]
    assert [(m.span(), m.groups()) for m in _word_matches(text)] == [
        (m.span(), m.groups()) for m in WORD_FIGURE_RE.finditer(text)
    ]


HEDGE_FRAGMENTS = [
    *_HEDGES,
    "About",
    "ABOUT",
    "Up To",
    "\u017fome",  # long s: IGNORECASE reads it as "s"
    "c\u0131rca",  # dotless i
    "CLOSE TO",
    "close  to",
    "x",
    " ",
    "\n",
    "\t",
    "\u00a0",
    "\u2028",
    "-",
    "5",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(HEDGE_FRAGMENTS), max_size=8))
def test_hedge_test_agrees_with_the_hedge_pattern(parts: list[str]) -> None:
    before = "".join(parts)
    assert _hedged(before) == bool(HEDGE_RE.search(before))

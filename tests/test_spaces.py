"""Whitespace collapsing: the shortcut for text that is already collapsed must give what
the plain definition gives, on every kind of whitespace str.split() knows."""

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.spaces import collapse

SPACES = [" ", "  ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0"]
SPACES += ["\u1680", "\u2003", "\u2028", "\u2029", "\u202f", "\u3000"]
WORDS = ["a", "Meta", "é", "Llama 5", "\u200b", "\x00", "-", "…"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(SPACES + WORDS), max_size=25))
def test_collapse_is_split_and_join(parts: list[str]) -> None:
    text = "".join(parts)
    assert collapse(text) == " ".join(text.split())


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_collapse_on_any_text(text: str) -> None:
    assert collapse(text) == " ".join(text.split())


def test_collapsed_text_comes_back_as_it_is() -> None:
    line = "Meta plans a 2 GW data centre in Ohio."
    assert collapse(line) is line
    assert collapse(" Meta\tplans\u00a0a  centre ") == "Meta plans a centre"

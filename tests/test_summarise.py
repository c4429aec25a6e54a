from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.summarise import (
    _BOILERPLATE,
    _BOUNDARY,
    _BYLINE,
    _DATELINE,
    MAX_SUMMARY_CHARS,
    ExtractiveSummariser,
    _is_abbreviation,
    _lines,
    _lower_words,
    _repeats,
    _split_line,
    _strip_patterns,
    extractive_summary,
    split_sentences,
    strip_boilerplate,
    truncate_words,
)

TITLE = "Meta releases Llama 5 with open weights"


def test_takes_first_two_sentences_of_the_text() -> None:
    text = (
        "The company published three model sizes on Tuesday. "
        "The largest has 1.2 trillion parameters. "
        "Developers can download them after accepting a licence."
    )
    assert extractive_summary(TITLE, text) == (
        "The company published three model sizes on Tuesday. "
        "The largest has 1.2 trillion parameters."
    )


def test_second_sentence_dropped_when_it_would_break_the_cap() -> None:
    first = "Meta said its assistant now reaches more than a billion people every month."
    second = "It " + "keeps adding features across every app it owns and operates " * 5 + "now."
    summary = extractive_summary(TITLE, f"{first} {second}")
    assert summary == first


def test_long_first_sentence_is_cut_at_a_word_boundary_with_ellipsis() -> None:
    words = ["datacenter", "capacity", "expanded", "rapidly", "across", "Ohio"] * 20
    text = " ".join(words) + "."
    summary = extractive_summary(TITLE, text)
    assert len(summary) <= 300
    assert summary.endswith("…")
    assert summary[:-1].split() == words[: len(summary[:-1].split())]


def test_custom_cap_is_respected() -> None:
    text = "Meta is spending heavily on graphics processors for training. More follows."
    summary = extractive_summary(TITLE, text, max_chars=40)
    assert summary == "Meta is spending heavily on graphics…"
    assert len(summary) <= 40


def test_truncate_words_leaves_short_text_alone_and_never_splits_words() -> None:
    assert truncate_words("short text", 300) == "short text"
    assert truncate_words("alpha beta gamma delta", 12) == "alpha beta…"
    assert truncate_words("alpha, beta gamma", 12) == "alpha, beta…"
    assert truncate_words("alpha, beta gamma", 10) == "alpha…"


def test_first_sentence_repeating_the_title_is_skipped() -> None:
    text = (
        "Meta releases Llama 5 with open weights. "
        "The new family spans three sizes and ships under a community licence."
    )
    summary = extractive_summary(TITLE, text)
    assert summary.startswith("The new family spans three sizes")
    assert "Meta releases Llama 5" not in summary


def test_wordpress_footer_and_read_more_are_removed() -> None:
    text = (
        "Meta signed a twenty-year power agreement for its Ohio campus. "
        "The deal covers 2.2 gigawatts of new generation. Read more »\n"
        "The post Meta locks in power for Ohio AI campus appeared first on TechWire."
    )
    summary = extractive_summary("Power deal", text)
    assert summary == (
        "Meta signed a twenty-year power agreement for its Ohio campus. "
        "The deal covers 2.2 gigawatts of new generation."
    )


def test_strip_boilerplate_removes_each_kind() -> None:
    text = (
        "By Jane Doe | Nov 20, 2026 | Meta raised its spending forecast.\n"
        "Analysts expected a smaller increase […]\n"
        "Continue reading on our site.\n"
        "Click here to view the chart.\n"
        "Subscribe to our free AI newsletter.\n"
        "The post Meta raises capex appeared first on MarketDesk."
    )
    assert strip_boilerplate(text) == (
        "Meta raised its spending forecast.\nAnalysts expected a smaller increase"
    )


def test_byline_with_two_authors_and_a_dash_is_removed() -> None:
    text = "By Ana Ruiz and Tom Okafor — Meta hired a new head of research for its labs."
    assert strip_boilerplate(text) == "Meta hired a new head of research for its labs."


def test_ordinary_sentences_starting_with_by_survive() -> None:
    text = "By next year Meta expects to run far more inference on its own chips."
    assert strip_boilerplate(text) == text


def test_wire_datelines_are_removed() -> None:
    text = (
        "MENLO PARK, Calif. (Continental Wire) – Meta restored its apps after an outage.\n"
        "NEW YORK (Continental Wire) — Meta raised its spending outlook for next year."
    )
    assert strip_boilerplate(text) == (
        "Meta restored its apps after an outage.\nMeta raised its spending outlook for next year."
    )


def test_capitalised_state_abbreviations_do_not_end_sentences() -> None:
    text = "Officials in Salem, Ore. (Oregon's capital) backed it. Then it fell ill. Staff left."
    assert split_sentences(text) == [
        "Officials in Salem, Ore. (Oregon's capital) backed it.",
        "Then it fell ill.",
        "Staff left.",
    ]


def test_sentence_split_respects_abbreviations_and_decimals() -> None:
    text = (
        "Dr. Smith of Acme Inc. said U.S. regulators asked about Llama 3.1 last week. "
        "Prices rose 4.5 percent, e.g. in cloud rentals. "
        "Mr. Zuckerberg disagreed! Was he right? Time will tell."
    )
    assert split_sentences(text) == [
        "Dr. Smith of Acme Inc. said U.S. regulators asked about Llama 3.1 last week.",
        "Prices rose 4.5 percent, e.g. in cloud rentals.",
        "Mr. Zuckerberg disagreed!",
        "Was he right?",
        "Time will tell.",
    ]


def test_sentence_split_keeps_closing_quotes_with_their_sentence() -> None:
    text = '"We will keep building," he said. "Open models win." Then he left.'
    assert split_sentences(text) == [
        '"We will keep building," he said.',
        '"Open models win."',
        "Then he left.",
    ]


def test_fragments_such_as_photo_credits_are_passed_over() -> None:
    text = "Getty Images\nMeta opened its largest training cluster to date in Louisiana this week."
    summary = extractive_summary(TITLE, text)
    assert summary == "Meta opened its largest training cluster to date in Louisiana this week."


def test_empty_or_title_only_text_gives_empty_summary() -> None:
    assert extractive_summary(TITLE, "") == ""
    assert extractive_summary(TITLE, "Meta releases Llama 5 with open weights.") == ""
    assert extractive_summary(TITLE, "Read more »") == ""


def test_deterministic() -> None:
    text = "One sentence about Meta AI spending here. Another sentence follows it here."
    assert {extractive_summary(TITLE, text) for _ in range(5)} == {extractive_summary(TITLE, text)}


async def test_extractive_summariser_matches_function() -> None:
    text = "Meta trained the model on a cluster of 100,000 accelerators. It took weeks."
    assert await ExtractiveSummariser().summarise(TITLE, text) == extractive_summary(TITLE, text)


_words = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=25)
_sentence = st.builds(
    lambda ws, end: " ".join(ws) + end,
    st.lists(_words, min_size=1, max_size=40),
    st.sampled_from([".", "!", "?", ""]),
)


@settings(max_examples=200, deadline=None)
@given(title=st.text(max_size=80), sentences=st.lists(_sentence, max_size=8))
def test_property_capped_and_made_of_input_words(title: str, sentences: list[str]) -> None:
    text = " ".join(sentences)
    summary = extractive_summary(title, text)
    assert len(summary) <= 300
    input_words = set(text.split())
    for word in summary.removesuffix("…").split():
        assert word in input_words or any(w.startswith(word) for w in input_words)


@pytest.mark.parametrize(
    "junk",
    [
        "READ MORE \u00bb",
        "Continue Reading",
        "\u017fubscribe to our newsletter today.",
        "The post Meta ships appeared f\u0131rst on Site.",
        "CLICK HERE to see more.",
    ],
)
def test_boilerplate_is_stripped_in_any_letter_case(junk: str) -> None:
    text = f"Meta shipped the model to developers on Tuesday. {junk}"
    assert strip_boilerplate(text) == "Meta shipped the model to developers on Tuesday."


BITS = [
    "Meta released a model today.",
    " It has five sizes and open weights.",
    " Llama",
    " ships",
    "Dr.",
    " e.g.",
    " U.S.",
    "The post ",
    "appeared first on",
    " Site.",
    "[...]",
    "[ \u2026 ]",
    "Read more",
    "READ MORE \u00bb",
    "Continue reading",
    "Click here",
    "Subscribe",
    "\u017fubscribe",
    " to our newsletter today.",
    "By Jane Doe |",
    "BY JOHN ROE: Nov 20, 2026 |",
    "SAN FRANCISCO (Wire) \u2014 ",
    "(",
    ")",
    "By",
    "\n",
    "\n\n",
    " ",
    "\t",
    "!",
    "?",
    "\u201c",
    "\u2026",
]


def _summary_by_definition(title: str, text: str) -> str:
    """The first two sentences with five or more words (else the first two at all) that do
    not repeat the title, as one string within the limit."""

    def words(s: str) -> set[str]:
        return {w.lower() for w in re.findall(r"\w+", s)}

    def repeats(sentence: str) -> bool:
        t, s = words(title), words(sentence)
        return bool(t and s) and (s <= t or len(t & s) / len(t | s) >= 0.8)

    sentences = [s for s in split_sentences(strip_boilerplate(text)) if not repeats(s)]
    full = [s for s in sentences if len(re.findall(r"\w+", s)) >= 5] or sentences
    if not full:
        return ""
    if len(full[0]) > MAX_SUMMARY_CHARS:
        return truncate_words(full[0])
    both = " ".join(full[:2])
    return both if len(full) > 1 and len(both) <= MAX_SUMMARY_CHARS else full[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(BITS), max_size=30), st.sampled_from(["", TITLE, "Meta"]))
def test_summary_and_stripping_follow_their_definitions(parts: list[str], title: str) -> None:
    text = "".join(parts)
    stripped = _DATELINE.sub("", _BYLINE.sub("", text))
    for pattern in _BOILERPLATE:
        stripped = pattern.sub(" ", stripped)
    lines = (" ".join(line.split()) for line in stripped.splitlines())
    assert strip_boilerplate(text) == "\n".join(line for line in lines if line)
    assert extractive_summary(title, text) == _summary_by_definition(title, text)


_MIXED = st.text(
    st.sampled_from([*string.printable, "\u00e9", "\u0130", "\u00df", "\u2026", "\u201d", "_"]),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_MIXED, st.text(max_size=60)))
def test_words_are_the_lowered_regex_words(text: str) -> None:
    assert _lower_words(text) == [w.lower() for w in re.findall(r"\w+", text)]


@settings(max_examples=300, deadline=None)
@given(st.sets(st.sampled_from("abcdefgh")), st.lists(st.sampled_from("abcdefgh")))
def test_repeats_is_the_overlap_of_word_sets(title: set[str], words: list[str]) -> None:
    s = set(words)
    expected = bool(title and s) and (s <= title or len(title & s) / len(title | s) >= 0.8)
    assert _repeats(title, words) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(".!?\u2026\"')\u201d\u2019 \n\taA0(["), max_size=40))
def test_sentence_boundaries_are_the_documented_pattern(line: str) -> None:
    documented = re.compile(
        r"([.!?\u2026]+)([\"'\u201d\u2019)\]]*)\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])"
    )
    found = [m.span(1) + m.span(2) + m.span() for m in _BOUNDARY.finditer(line)]
    assert found == [m.span(1) + m.span(2) + m.span() for m in documented.finditer(line)]


def _plain_split_line(line: str) -> list[str]:
    """_split_line by its definition: every _BOUNDARY match, searched on the line itself."""
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(line):
        before = line[max(start, match.start(1) - 40) : match.start(1)]
        if match.group(1) == "." and _is_abbreviation(before):
            continue
        pieces.append(line[start : match.end(2)].strip())
        start = match.end()
    pieces.append(line[start:].strip())
    return pieces


def _plain_strip_patterns(text: str) -> str:
    """Every pattern applied, as when no hint is looked for first."""
    text = _DATELINE.sub("", _BYLINE.sub("", text))
    for pattern in _BOILERPLATE:
        text = pattern.sub(" ", text)
    return text


LINE_PIECES = [
    "Meta said so",
    "Dr",
    "U.S",
    "e.g",
    "Calif",
    "the end",
    "J",
    ".",
    "..",
    "!",
    "?",
    "?!",
    "\u2026",
    ".\u2026",
    '"',
    "\u201d",
    ")",
    "]",
    " ",
    "  ",
    "\t",
    "\x1c",
    "\x1f",
    "\x0b",
    "\r",
    "\n",
    "\x85",
    "\u2028",
    "\u00a0",
    "A",
    "7",
    "(",
    "\u201c",
    "\u00c9",
    "Read more",
    "READ the full story",
    "[\u2026]",
    "Click here",
    "subscribe to our newsletter",
    "The post X appeared first on Y",
    "By Jane Doe |",
    "SAN JOSE (Wire) \u2014 ",
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(LINE_PIECES), max_size=30), st.booleans())
def test_fast_paths_give_what_their_definitions_give(parts: list[str], spaced: bool) -> None:
    text = " ".join(parts) if spaced else "".join(parts)
    assert list(_split_line(text)) == _plain_split_line(text)
    assert _lines(text) == text.splitlines()
    assert _strip_patterns(text) == _plain_strip_patterns(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_fast_paths_on_any_text(text: str) -> None:
    assert list(_split_line(text)) == _plain_split_line(text)
    assert _lines(text) == text.splitlines()
    assert _strip_patterns(text) == _plain_strip_patterns(text)


WORDS_POOL = st.sampled_from(["meta", "llama", "gpu", "open", "model", "ai", "deal", "data"])


def _repeats_by_sets(title_words: set[str], words: list[str]) -> bool:
    """The plain definition _repeats short-cuts: all the sentence's words are the title's,
    or its Jaccard similarity to the title is at least 0.8."""
    sentence_words = set(words)
    if not title_words or not sentence_words:
        return False
    shared = len(title_words & sentence_words)
    if shared == len(sentence_words):
        return True
    return shared / (len(title_words) + len(sentence_words) - shared) >= 0.8


@settings(max_examples=2000, deadline=None)
@given(st.sets(WORDS_POOL, max_size=8), st.lists(WORDS_POOL, max_size=12))
def test_repeats_is_its_plain_definition(title_words: set[str], words: list[str]) -> None:
    assert _repeats(title_words, words) == _repeats_by_sets(title_words, words)


def _summary_judging_whole_sentences(title: str, text: str) -> str:
    """extractive_summary's choice of sentences, every sentence judged by all its words."""
    title_words = set(_lower_words(title))
    opening: list[str] = []
    full: list[str] = []
    for sentence in split_sentences(text):
        words = _lower_words(sentence)
        if _repeats_by_sets(title_words, words):
            continue
        if len(opening) < 2:
            opening.append(sentence)
        if len(words) >= 5:
            full.append(sentence)
            if len(full) == 2:
                break
    candidates = full or opening
    return " ".join(candidates[:2])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(WORDS_POOL, min_size=1, max_size=6).map(" ".join),
    st.lists(st.lists(WORDS_POOL, min_size=1, max_size=60).map(" ".join), max_size=4),
)
def test_long_sentences_judged_by_their_opening_give_the_same_summary(
    title: str, sentences: list[str]
) -> None:
    # Sentences past 160 characters may be judged by their first words only.
    text = " ".join(f"{s.capitalize()}." for s in sentences)
    summary = extractive_summary(title, text, max_chars=100_000)
    assert summary == _summary_judging_whole_sentences(title, text)

"""Candidate claims from coverage, and coverage linked to the ledger claims it is about."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.claims import query as query_module
from bot.claims.extract import (
    _DEFAULT_KEY,
    ABBREVIATIONS,
    MAX_TEXT,
    CandidateClaim,
    _document,
    _speaker_key,
    _speakers,
    candidate_id,
    extract_candidates,
    split_sentences,
    to_record,
)
from bot.claims.figures import extract_figures, fold_case, may_hold_figure
from bot.claims.ledger import DEFAULT_PACK_DIR, load_ledger
from bot.claims.link import Linker
from bot.claims.lookup import ClaimIndex, ClaimRecord, LookupEngine
from bot.claims.query import (
    _GLUE_HINT,
    TOKEN_RE,
    TermFinder,
    _fold,
    _forms,
    _join_versions,
    _may_glue,
    tokenize,
    tokens_among,
    words_of,
)

ARTICLE = (
    "Meta Platforms Inc. said on Tuesday it will spend $40 billion on data centers this year. "
    "The weather in Menlo Park was mild. "
    "Zuckerberg told investors that Llama 4 would be trained on more than 100,000 H100 GPUs. "
    "According to Meta, Meta AI now has 500 million monthly users. "
    "Meta's chief AI scientist Yann LeCun said language models alone will not reach human-level "
    "intelligence. "
    "Analysts expect Nvidia revenue of $30 billion."
)


def test_attributed_and_figure_sentences_become_candidates() -> None:
    found = extract_candidates("Meta doubles down on AI", ARTICLE)
    assert [c.speaker for c in found] == ["Meta", "Mark Zuckerberg", "Meta", "Yann LeCun"]
    assert found[0].statement.startswith("Meta Platforms Inc. said")
    assert found[0].figures[0].value == 40e9
    assert found[1].figures[0].value == 100_000
    statements = " ".join(c.statement for c in found)
    assert "weather" not in statements  # neither attributed nor a figure
    assert "Nvidia revenue" not in statements  # a figure, but not about a tracked name


def test_role_without_a_name_is_kept_as_written() -> None:
    found = extract_candidates("", "Meta's chief AI scientist said open models are safer.")
    assert found[0].speaker == "Meta's chief AI scientist"


def test_long_sentences_are_trimmed_on_a_word_boundary() -> None:
    sentence = "Zuckerberg said " + "very " * 100 + "much."
    statement = extract_candidates("", sentence)[0].statement
    assert len(statement) <= 280 and statement.endswith("…")
    assert not statement[:-1].endswith("ver")


def test_sentences_do_not_split_on_abbreviations() -> None:
    assert len(split_sentences("Nvidia Corp. sold chips. Meta Inc. bought them.")) == 2


def test_candidates_are_found_by_claim_lookup() -> None:
    candidate = extract_candidates("", ARTICLE)[1]
    record = to_record(
        candidate,
        claim_id=candidate_id(42, candidate.statement),
        publication="Example News",
        title="Meta doubles down on AI",
        url="https://example.com/a",
        published=date(2025, 1, 30),
    )
    index = ClaimIndex.from_ledger(load_ledger(DEFAULT_PACK_DIR))
    index.add(record)
    match = LookupEngine(index).lookup("Llama 4 100k H100s").matches[0]
    assert match.claim.id == record.id
    assert match.to_json()["source"] == {
        "publication": "Example News",
        "title": "Meta doubles down on AI",
        "url": "https://example.com/a",
        "seed": None,
    }
    assert candidate_id(42, candidate.statement) == record.id  # stable across runs


@pytest.fixture(scope="module")
def linker() -> Linker:
    return Linker([ClaimRecord.from_ledger(c) for c in load_ledger(DEFAULT_PACK_DIR)])


def test_release_coverage_links_both_the_release_and_the_in_training_claim(linker: Linker) -> None:
    links = linker.link(
        "Meta releases Llama 3.1 405B, its biggest open model yet",
        "Meta on Tuesday released Llama 3.1, including a 405 billion parameter model.",
    )
    ids = [link.claim_id for link in links]
    assert ids[0] == "llama31-405b-released"
    assert "llama3-405b-in-training" in ids


def test_a_changed_figure_is_linked_as_an_update(linker: Linker) -> None:
    links = linker.link(
        "Meta now says it will have 600,000 H100 GPUs by year end",
        "Mark Zuckerberg told investors Meta expects to own 600,000 Nvidia H100 GPUs by the end "
        "of 2024, up from the 350,000 figure he gave in January.",
    )
    by_id = {link.claim_id: link for link in links}
    assert by_id["meta-350k-h100-2024"].updates_figure
    assert not by_id["meta-600k-h100-equivalents-2024"].updates_figure


def test_unrelated_coverage_links_nothing(linker: Linker) -> None:
    assert linker.link("Apple unveils a new iPhone", "A faster chip and a better camera.") == []
    licence = linker.link(
        "Llama licence still bars the biggest rivals",
        "Firms may use Llama free unless they have more than 700 million monthly active users.",
    )
    assert licence[0].claim_id == "llama-licence-700m-users"
    assert all(0 < link.score <= 1 for link in licence)


def test_links_are_the_same_in_every_worker_process() -> None:
    # Claims' subjects used to depend on set order, which changes with the hash seed.
    script = (
        "from bot.claims.ledger import DEFAULT_PACK_DIR, load_ledger\n"
        "from bot.claims.link import Linker\n"
        "from bot.claims.lookup import ClaimRecord\n"
        "linker = Linker([ClaimRecord.from_ledger(c) for c in load_ledger(DEFAULT_PACK_DIR)])\n"
        f"print(linker.link('Meta doubles down on AI', {ARTICLE!r}, floor=0.0))\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": root},
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


def test_only_claims_sharing_subject_words_are_linked(linker: Linker) -> None:
    title = "Meta releases Llama 3.1 405B, its biggest open model yet"
    text = "Meta on Tuesday released Llama 3.1, including a 405 billion parameter model."
    every = linker.link(title, text, floor=0.0)
    assert len(every) == len(load_ledger(DEFAULT_PACK_DIR))  # a floor of 0 lets all through
    linked = linker.link(title, text)
    assert linked and linked == [link for link in every if link.score >= 0.5]


@pytest.mark.parametrize(
    ("sentence", "speaker"),
    [
        ("MARK ZUCKERBERG SAID THE COMPANY WILL SPEND MORE ON AI.", "Mark Zuckerberg"),
        ("According to META, its assistant has 500 million monthly users.", "Meta"),
        ("Yann LeCun argued that language models alone will not reach it.", "Yann LeCun"),
        ("Zuckerberg, speaking on Tuesday, said Meta would buy more chips.", "Mark Zuckerberg"),
    ],
)
def test_speakers_are_found_in_any_letter_case(sentence: str, speaker: str) -> None:
    assert [c.speaker for c in extract_candidates("", sentence)] == [speaker]


def test_odd_letter_forms_do_not_break_extraction() -> None:
    text = "Meta said it will spend two m\u0131llion dollars on thou\u017fands of GPUs this year."
    found = extract_candidates("\u0130nside Meta", text)
    assert [c.speaker for c in found] == ["Meta"]
    assert found[0].figures[0].value == 2e6


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "open",
                "source",
                "data",
                "centers",
                "meta",
                "ai",
                "llama",
                "3.1",
                "the",
                "H100s",
                "monthly",
                "users",
                "superintelligence",
                "capex",
                "2024",
                " ",
                "\u2019s",
                "-",
            ]
        ),
        max_size=20,
    ),
    st.frozensets(
        st.sampled_from(
            [
                "opensource",
                "datacenter",
                "metaai",
                "llama31",
                "llama",
                "the",
                "h100",
                "mau",
                "agi",
                "capex",
                "2024",
                "center",
                "data",
            ]
        ),
    ),
)
def test_tokens_among_is_the_wanted_part_of_tokenize(
    words: list[str], wanted: frozenset[str]
) -> None:
    text = " ".join(words)
    assert tokens_among(text, wanted) == set(tokenize(text)) & wanted


TEXT_PIECES = [
    "llama",
    "Llama",
    "gpt",
    "GPT",
    "3",
    "3.1",
    "4o",
    "H100s",
    "Meta\u2019s",
    "it's",
    "open",
    "source",
    "data",
    "Corp.",
    "Dr.",
    "U.S.",
    "Sept.",
    "said.",
    "Yes!",
    "Why?",
    '"Quoted."',
    "\u201cOpen\u201d",
    "(Aside.)",
    "\uff2c\uff4c\uff41\uff4d\uff41",  # fullwidth "Llama": NFKC folds it
    "-",
    ".",
    ",",
    " ",
    "  ",
    "\n",
    "\t",
    "\u00a0",
    "\u2028",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TEXT_PIECES), max_size=30))
def test_words_of_reads_every_word_as_the_token_pattern_does(parts: list[str]) -> None:
    # words_of splits the text on whitespace first; it must give the words of the plain
    # definition: the pattern's tokens, glued to versions, then their forms.
    text = " ".join(parts) if len(parts) % 2 else "".join(parts)
    tokens = _join_versions(TOKEN_RE.findall(_fold(text)))
    assert words_of(text) == [form for token in tokens for form in _forms(token)]


def _plain_sentences(text: str) -> list[str]:
    """The sentence splitter as first written: a look-behind pattern, searched everywhere."""
    text = " ".join(text.split())
    pieces: list[str] = []
    start = 0
    for hit in re.finditer(r"(?<=[.!?])[\"”’)]?\s+(?=[\"“(]?[A-Z0-9])", text):
        if ABBREVIATIONS.search(text[start : hit.start()].rstrip('"”’)')):
            continue
        if piece := text[start : hit.start()].strip():
            pieces.append(piece)
        start = hit.end()
    if piece := text[start:].strip():
        pieces.append(piece)
    return pieces


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TEXT_PIECES), max_size=30))
def test_sentences_split_where_the_plain_splitter_splits(parts: list[str]) -> None:
    text = " ".join(parts) if len(parts) % 2 else "".join(parts)
    assert split_sentences(text) == _plain_sentences(text)


MORE_PIECES = [
    *TEXT_PIECES,
    "Meta",
    "AI",
    "Meta AI",
    "meta-ai",
    "open-source",
    "open\u2014source",
    "\u2014",
    "...",
    "superintelligence",
    "Superintelligence's",
    "general",
    "intelligence",
    "capital",
    "expenditure",
    "monthly",
    "users",
    "datacenter",
    "centres",
    "agi",
    "capex",
    "llama3.1",
    "gpt-4",
    "the",
    "Zuckerberg",
    "\u0130stanbul",
    "\u017fo",
    "\x1c",
    "\x1f",
    "\x0b",
    "\r",
    "\u2026",
    "\u2009",
    "!",
    "?",
]
_FINDER_WANTED = [
    frozenset({"meta", "ai", "metaai", "opensource", "open", "agi", "datacenter", "user"}),
    frozenset({"metaai", "agi", "capex", "mau", "opensource", "datacenter"}),
    frozenset({"zuckerberg", "llama", "llama3", "llama31", "gpt", "gpt4", "h100", "the"}),
    frozenset({"source", "intelligence", "center", "expenditure", "3", "2024"}),
]
# Kept across examples on purpose: a finder's idle chunks come from the texts before.
_FINDERS = [TermFinder(wanted) for wanted in _FINDER_WANTED]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(MORE_PIECES), max_size=40), st.booleans())
def test_term_finder_finds_what_tokens_among_finds(parts: list[str], spaced: bool) -> None:
    text = " ".join(parts) if spaced else "".join(parts)
    for finder in _FINDERS:
        assert finder(text) == tokens_among(text, finder.wanted)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_term_finder_on_any_text(text: str) -> None:
    for finder in _FINDERS:
        assert finder(text) == tokens_among(text, finder.wanted)


def test_term_finder_forgets_idle_chunks_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query_module, "_MAX_CHUNKS", 3)
    finder = TermFinder(frozenset({"metaai", "open"}))
    for text in ["a b c d e", "f g Meta AI", "open h i j", "k meta l ai", "meta\u2014ai"]:
        assert finder(text) == tokens_among(text, finder.wanted)
        assert len(finder._idle) <= 3


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(MORE_PIECES), max_size=30), st.booleans())
def test_may_glue_is_the_glue_pattern_searched(parts: list[str], spaced: bool) -> None:
    folded = _fold(" ".join(parts) if spaced else "".join(parts))
    assert _may_glue(folded) == (_GLUE_HINT.search(folded) is not None)


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(MORE_PIECES), max_size=30), st.booleans())
def test_sentences_with_any_whitespace_split_as_the_plain_splitter(
    parts: list[str], spaced: bool
) -> None:
    text = " ".join(parts) if spaced else "".join(parts)
    assert split_sentences(text) == _plain_sentences(text)


# -- shortcuts in candidate extraction, against their plain definitions ---------------


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(MORE_PIECES), max_size=12),
    st.lists(st.sampled_from(MORE_PIECES), max_size=30),
    st.booleans(),
    st.integers(min_value=-8, max_value=8),
)
def test_document_is_title_and_text_collapsed(
    title_parts: list[str], text_parts: list[str], spaced: bool, near_limit: int
) -> None:
    title = "".join(title_parts)
    text = " ".join(text_parts) if spaced else "".join(text_parts)
    if near_limit and title:  # the joined text about as long as extraction reads
        filler = "word  " * (MAX_TEXT // 6)
        text = text + filler[: max(0, MAX_TEXT - len(title) - len(text) - 2 + near_limit)]
    joined = f"{title}.\n{text}" if title else text
    assert _document(title, text) == " ".join(joined[:MAX_TEXT].split())


def _unicode() -> str:
    return "".join(map(chr, range(0x110000)))


def test_fold_case_keeps_every_character_in_place() -> None:
    assert len(fold_case(_unicode())) == 0x110000


def test_folded_text_matches_each_pattern_element_as_ignorecase_does() -> None:
    # The folded pattern is the attribution pattern without IGNORECASE, searched in
    # fold_case'd text; element by element, each must match a character there exactly
    # when it matches the character itself under IGNORECASE. (Word boundaries and the
    # other classes do not use IGNORECASE; they must see the same classes.)
    every = _unicode()
    folded = fold_case(every)
    pattern = _speakers(_DEFAULT_KEY).folded_pattern
    assert pattern is not None
    source = pattern.pattern.replace("?P<", "")  # group syntax aside, all lower case
    assert source == source.lower()
    literals = {c for c in source if c.isprintable()}
    elements = [re.escape(c) for c in sorted(literals)] + [r"[a-z]", r"[a-z ]", r"[^;!?]"]
    for element in [*elements, r"\s", r"\w"]:
        ignoring = re.compile(element, re.IGNORECASE)
        plain = re.compile(element)
        assert [m.start() for m in ignoring.finditer(every)] == [
            m.start() for m in plain.finditer(folded)
        ], element


ODD_PIECES = [
    *MORE_PIECES,
    "said",
    "SAYS",
    "told",
    "According to",
    "ACCORDING TO",
    "Meta\u2019s chief AI scientist",
    "META'S CEO",
    "Meta spokeswoman",
    "Mark Zuckerberg",
    "ZUCK",
    "LeCun",
    "Yann LeCun",
    "Ahmad Al-Dahle",
    "Nick Clegg",
    "Meta Platforms",
    "Metaverse",
    "\u212aelvin",
    "\u0131",
    "\u0130",
    "\u017f",
    "\u03a3",
    "\u00df",
    ";",
    "plans",
    "5 million",
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(ODD_PIECES), max_size=25), st.booleans())
def test_attribution_in_folded_text_is_the_ignorecase_search(
    parts: list[str], spaced: bool
) -> None:
    sentence = " ".join(parts) if spaced else "".join(parts)
    speakers = _speakers(_DEFAULT_KEY)
    hit = speakers.pattern.search(sentence)
    plain = (hit.group("who1") or hit.group("who2"), hit.group(0)) if hit else None
    assert speakers.attribution(sentence, fold_case(sentence)) == plain


def test_non_ascii_speakers_are_searched_with_ignorecase() -> None:
    speakers = _speakers(_speaker_key({"Jos\u00e9 Garc\u00eda": "Jos\u00e9 Garc\u00eda"}))
    assert speakers.folded_pattern is None
    sentence = "JOS\u00c9 GARC\u00cdA said the plan would cost $2 billion."
    assert speakers.attribution(sentence, fold_case(sentence)) == (
        "JOS\u00c9 GARC\u00cdA",
        "JOS\u00c9 GARC\u00cdA said",
    )


FIGURE_PIECES = [
    *ODD_PIECES,
    "3",
    "2024",
    "350,000",
    "\u0663",  # Arabic-Indic three
    "\uff13",  # fullwidth three
    "$",
    "k",
    "bn",
    "B",
    "MILLION",
    "m\u0131llion",
    "thou\u017fand",
    "Thousands",
    "two thousand",
    "tens of THOUSANDS",
    "Millions",
    "billions",
    "tens of",
    "hundreds of",
    "two",
    "H100s",
    "GPUs",
    "%",
    "users",
    "dollars",
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(FIGURE_PIECES), max_size=25), st.booleans())
def test_sentences_without_digits_or_multipliers_hold_no_figure(
    parts: list[str], spaced: bool
) -> None:
    sentence = " ".join(parts) if spaced else "".join(parts)
    if not may_hold_figure(sentence, fold_case(sentence)):
        assert extract_figures(sentence) == []


def test_figure_shortcut_on_the_dev_set() -> None:
    lines = (Path(__file__).parent / "data" / "devset.jsonl").read_text().splitlines()
    sentences = [s for line in lines for s in split_sentences(line)]
    skipped = [s for s in sentences if not may_hold_figure(s, fold_case(s))]
    assert skipped and all(extract_figures(s) == [] for s in skipped)


def test_candidates_unpickle_with_their_search_text() -> None:
    found = extract_candidates("Meta doubles down on AI", ARTICLE)
    back = pickle.loads(pickle.dumps(found))
    assert back == found and all(isinstance(c, CandidateClaim) for c in back)
    assert [c.search_text for c in back] == [c.search_text for c in found]
    assert [c.figures for c in back] == [c.figures for c in found]

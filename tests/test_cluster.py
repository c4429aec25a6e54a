"""Near-duplicate clustering on realistic syndicated copies and hard negatives."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
import subprocess
import sys
import unicodedata
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import cluster
from bot.cluster import (
    BANDS,
    LEAD_CHARS,
    ROWS,
    Signature,
    band_keys,
    is_same_story,
    signature,
    similarity,
)

Story = tuple[str, str]

SYNDICATED: list[tuple[Story, Story]] = [
    (
        (
            "Meta releases Llama 3.1 405B, its largest open-source AI model yet",
            "Meta on Tuesday released Llama 3.1, a family of open models whose biggest "
            "version has 405 billion parameters, and said it rivals leading closed systems "
            "from OpenAI and Google.",
        ),
        (
            "Meta unveils biggest Llama model, says it can compete with OpenAI and Google",
            "Meta Platforms released the latest version of its Llama model on Tuesday, with "
            "the largest Llama 3.1 variant at 405 billion parameters; the company says it "
            "matches top closed models from OpenAI and Google.",
        ),
    ),
    (
        (
            "Zuckerberg says Meta is building artificial general intelligence",
            "Mark Zuckerberg said Meta's long-term goal is to build general intelligence and "
            "open source it responsibly, and that the company will have about 350,000 Nvidia "
            "H100 GPUs by the end of the year.",
        ),
        (
            "Mark Zuckerberg sets AGI goal for Meta, plans 350,000 H100 chips",
            "Meta CEO Mark Zuckerberg said the company aims to build artificial general "
            "intelligence and will own roughly 350,000 Nvidia H100 graphics cards by the end "
            "of 2024, as it brings its FAIR research group closer to its generative AI team.",
        ),
    ),
    (
        (
            "Meta launches Llama 3 with 8B and 70B models",
            "Meta released the first two Llama 3 models, with 8 billion and 70 billion "
            "parameters, and put its Meta AI assistant powered by them into Facebook, "
            "Instagram, WhatsApp and Messenger.",
        ),
        (
            "Meta debuts Llama 3 and upgrades its Meta AI assistant across apps",
            "Meta on Thursday introduced Llama 3 in 8 billion and 70 billion parameter sizes "
            "and rolled out its Meta AI assistant, built on the new models, across Facebook, "
            "Instagram, WhatsApp and Messenger.",
        ),
    ),
    (
        (
            "Zuckerberg argues open source AI is the path forward",
            "In a letter published alongside Llama 3.1, Mark Zuckerberg argued that open "
            "source AI will be safer and better for developers, comparing the moment to Linux"
            " displacing closed Unix.",
        ),
        (
            "Zuckerberg: open-source AI is the way forward, like Linux",
            "Mark Zuckerberg published a letter arguing that open source AI is better for "
            "developers, for Meta and for the world, and compared it to how Linux won out "
            "over proprietary Unix systems.",
        ),
    ),
    (
        (
            "Meta to spend up to $40 billion on AI infrastructure this year",
            "Meta Platforms said on Wednesday it expects capital expenditures of $35 billion "
            "to $40 billion in 2024 as it accelerates investment in artificial intelligence "
            "infrastructure, sending its shares lower.",
        ),
        (
            "Meta to spend up to $40 billion on AI infrastructure this year - Yahoo Finance",
            "Meta Platforms said Wednesday it expects capital expenditures of $35 billion to "
            "$40 billion in 2024, as it accelerates investments in artificial intelligence "
            "infrastructure. Its shares fell in extended trading.",
        ),
    ),
    (
        (
            "Meta raises 2024 capital spending forecast on AI push",
            "Meta said capital expenditures will be $35 billion to $40 billion this year, up "
            "from its earlier forecast of $30 billion to $37 billion, as it invests in AI "
            "infrastructure.",
        ),
        (
            "Meta lifts capex outlook to as much as $40 billion as AI costs climb",
            "Meta Platforms raised its forecast for 2024 capital expenditures to between $35 "
            "billion and $40 billion, from $30 billion to $37 billion, citing AI "
            "infrastructure, and warned spending will keep rising next year.",
        ),
    ),
]
DIFFERENT: list[tuple[Story, Story]] = [
    (SYNDICATED[2][0], SYNDICATED[0][0]),
    (SYNDICATED[0][1], SYNDICATED[3][0]),
    (
        SYNDICATED[1][0],
        (
            "Meta details two 24,000-GPU clusters built to train Llama 3",
            "Meta described a pair of data center clusters, each with 24,576 Nvidia H100 "
            "GPUs, that it is using to train Llama 3, and repeated its aim of having 350,000 "
            "H100s by the end of 2024.",
        ),
    ),
    (
        SYNDICATED[5][0],
        (
            "Meta narrows 2024 capex forecast to $37 billion to $40 billion",
            "Meta Platforms said capital expenditures this year will be $37 billion to $40 "
            "billion, narrowing its earlier forecast of $35 billion to $40 billion, and said "
            "AI infrastructure spending will grow significantly in 2025.",
        ),
    ),
    (
        SYNDICATED[2][1],
        (
            "Meta AI assistant nears 400 million monthly users, Zuckerberg says",
            "Mark Zuckerberg said the Meta AI assistant, built on Llama models, is used by "
            "close to 400 million people a month across Facebook, Instagram, WhatsApp and "
            "Messenger.",
        ),
    ),
    (
        SYNDICATED[0][0],
        (
            "Zuckerberg says Llama 4 will need ten times the compute of Llama 3",
            "Meta expects to train Llama 4 with nearly ten times the computing power used for"
            " Llama 3, Mark Zuckerberg told analysts, as the company keeps releasing open "
            "models to rival OpenAI and Google.",
        ),
    ),
]

CAPEX_APRIL = SYNDICATED[5][0]
CAPEX_JULY = DIFFERENT[3][1]


@pytest.mark.parametrize(("a", "b"), SYNDICATED, ids=lambda story: story[0][:30])
def test_syndicated_copies_are_the_same_story(a: Story, b: Story) -> None:
    sa, sb = signature(*a), signature(*b)
    assert is_same_story(sa, sb, hours_apart=6), similarity(sa, sb)
    assert set(band_keys(sa)) & set(band_keys(sb)), "LSH must offer the copy as a candidate"


@pytest.mark.parametrize(("a", "b"), DIFFERENT, ids=lambda story: story[0][:30])
def test_different_stories_on_one_topic_stay_apart(a: Story, b: Story) -> None:
    hours = 24 * 98 if {a, b} == {CAPEX_APRIL, CAPEX_JULY} else 24
    assert not is_same_story(signature(*a), signature(*b), hours_apart=hours)


def test_capex_restatement_is_only_told_apart_by_time() -> None:
    """Wording alone cannot separate a forecast from its restatement a quarter later."""
    april, july = signature(*CAPEX_APRIL), signature(*CAPEX_JULY)
    assert is_same_story(april, july)
    assert not is_same_story(april, july, hours_apart=-24 * 98)


def test_version_numbers_separate_otherwise_similar_launches() -> None:
    llama3 = signature("Meta releases Llama 3, its new open model", "Meta released Llama 3 today.")
    llama31 = signature(
        "Meta releases Llama 3.1, its new open model", "Meta released Llama 3.1 today."
    )
    copy = signature(
        "Meta releases Llama 3, its newest open model", "Llama 3 was released by Meta."
    )
    assert similarity(llama3, copy) > similarity(llama3, llama31)
    assert not is_same_story(llama3, llama31)


def test_exact_copy_scores_one_and_empty_text_scores_zero() -> None:
    story = SYNDICATED[0][0]
    assert similarity(signature(*story), signature(*story)) == 1.0
    assert similarity(signature("", ""), signature(*story)) == 0.0
    assert band_keys(signature("", "")) == []


def test_candidate_index_finds_each_copy() -> None:
    stories = [story for pair in SYNDICATED for story in pair]
    stories += [b for _, b in DIFFERENT if b not in stories]
    index: dict[str, set[int]] = defaultdict(set)
    sigs = [signature(*story) for story in stories]
    for number, sig in enumerate(sigs):
        for key in band_keys(sig):
            index[key].add(number)
    for pair_number in range(len(SYNDICATED)):
        first, second = 2 * pair_number, 2 * pair_number + 1
        candidates = set().union(*(index[key] for key in band_keys(sigs[first])))
        assert second in candidates
        assert len(candidates) < len(stories), "the index must narrow the search"


def test_signature_round_trips_compactly() -> None:
    sig = signature(*SYNDICATED[1][1])
    text = sig.dumps()
    assert Signature.loads(text) == sig
    assert text.isascii()
    assert len(text) < 400
    long_sig = signature("x", " ".join(f"word{n} {n}" for n in range(2000)))
    assert Signature.loads(long_sig.dumps()) == long_sig


@pytest.mark.parametrize("junk", ["", "s1:", "s1:!!!", "s9:AAAA", "s1:AQE="])
def test_corrupt_signature_raises_value_error(junk: str) -> None:
    with pytest.raises(ValueError):
        Signature.loads(junk)


def test_signatures_are_identical_across_processes() -> None:
    title, text = SYNDICATED[0][0]
    script = (
        "from bot.cluster import signature, band_keys\n"
        f"s = signature({title!r}, {text!r})\n"
        "print(s.dumps()); print(','.join(band_keys(s)))\n"
    )
    here = signature(title, text)
    expected = f"{here.dumps()}\n{','.join(band_keys(here))}\n"
    root = str(Path(__file__).resolve().parents[1])
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": root}
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout == expected


def test_reworded_figures_count_as_one_quantity() -> None:
    spelled = signature("Meta ships a 2 trillion parameter model", "Capex of $150 billion.")
    short = signature("Meta's 2T-parameter model is out", "Guidance of $150-170B.")
    between = signature("Spending", "Meta plans to spend between $150 billion and $170 billion.")
    assert len(spelled.figures & short.figures) == 2
    assert len(short.figures & between.figures) == 2
    assert set(band_keys(spelled)) & set(band_keys(short)), "a shared figure is a candidate key"


def test_bylines_and_datelines_are_not_evidence() -> None:
    a = signature("Chip stocks rally", "By Rachel Stein | Chipmakers rose after Nvidia results.")
    b = signature("Reality Labs cuts VR budget", "By Rachel Stein | Meta moves money to glasses.")
    c = signature("Ohio deal", "COLUMBUS, Ohio (Continental Wire) – Meta signed a power deal.")
    assert not a.names & b.names
    assert c.names == signature("Ohio deal", "Meta signed a power deal.").names


def test_publication_time_travels_with_the_signature() -> None:
    title, text = SYNDICATED[0][0]
    copy_title, copy_text = SYNDICATED[0][1]
    when = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)
    first = signature(title, text, published=when)
    soon = Signature.loads(
        signature(copy_title, copy_text, published=when + timedelta(hours=3)).dumps()
    )
    late = signature(copy_title, copy_text, published=when + timedelta(days=4))
    assert first.hour is not None and soon.hour == first.hour + 3
    assert is_same_story(first, soon)
    assert not is_same_story(first, late)


def test_signatures_stored_before_figures_still_compare() -> None:
    """An "s1" signature (words and numbers only) from an older database still loads."""
    words = sorted(signature(*SYNDICATED[4][0]).words)
    raw = struct.pack(f">BB{len(words)}I", len(words), 0, *words)
    old = Signature.loads("s1:" + base64.b64encode(raw).decode("ascii"))
    assert old.words == frozenset(words) and not old.figures and old.hour is None
    assert is_same_story(old, signature(*SYNDICATED[4][0]), hours_apart=1)


def test_keys_are_bounded_and_short() -> None:
    text = " ".join(
        f"Name{n} Place{n} said ${n + 1} billion and {n + 2} gigawatts." for n in range(80)
    )
    keys = band_keys(signature("Big story with Many Names", text))
    assert len(keys) <= 48 and all(len(key) <= 64 for key in keys)


@settings(max_examples=60, deadline=None)
@given(st.frozensets(st.integers(min_value=0, max_value=2**32 - 1), min_size=1, max_size=90))
def test_band_keys_are_minhash_bands_of_the_words(words: frozenset[int]) -> None:
    # The definition: each word's SHAKE-128 output gives one 32-bit value per row; a band
    # key hashes the row minima of its rows.
    rows = BANDS * ROWS
    values = [
        struct.unpack(f">{rows}I", hashlib.shake_128(w.to_bytes(4, "big")).digest(4 * rows))
        for w in words
    ]
    minima = [min(v[row] for v in values) for row in range(rows)]
    expected = [
        f"{band:02d}"
        + hashlib.blake2b(
            struct.pack(f">{ROWS}I", *minima[band * ROWS : (band + 1) * ROWS]), digest_size=6
        ).hexdigest()
        for band in range(BANDS)
    ]
    assert band_keys(Signature(words))[:BANDS] == expected


GLUED = ["Llama-5-14B", "x-1-2-3", "GPT-4-1", "Llama-3.1-405B", "-", "7", " ", "\n", "\t", "ab"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([*GLUED, "Meta ", "said ", "H100s ", "$150 ", "Ohio "]), min_size=1),
    st.text(alphabet="ab -\t\n1Ll", max_size=40),
)
def test_the_signature_reads_only_the_lead(words: list[str], tail: str) -> None:
    _check_lead(words, tail)


@pytest.mark.parametrize("at", range(LEAD_CHARS - 12, LEAD_CHARS + 4))
def test_a_glued_size_across_the_end_of_the_lead(at: int) -> None:
    _check_lead(["x" * (at - 1), " Llama-5-14B model", " more"], "")


def _check_lead(words: list[str], tail: str) -> None:
    # The lead: leading space dropped, glued sizes split ("Llama-5-14B" -> "Llama 5 14B"),
    # then, if longer, cut at the last space within LEAD_CHARS. Glued sizes may straddle
    # the cut.
    text = ""
    while len(text) <= LEAD_CHARS + 20:
        text += "".join(words)
    text += tail
    split = re.sub(r"\b([A-Za-z]+)-(\d+(?:\.\d+)?)-(?=\d)", r"\1 \2 ", text.lstrip())
    cut = split.rfind(" ", 0, LEAD_CHARS)
    lead = split[: cut if cut > 0 else LEAD_CHARS] if len(split) > LEAD_CHARS else split
    title = "Meta plans GPU clusters"
    assert signature(title, text) == signature(title, lead)


# Text that stresses the name and version search: capitals at and inside words, words
# opening on lower case ("iOS"), versions, and what borders a word (apostrophes, hyphens,
# dots, digits, underscores, non-ASCII letters and digits, every kind of whitespace).
NAMEY_PARTS = ["Meta", "iOS", "xAI", "OpenAI", "Llama 3", "GPT-4.5", "U.S.", "Ohio's", "McD"]
NAMEY_PARTS += ["aB", "said", "3", "v2", "é", "É", "_", "'", "-", ".", " ", "\n", "\xa0", "٣"]
NAMEY = st.lists(st.sampled_from(NAMEY_PARTS), max_size=16).map("".join)
NAMEY_TEXT = NAMEY | st.text(alphabet="aAbZz09 .'-_é\u00e9\u2019\t", max_size=40)


def _plain_names(title: str, lead: str) -> tuple[list[str], list[str]]:
    """cluster._names as first written: both patterns searched over the whole text."""
    names: list[str] = []
    versions: list[str] = []
    for text in [lead] if cluster._title_case(title) else [title, lead]:
        text = unicodedata.normalize("NFKC", text).replace("’", "'")
        for hit in cluster._VERSIONED.finditer(text):
            versions.append(f"{hit.group(1).casefold()} {hit.group(2)}")
        for hit in cluster._NAME.finditer(text):
            if cluster._opens_sentence(text, hit.start()):
                continue
            name = cluster._stem(hit.group(0).casefold().rstrip("'-").removesuffix("'s"))
            if name not in cluster._COMMON_NAMES:
                names.append(name)
    return names, versions


@settings(max_examples=400, deadline=None)
@given(NAMEY_TEXT, NAMEY_TEXT)
def test_names_and_versions_are_those_of_the_whole_text_search(title: str, lead: str) -> None:
    assert cluster._names(title, lead) == _plain_names(title, lead)


@settings(max_examples=400, deadline=None)
@given(NAMEY_TEXT)
def test_capitals_and_names_from_them_match_the_patterns(text: str) -> None:
    starts, opens_lower = cluster._capitals(text)
    assert starts == [hit.start() for hit in re.finditer(r"\b[A-Z]", text)]
    assert opens_lower == (re.search(r"\b[a-z]+[A-Z]", text) is not None)
    if not opens_lower:
        expected = [(hit.start(), hit.group()) for hit in cluster._NAME.finditer(text)]
        found = [(hit.start(), hit.group()) for hit in cluster._names_from(text, starts)]
        assert found == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40) | NAMEY_TEXT)
def test_tokens_chunk_by_chunk_are_those_of_the_whole_text(text: str) -> None:
    # Any character at all, every Unicode whitespace among them: no token holds whitespace.
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    pattern = cluster._TOKEN_ASCII if folded.isascii() else cluster._TOKEN
    expected = [token for token in map(cluster._clean, pattern.findall(folded)) if token]
    assert cluster._tokens(text) == expected


def test_no_whitespace_character_can_be_in_a_token() -> None:
    token_char = re.compile(r"[\w$.,']")
    assert not [
        c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace() and token_char.match(c)
    ]

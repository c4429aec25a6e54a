"""The fast paths in bot.cluster agree with the plain definitions they replace."""

from __future__ import annotations

import itertools
import math
import random
import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import cluster
from bot.cluster import Signature, evidence, is_same_story, needed

# Characters that stress the tokeniser: letters, digits, the punctuation tokens may hold,
# every kind of ASCII whitespace str.split() knows (\x1c-\x1f among them), and non-ASCII.
TEXT = st.text(alphabet="aZb Qx9$.,'’-\t\n\x0b\x0c\r\x1c\x1f\u00a0éİﬁ5½", max_size=60)
WORDS = st.lists(
    st.sampled_from(["Meta", "iOS", "xAI", "said", "U.S.", "Llama-5-14B", "a-1-2", "Ohio's"]),
    max_size=12,
)
SET = st.frozensets(st.integers(min_value=0, max_value=12), max_size=8)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_tokens_are_the_pattern_tokens(text: str) -> None:
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    pattern = cluster._TOKEN_ASCII if folded.isascii() else cluster._TOKEN
    expected = [token for token in map(cluster._clean, pattern.findall(folded)) if token]
    assert cluster._tokens(text) == expected


@settings(max_examples=300, deadline=None)
@given(WORDS, TEXT)
def test_glued_sizes_split_as_the_pattern_says(words: list[str], text: str) -> None:
    text = " ".join(words) + text
    assert cluster._split_glued(text) == cluster._GLUED_SIZE.sub(r"\1 \2 ", text)


@settings(max_examples=300, deadline=None)
@given(WORDS, TEXT)
def test_names_match_as_with_backtracking(words: list[str], text: str) -> None:
    text = " ".join(words) + text
    plain = re.compile(r"\b(?:[A-Z]|[a-z]+[A-Z])[\w'-]*(?:\.[A-Za-z]+)*")
    found = [(hit.start(), hit.group()) for hit in cluster._NAME.finditer(text)]
    assert found == [(hit.start(), hit.group()) for hit in plain.finditer(text)]


def _plain_evidence(a: Signature, b: Signature) -> float:
    union = len(a.words | b.words)
    jaccard = len(a.words & b.words) / union if a.words and b.words else 0.0
    points = (
        cluster.POINTS_WORDING * jaccard
        + cluster.POINTS_FIGURE * len(a.figures & b.figures)
        + cluster.POINTS_NAME * len(a.names & b.names)
        + cluster.POINTS_TITLE_WORD * len(a.title & b.title)
        + cluster.POINTS_VERSION * len(a.versions & b.versions)
    )
    if a.versions and b.versions and not a.versions & b.versions:
        points *= 0.2
    return points


SIGNATURES = st.builds(
    Signature,
    SET,
    SET,
    SET,
    SET,
    st.frozensets(st.integers(min_value=0, max_value=2), max_size=2),
    st.none() | st.integers(min_value=-100, max_value=100),
)
GAPS = st.none() | st.integers(-80, 80) | st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=500, deadline=None)
@given(SIGNATURES, SIGNATURES, GAPS)
def test_evidence_and_verdict_follow_the_definition(
    a: Signature, b: Signature, hours_apart: float | None
) -> None:
    points = _plain_evidence(a, b)
    assert evidence(a, b) == points  # exactly: the same float
    gap = hours_apart
    if gap is None and a.hour is not None and b.hour is not None:
        gap = float(a.hour - b.hour)
    expected = points >= needed(gap) and not (gap is not None and abs(gap) > 72.0)
    assert is_same_story(a, b, hours_apart=hours_apart) == expected
    assert not (gap is not None and math.isnan(gap)) or not expected


def test_the_word_sketch_never_changes_a_verdict() -> None:
    """Pairs of story-sized signatures (32-bit word hashes, ~65 words) sharing anything
    from nothing to everything, with figures and names around the threshold: the verdict
    with the sketch's early exit is the verdict of the full evidence."""
    rng = random.Random(11)
    for _ in range(4000):
        pool = [rng.getrandbits(32) for _ in range(130)]
        shared, later = rng.randint(0, 65), rng.randint(0, 30)
        a = Signature(
            frozenset(pool[:65]),
            figures=frozenset(rng.sample(range(6), rng.randint(0, 2))),
            names=frozenset(rng.sample(range(8), rng.randint(0, 3))),
            hour=100,
        )
        b = Signature(
            frozenset(pool[65 - shared : 130 - shared]),
            figures=frozenset(rng.sample(range(6), rng.randint(0, 2))),
            names=frozenset(rng.sample(range(8), rng.randint(0, 3))),
            hour=100 + later,
        )
        expected = evidence(a, b) >= needed(float(later))
        assert is_same_story(a, b) == expected


def test_words_colliding_in_the_sketch_still_count() -> None:
    """Sixty-five shared words that all land on one sketch bit: still copies."""
    words = frozenset(k * 1024 + 7 for k in range(65))
    a, b = Signature(words, hour=10), Signature(words, hour=10)
    assert evidence(a, b) == cluster.POINTS_WORDING and is_same_story(a, b)
    assert a.sketch == b.sketch == 1 << 7 and a.collided == 64


def _plain_sketch(sig: Signature) -> tuple[int, int]:
    sketch = 0
    for word in sig.words:
        sketch |= 1 << (word & cluster._SKETCH_MASK)
    return sketch, len(sig.words) - sketch.bit_count()


@settings(max_examples=300, deadline=None)
@given(st.frozensets(st.integers(min_value=0, max_value=2**32 - 1), max_size=80))
def test_the_sketch_is_one_bit_per_word(words: frozenset[int]) -> None:
    sig = Signature(words)
    assert cluster._sketch(sig) == sig.sketch
    assert (sig.sketch, sig.collided) == _plain_sketch(sig)


def _plain_first_copy(stories: list[list[Signature]], new: Signature) -> int | None:
    hits = [at for at, stored in enumerate(stories) if any(is_same_story(o, new) for o in stored)]
    return hits[0] if hits else None


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.lists(SIGNATURES, max_size=3), max_size=4),
    SIGNATURES,
    st.lists(st.booleans(), max_size=13),
)
def test_first_copy_is_the_first_pairwise_verdict(
    stories: list[list[Signature]], new: Signature, sketched: list[bool]
) -> None:
    # Some sketches worked out beforehand (a cached decoded signature), some not.
    for sig, ahead in zip([new, *itertools.chain(*stories)], sketched, strict=False):
        if ahead:
            cluster._sketch(sig)
    expected = _plain_first_copy(stories, new)
    assert cluster.first_copy(stories, new) == expected
    assert cluster.first_copy(map(iter, stories), new) == expected  # iterables, read once


def test_first_copy_on_story_sized_signatures() -> None:
    """Stories of up to five stored copies around the threshold, hours near the window's
    end and missing, words colliding in the sketch: the first pairwise verdict."""
    rng = random.Random(5)
    hours = [None, 100, 101, 130, 171, 172, 173, 200]
    verdicts: list[int | None] = []

    def story(pool: list[int], at: int) -> Signature:
        return Signature(
            frozenset(pool[at : at + 65]),
            title=frozenset(rng.sample(range(10), rng.randint(0, 4))),
            figures=frozenset(rng.sample(range(6), rng.randint(0, 2))),
            names=frozenset(rng.sample(range(8), rng.randint(0, 3))),
            versions=frozenset(rng.sample(range(3), rng.randint(0, 1))),
            hour=rng.choice(hours),
        )

    for _ in range(1000):
        pool = [rng.getrandbits(32) for _ in range(200)]
        new = story(pool, rng.randint(0, 65))
        stories = [
            [story(pool, rng.randint(0, 130)) for _ in range(rng.randint(1, 5))]
            for _ in range(rng.randint(1, 4))
        ]
        expected = _plain_first_copy(stories, new)
        assert cluster.first_copy(stories, new) == expected
        verdicts.append(expected)
    assert 0.05 < verdicts.count(None) / len(verdicts) < 0.95  # found and not, both often
    assert {0, 1, 2} <= set(verdicts)


GROUP = st.frozensets(st.integers(min_value=0, max_value=2**32 - 1), max_size=12)


@settings(max_examples=300, deadline=None)
@given(GROUP, GROUP, st.sets(st.integers(min_value=0, max_value=2**32 - 1), max_size=6))
def test_the_marks_bound_what_two_groups_share(
    a: frozenset[int], b: frozenset[int], both: set[int]
) -> None:
    """Per group (figures, names, headline words), the marks never count fewer shared
    values than there are: the bound of _reaches stays a bound."""
    a, b = a | both, b | both
    mark_a, collided_a = cluster._mark(a)
    mark_b, collided_b = cluster._mark(b)
    assert mark_a < 2**62 and collided_a == len(a) - bin(mark_a).count("1")
    assert cluster._at_most(mark_a, mark_b, collided_a, collided_b) >= len(a & b)


def test_values_colliding_in_the_marks_still_count() -> None:
    """Headline words that all land on one mark bit: all of them still count."""
    title = frozenset(k * cluster._MARK_BITS + 3 for k in range(9))
    words = frozenset(range(50))
    a, b = Signature(words, title=title, hour=10), Signature(words, title=title, hour=10)
    marks = cluster._marks(a)
    assert marks.title == 1 << 3 and marks.title_collided == 8
    assert is_same_story(a, b) and evidence(a, b) == cluster.POINTS_WORDING + 9 * 0.3


def test_first_stored_copy_is_first_copy_of_the_decoded() -> None:
    """Stored signatures, compared as decoded: the same verdicts as first_copy."""
    rng = random.Random(7)
    pool = [rng.getrandbits(32) for _ in range(200)]

    def story() -> Signature:
        at = rng.randint(0, 130)
        return Signature(
            frozenset(pool[at : at + 65]),
            title=frozenset(rng.sample(range(10), rng.randint(0, 4))),
            figures=frozenset(rng.sample(range(6), rng.randint(0, 2))),
            names=frozenset(rng.sample(range(8), rng.randint(0, 3))),
            hour=rng.choice([None, 100, 120, 180]),
        )

    for _ in range(300):
        new = story()
        stories = [[story() for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(0, 4))]
        stored = [[sig.dumps() for sig in copies] for copies in stories]
        expected = cluster.first_copy(stories, new)
        assert cluster.first_stored_copy(stored, new.dumps()) == expected
        assert cluster.decoded(new.dumps()) == new


def test_decoded_keeps_two_generations() -> None:
    recent = cluster._Decoded(2)
    texts = [Signature(frozenset({n}), hour=n).dumps() for n in range(5)]
    first = recent.get(texts[0])
    assert recent.get(texts[0]) is first
    recent.get(texts[1])
    recent.get(texts[2])  # the newer generation was full: t0 and t1 are the older now
    assert recent.get(texts[0]) is first  # found there, and kept again
    for text in texts[1:]:
        recent.get(text)
    assert recent.get(texts[0]) is not first  # dropped with the older generation
    assert recent.get(texts[4]) == Signature.loads(texts[4])

"""Per-word caches stay bounded however large the vocabulary (a long-running parse worker
sees new names and numbers every day)."""

from __future__ import annotations

import random

from bot import cluster, tagger
from bot.caches import WORD_CACHE, Memo
from bot.claims import query
from bot.pack import load_pack


def test_per_word_caches_never_pass_their_size() -> None:
    rng = random.Random(5)
    letters = "bcdfghklmnprstvz"
    words = {
        "".join(rng.choice(letters) + rng.choice("aeiou") for _ in range(4)) for _ in range(60_000)
    }
    vocabulary = sorted(words)
    tag = tagger.Tagger(load_pack())
    find_terms = query.TermFinder(frozenset(vocabulary[::7]))
    for start in range(0, len(vocabulary), 200):
        text = " ".join(
            f"{word}." if n % 9 == 0 else word
            for n, word in enumerate(vocabulary[start : start + 200])
        )
        title = " ".join(vocabulary[start : start + 8]).title()
        tag.tag(title, text)
        tag.tag(title, text, candidates_if_irrelevant=False)  # as ingest tags
        cluster.band_keys(cluster.signature(title, text))
        query.words_of(text)
        find_terms(text)
    assert len(vocabulary) > 2 * WORD_CACHE  # every cache was offered more than it holds
    sizes = {
        "cluster clean": cluster._clean.cache_info().currsize,
        "cluster hash": cluster._hash32.cache_info().currsize,
        "cluster minhash rows": cluster._row_lanes.cache_info().currsize,
        "cluster chunk tokens": len(cluster._CHUNK_TOKENS),
        "cluster hash memo": len(cluster._HASHES),
        "cluster minhash memo": len(cluster._LANES),
        "tagger codes": len(tag._coder),
        "tagger runs": len(tag._runs),
        "tagger headline peers": len(tag._peer_led),
        "tagger stems": len(tagger._STEMS),
        "tagger tokens": len(tagger._TOKENS),
        "tagger bounds": len(tagger._BOUNDS),
        "query chunks": len(query._CHUNK_FORMS),
        "query forms": query._forms.cache_info().currsize,
        "query terms": len(query._IS_TERM),
        "query idle chunks": len(find_terms._idle),
    }
    assert max(sizes.values()) <= WORD_CACHE, sizes
    assert sizes["query forms"] == WORD_CACHE  # and they are used


def test_a_memo_computes_each_key_once_and_stays_bounded() -> None:
    calls: list[str] = []

    def upper(key: str) -> str:
        calls.append(key)
        return key.upper()

    memo: Memo[str, str] = Memo(upper, limit=8)
    for round_ in range(3):
        keys = [f"k{n % 5 + round_}" for n in range(20)]
        assert list(map(memo.__getitem__, keys)) == [key.upper() for key in keys]
        assert len(memo) <= 8
    assert len(calls) < 3 * 20  # keys already seen were not computed again

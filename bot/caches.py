"""Per-process caches of per-word work (stems, tokens, hashes...): their one size, and
the bounded memo dict most of them are.

News vocabulary repeats, so tokenising, stemming and hashing each distinct word once per
process saves much of the parse workers' time; but real coverage brings new names and
numbers every day, and a cache that is never full grows without end (a worker reached
~135 MB on a 150,000-word vocabulary with the earlier sizes). At this size each cache
holds the words that make up most text (word frequencies fall off steeply), and a
worker's caches stay within ~20 MB (~35 MB of RSS on that 150,000-word vocabulary).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

WORD_CACHE = 1 << 14  # entries in each cache

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class Memo(dict[_K, _V]):
    """key -> compute(key), filled on demand and emptied when it reaches `limit` entries.

    Looked up with ``map(memo.__getitem__, keys)``, a key already seen costs a bare dict
    lookup run from C, where a call to an lru_cache builds an argument tuple first (several
    times the cost). Emptying when full is crude, but rare: news vocabulary repeats.
    """

    def __init__(self, compute: Callable[[_K], _V], limit: int = WORD_CACHE) -> None:
        super().__init__()
        self.compute = compute
        self.limit = limit

    def __missing__(self, key: _K) -> _V:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value = self.compute(key)
        return value

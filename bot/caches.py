"""The size of the per-process caches of per-word work (stems, tokens, hashes...).

News vocabulary repeats, so tokenising, stemming and hashing each distinct word once per
process saves much of the parse workers' time; but real coverage brings new names and
numbers every day, and a cache that is never full grows without end (a worker reached
~135 MB on a 150,000-word vocabulary with the earlier sizes). At this size each cache
holds the words that make up most text (word frequencies fall off steeply), and a
worker's caches stay within ~20 MB (~35 MB of RSS on that 150,000-word vocabulary).
"""

from __future__ import annotations

WORD_CACHE = 1 << 14  # entries in each cache

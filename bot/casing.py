"""Lower-casing as CPython does it, for the compiled modules (bot.compiled).

Compiled by mypyc, ``str.lower()`` maps letter by letter and misses the one rule that
looks at context: a Greek capital sigma ending a word becomes the final form ("ΟΔΟΣ" ->
"οδος", not "οδοσ"). Tokens, hosts and claim keys would then differ between a compiled
and a pure install. This module is never compiled, so ``text.lower()`` here is CPython's.
"""

from __future__ import annotations


def lower(text: str) -> str:
    return text.lower()

"""Figures in text: find them, normalise them to a value and a unit, and compare them.

"350k H100s", "350,000 H100 GPUs" and "350 thousand H100s" all become
``Figure(350000, 350000, "H100 GPUs", "gpu_count")``; "$7-10B" becomes a USD range;
"hundreds of millions of users" a wide, approximate range.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bot.casing import lower
from bot.compiled import by_fields

MULTIPLIERS: dict[str, float] = {
    "k": 1e3,
    "thousand": 1e3,
    "thousands": 1e3,
    "m": 1e6,
    "mn": 1e6,
    "mil": 1e6,
    "mln": 1e6,
    "million": 1e6,
    "millions": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "bil": 1e9,
    "billion": 1e9,
    "billions": 1e9,
    "t": 1e12,
    "tn": 1e12,
    "trillion": 1e12,
}
WORD_NUMBERS: dict[str, float] = {
    "a": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twenty": 20,
    "fifty": 50,
    "hundred": 100,
}
# Vague magnitudes: "tens of thousands", "hundreds of millions", "billions".
VAGUE: dict[str, float] = {"tens": 10, "hundreds": 100}

# (pattern on the words after a number, unit, kind); first hit wins.
UNITS: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"^h100[- ]?equivalents?\b"), "H100-equivalents", "compute"),
    (re.compile(r"^(nvidia )?(h100|gpu|chip|graphics)"), "H100 GPUs", "gpu_count"),
    (re.compile(r"^(dense )?(parameters?|params?)\b"), "parameters", "parameters"),
    (re.compile(r"^(monthly (active )?users?|mau|monthly actives?)\b"), "monthly users", "users"),
    (re.compile(r"^(daily )?(users?|people|customers)\b"), "users", "users"),
    (re.compile(r"^(dollars?|usd)\b"), "USD", "money"),
    (re.compile(r"^(gw|gigawatts?)\b"), "watts", "power"),
    (re.compile(r"^(mw|megawatts?)\b"), "watts", "power"),
    (re.compile(r"^(%|percent|per cent)"), "percent", "share"),
    (re.compile(r"^years?\b"), "years", "duration"),
]
POWER_SCALE = {"g": 1e9, "m": 1e6}
_HEDGES = (
    "about",
    "around",
    "roughly",
    "approximately",
    "nearly",
    "almost",
    "close to",
    "some",
    "up to",
    "~",
    "circa",
)
HEDGE_RE = re.compile(rf"({'|'.join(_HEDGES)})\s*$", re.IGNORECASE)

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_MULT = r"k|thousands?|millions?|mn|mln|mil|m|billions?|bn|bil|b|trillion|tn|t"
# The lookahead names every character a figure can start with: it changes no match, but
# lets the scan skip other positions quickly (about 3x faster on news text).
FIGURE_RE = re.compile(
    r"(?=[$u\d])"
    rf"(?P<cur>\$|us\$|usd\s?)?(?P<num>{_NUM})(?:\s?(?P<m1>{_MULT})\b)?"
    rf"(?:\s?(?:-|–|to)\s?\$?(?P<num2>{_NUM})(?:\s?(?P<m2>{_MULT})\b)?)?"
    rf"(?P<pct>\s?%)?",
    re.IGNORECASE,
)
# A number figure holds a digit, and at most this many characters ("usd ") precede it.
_DIGIT = re.compile(r"\d")
_ASCII_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_MAX_PREFIX = 4
WORD_FIGURE_RE = re.compile(
    r"\b(?P<cur>\$)?(?P<word>a|one|two|three|four|five|six|seven|eight|nine|ten|twenty|fifty"
    r"|tens of|hundreds of)\s+(?P<mult>thousands?|millions?|billions?|trillion)\b"
    r"|\b(?P<plural>billions|millions)\b(?! of (?:millions|billions))",
    re.IGNORECASE,
)


# Characters that IGNORECASE matches to a lower-case ASCII letter although lower() does not
# turn them into it (checked over all of Unicode): dotted and dotless I, long S.
_ODD_CASES = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s"})


def fold_case(text: str) -> str:
    """``text`` lowered so that an ASCII phrase occurs in it exactly where a re.IGNORECASE
    search for the phrase would match: substring tests on it are cheap stand-ins for such
    searches (each character keeps its place)."""
    if not text.isascii() and ("\u0130" in text or "\u0131" in text or "\u017f" in text):
        text = text.translate(_ODD_CASES)
    return lower(text)


@dataclass(frozen=True, slots=True)
class Figure:
    """A quantity: a point (low == high) or a range, in the base unit of ``unit``."""

    low: float
    high: float
    unit: str = ""
    kind: str = ""
    approx: bool = False
    text: str = ""

    def __reduce__(self) -> tuple[type[Any], tuple[object, ...]]:
        return by_fields(self)

    @property
    def value(self) -> float:
        return self.low if self.low == self.high else math.sqrt(self.low * self.high)

    @property
    def is_range(self) -> bool:
        return self.high > self.low

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"unit": self.unit, "kind": self.kind, "approx": self.approx}
        if self.is_range:
            out |= {"low": self.low, "high": self.high}
        else:
            out["value"] = self.low
        out["text"] = self.text
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Figure:
        def num(key: str) -> float:
            raw = data[key]
            if not isinstance(raw, int | float) or isinstance(raw, bool):
                raise ValueError(f"figure {key} must be a number, got {raw!r}")
            return float(raw)

        low, high = (num("low"), num("high")) if "low" in data else (num("value"),) * 2
        if low > high or low < 0:
            raise ValueError(f"bad figure range {low}..{high}")
        return cls(
            low=low,
            high=high,
            unit=str(data.get("unit", "")),
            kind=str(data.get("kind", "")),
            approx=bool(data.get("approx", False)),
            text=str(data.get("text", "")),
        )


@dataclass(frozen=True, slots=True)
class FoundFigure:
    figure: Figure
    start: int
    end: int


def _to_float(raw: str) -> float:
    return float(raw.replace(",", ""))


def _mult(raw: str | None) -> float:
    # fold_case, not lower(): the patterns also match "mıllion" and "thouſand".
    return MULTIPLIERS[fold_case(raw)] if raw else 1.0


def _unit_after(text: str, end: int, currency: bool) -> tuple[str, str, int]:
    """The unit named right after a number, and where it ends; money wins when a $ led."""
    rest = lower(text[end : end + 40])
    stripped = rest.lstrip(" -")
    offset = len(rest) - len(stripped)
    for skip in ("", "of "):
        probe = stripped[len(skip) :] if stripped.startswith(skip) else None
        if probe is None:
            continue
        for pattern, unit, kind in UNITS:
            hit = pattern.match(probe)
            if hit:
                if currency and kind != "money":
                    return "USD", "money", end
                return unit, kind, end + offset + len(skip) + hit.end()
    return ("USD", "money", end) if currency else ("", "", end)


def _scale_power(text: str, unit: str, low: float, high: float) -> tuple[float, float]:
    if unit != "watts":
        return low, high
    factor = POWER_SCALE["g"] if lower(text).lstrip(" -").startswith("g") else POWER_SCALE["m"]
    return low * factor, high * factor


def _figure_matches(text: str) -> Iterator[re.Match[str]]:
    """What ``FIGURE_RE.finditer(text)`` finds, running the pattern only next to digits.

    Every match holds a digit and starts at most _MAX_PREFIX characters before it, and a
    digit always starts one, so the next match after ``pos`` starts within _MAX_PREFIX
    characters before the next digit, and searching from there finds it. The digit scan is
    far cheaper than trying the pattern at every position.
    """
    next_digit = _digit_finder(text)
    pos = 0
    while (digit := next_digit(pos)) >= 0:
        hit = FIGURE_RE.search(text, max(pos, digit - _MAX_PREFIX))
        if hit is None:  # cannot happen (see above); stop rather than loop
            return
        yield hit
        pos = hit.end()


def _digit_finder(text: str) -> Callable[[int], int]:
    """A function giving the position of the first digit at or after a position, or -1."""
    if text.isascii():
        # A byte search is far cheaper than a regex scan: make every digit a "0" first.
        digits = text.encode("ascii").translate(_ASCII_DIGITS_AS_ZERO)
        return functools.partial(digits.find, b"0")

    def next_digit(pos: int) -> int:
        digit = _DIGIT.search(text, pos)
        return -1 if digit is None else digit.start()

    return next_digit


def _hedged(before: str) -> bool:
    """Whether ``HEDGE_RE`` matches ``before`` (a hedge, then only whitespace), cheaper."""
    return fold_case(before).rstrip().endswith(_HEDGES)


# A figure found in a text, with its span: (start, end, figure). Tuples, not FoundFigure,
# while figures are being found: extract_figures needs no span objects.
_Hit = tuple[int, int, Figure]


def _new_figure(low: float, high: float, unit: str, kind: str, approx: bool, text: str) -> Figure:
    """``Figure(low, high, unit, kind, approx, text)``, made without the dataclass's
    __init__, which runs as Python even when this module is compiled (and costs several
    times more)."""
    figure = Figure.__new__(Figure)
    set_field = object.__setattr__  # the class is frozen
    set_field(figure, "low", low)
    set_field(figure, "high", high)
    set_field(figure, "unit", unit)
    set_field(figure, "kind", kind)
    set_field(figure, "approx", approx)
    set_field(figure, "text", text)
    return figure


def _numeric_figures(text: str) -> list[_Hit]:
    found: list[_Hit] = []
    for hit in _figure_matches(text):
        start = hit.start()
        # A number glued to letters on its left is a name ("H100", "GPT4"), not a figure.
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "."):
            continue
        if hit.end() < len(text) and text[hit.end()].isalnum():
            continue  # "3rd", "2x" and model names such as "4o"
        m1, m2 = hit.group("m1"), hit.group("m2")
        low = _to_float(hit.group("num"))
        high = _to_float(hit.group("num2")) if hit.group("num2") else low
        if hit.group("num2"):
            # "$7-10B": a multiplier written once applies to both ends.
            low *= _mult(m1 or m2)
            high *= _mult(m2 or m1)
        else:
            low = high = low * _mult(m1)
        currency = bool(hit.group("cur"))
        if hit.group("pct"):
            unit, kind, end = "percent", "share", hit.end()
        else:
            unit, kind, end = _unit_after(text, hit.end(), currency)
            low, high = _scale_power(text[hit.end() :], unit, low, high)
        if not (currency or m1 or m2 or unit or low >= 1000 or hit.group("num2")):
            continue  # a bare small number ("3", "2024") is a version or a year, not a figure
        if not unit and not m1 and 1900 <= low <= 2100 and "," not in hit.group("num"):
            continue  # a year
        if low > high:
            low, high = high, low
        approx = _hedged(text[max(0, start - 20) : start])
        found.append((start, end, _new_figure(low, high, unit, kind, approx, hit.group(0))))
    return found


# Every WORD_FIGURE_RE match holds one of these (in any case), in its multiplier word.
_MULTIPLIER_HINTS = ("illion", "thousand")
_WORD_PREFIX = len("$hundreds of")  # the most a match holds before its run of spaces
_WORD_SUFFIX = len("thousands") + len(" of millions") + 2  # what a match and its checks read


def _word_matches(text: str) -> Iterator[re.Match[str]]:
    """What ``WORD_FIGURE_RE.finditer(text)`` finds, running the pattern only around
    multiplier words (an IGNORECASE search over a whole text is slow, and most name none).

    A match is ``$?<number word><spaces><multiplier>`` or a plural multiplier. Take the
    next hint at or after `seek`: a match that starts at or before it must hold it (nothing
    before a match's multiplier can hold a hint), so it starts at most _WORD_PREFIX before
    the spaces that precede the hint's word, and ends, with everything its checks read,
    within _WORD_SUFFIX after the hint. A search over that window finds it, or shows there
    is none and the next match starts past the hint.
    """
    folded = fold_case(text)  # same positions as text
    pos = seek = 0  # finditer resumes at pos; hints before seek hold no match
    while (hint := _next_hint(folded, seek)) >= 0:
        spaces = max(0, hint - 2)  # "trillion": the word starts up to 2 before its hint
        while spaces > 0 and text[spaces - 1].isspace():
            spaces -= 1
        window_end = min(len(text), hint + _WORD_SUFFIX)
        hit = WORD_FIGURE_RE.search(text, max(pos, spaces - _WORD_PREFIX), window_end)
        if hit is not None and hit.start() <= hint:
            yield hit
            pos = seek = hit.end()
        else:
            seek = hint + 1


def _next_hint(folded: str, start: int) -> int:
    found = [at for hint in _MULTIPLIER_HINTS if (at := folded.find(hint, start)) >= 0]
    return min(found, default=-1)


def _word_figures(text: str) -> list[_Hit]:
    found: list[_Hit] = []
    for hit in _word_matches(text):
        if hit.group("plural"):
            base = MULTIPLIERS[fold_case(hit.group("plural"))]
            low, high, approx = base, base * 100, True
        else:
            word = fold_case(hit.group("word"))
            mult = MULTIPLIERS[fold_case(hit.group("mult"))]
            vague = VAGUE.get(word.removesuffix(" of"))
            if vague:
                low, high, approx = vague * mult, vague * mult * 10, True
            else:
                low = high = WORD_NUMBERS[word] * mult
                approx = False
        unit, kind, end = _unit_after(text, hit.end(), bool(hit.group("cur")))
        low, high = _scale_power(text[hit.end() :], unit, low, high)
        figure = _new_figure(low, high, unit, kind, approx, hit.group(0))
        found.append((hit.start(), end, figure))
    return found


def find_figures(text: str) -> list[FoundFigure]:
    """Every figure in ``text`` with its span, in reading order, overlaps removed."""
    return [FoundFigure(figure, start, end) for start, end, figure in _hits(text)]


def extract_figures(text: str) -> list[Figure]:
    return [figure for _, _, figure in _hits(text)]


def _hits(text: str) -> list[_Hit]:
    """What find_figures gives, as (start, end, figure)."""
    hits = _numeric_figures(text) + _word_figures(text)
    if len(hits) < 2:
        return hits  # nothing to order or to drop
    hits.sort(key=lambda hit: (hit[0], -hit[1]))
    kept: list[_Hit] = []
    for hit in hits:
        if kept and hit[0] < kept[-1][1]:
            continue
        kept.append(hit)
    return kept


def may_hold_figure(text: str, folded: str) -> bool:
    """False only when ``extract_figures(text)`` finds nothing (`folded` is
    ``fold_case(text)``): every figure holds a digit or a multiplier word ("two million",
    "thousands of"). Much cheaper than looking."""
    return _DIGIT.search(text) is not None or any(map(folded.__contains__, _MULTIPLIER_HINTS))


COMPATIBLE = {frozenset({"gpu_count", "compute"}): 0.7}


def _kind_factor(query: Figure, claim: Figure) -> float:
    if not query.kind or not claim.kind:
        return 0.85
    if query.kind == claim.kind:
        return 1.0
    return COMPATIBLE.get(frozenset({query.kind, claim.kind}), 0.0)


def _range_score(spread: float) -> float:
    """How much a hit inside a range is worth: narrow ranges are nearly exact."""
    if spread <= 1.5:
        return 0.9
    if spread <= 3:
        return 0.5
    return 0.3


def match_figure(query: Figure, claim: Figure) -> float:
    """How well a figure typed by a user matches a figure a claim carries, in [0, 1]."""
    factor = _kind_factor(query, claim)
    if factor == 0.0 or query.high <= 0 or claim.high <= 0:
        return 0.0
    if not query.is_range and not claim.is_range:
        gap = abs(query.low - claim.low) / max(query.low, claim.low)
        tolerance = 0.1 if (query.approx or claim.approx) else 0.02
        return factor if gap <= 0.02 else (0.9 * factor if gap <= tolerance else 0.0)
    if query.is_range and claim.is_range:
        same = math.isclose(query.low, claim.low, rel_tol=0.02) and math.isclose(
            query.high, claim.high, rel_tol=0.02
        )
        if same:
            return factor
        overlap = min(query.high, claim.high) >= max(query.low, claim.low)
        return 0.5 * factor if overlap else 0.0
    point, span = (query, claim) if claim.is_range else (claim, query)
    if span.low * 0.98 <= point.low <= span.high * 1.02:
        return _range_score(span.high / max(span.low, 1e-9)) * factor
    return 0.0


def figure_tokens(figure: Figure) -> list[str]:
    """Search tokens that let a full-text index find a figure: exact value and decade(s)."""
    tokens: list[str] = []
    if not figure.is_range:
        tokens.append(exact_token(figure.low))
    for decade in range(_decade(figure.low), _decade(figure.high) + 1):
        tokens.append(f"fd{decade}")
    return tokens


def query_figure_tokens(figure: Figure) -> list[str]:
    tokens = [] if figure.is_range else [exact_token(figure.low)]
    tokens += [f"fd{d}" for d in range(_decade(figure.low), _decade(figure.high) + 1)]
    return tokens


def exact_token(value: float) -> str:
    mantissa = f"{value:.3g}".replace(".", "p").replace("+", "").replace("-", "m")
    return f"fx{mantissa}"


def _decade(value: float) -> int:
    return math.floor(math.log10(value)) if value > 0 else 0

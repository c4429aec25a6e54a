"""Turn the text people type after `/claim` or `/brief` into a typed request.

Forgiving on purpose: subcommands are case-insensitive and have short forms (`sub`, `unsub`),
curly quotes count as quotes, spaces and invisible characters are tidied up. Whatever the
input, the result is a ``Request`` or a ``ParseProblem`` with a usage line; nothing raises.

Themes and phrases: a quoted argument is always a phrase. Unquoted text that names a theme
(its id or its name, any case) is that theme. Unquoted text of several words that names no
theme is taken as a phrase (`/brief subscribe Llama 4` follows "Llama 4"). A single unquoted
word that names no theme is most likely a typo of one, so it is refused with suggestions;
to follow a one-word phrase, quote it.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from bot.commands.helptext import USAGE
from bot.commands.requests import (
    ClaimLookup,
    Delivery,
    DigestEmpty,
    DigestNow,
    DigestOff,
    DigestSchedule,
    DigestShow,
    FeedsAdd,
    FeedsList,
    FeedsRemove,
    ListSubscriptions,
    ListThemes,
    ParseProblem,
    Request,
    ShowHelp,
    Subscribe,
    SubscriptionKind,
    Unsubscribe,
)

MAX_TEXT_CHARS = 4000
MAX_CLAIM_CHARS = 2000
MAX_URL_CHARS = 2048
PHRASE_MIN, PHRASE_MAX = 2, 100

_QUOTES = str.maketrans({c: '"' for c in "“”„‟«»〝〞＂"} | {c: "'" for c in "‘’‚‛"})
_DELIVERIES: dict[str, Delivery] = {"dm": "dm", "here": "here"}
_SUBCOMMANDS = {
    "subscribe": "subscribe",
    "sub": "subscribe",
    "follow": "subscribe",
    "unsubscribe": "unsubscribe",
    "unsub": "unsubscribe",
    "unfollow": "unsubscribe",
    "subscriptions": "subscriptions",
    "subs": "subscriptions",
    "themes": "themes",
    "theme": "themes",
    "topics": "themes",
    "digest": "digest",
    "feeds": "feeds",
    "feed": "feeds",
    "help": "help",
    "?": "help",
}
_CANONICAL = tuple(dict.fromkeys(_SUBCOMMANDS.values()))
_SUBSCRIPTION_ID = re.compile(r"^#?(\d{1,9})$")
_SINGLE_QUOTED = re.compile(r"'(.*?)'(?=\s|$)", re.DOTALL)


@dataclass(frozen=True)
class Token:
    text: str
    quoted: bool = False


@dataclass(frozen=True)
class _Themes:
    ids: Collection[str]
    names: Mapping[str, str]

    def resolve(self, text: str) -> str | None:
        folded = " ".join(text.lower().split())
        slug = re.sub(r"[\s_]+", "-", folded)
        for theme_id in self.ids:
            if theme_id.lower() in (folded, slug):
                return theme_id
        for theme_id, name in self.names.items():
            if theme_id in self.ids and " ".join(name.lower().split()) == folded:
                return theme_id
        return None

    def suggest(self, text: str, limit: int = 3) -> tuple[str, ...]:
        word = text.lower().strip()
        scored: list[tuple[float, str]] = []
        for theme_id in self.ids:
            score = max(_ratio(word, alias) for alias in self._aliases(theme_id))
            if score >= 0.7:
                scored.append((score, theme_id))
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return tuple(theme_id for _, theme_id in scored[:limit])

    def _aliases(self, theme_id: str) -> list[str]:
        lowered = theme_id.lower()
        aliases = [
            lowered,
            lowered.replace("-", ""),
            *(p for p in lowered.split("-") if len(p) > 2),
        ]
        name = self.names.get(theme_id, "").lower()
        if name:
            aliases += [name, *(w for w in re.findall(r"\w+", name) if len(w) > 3)]
        return aliases


def parse_command(
    command: str,
    text: str,
    *,
    theme_ids: Collection[str],
    theme_names: Mapping[str, str] | None = None,
) -> Request | ParseProblem:
    """Parse one slash command. ``command`` is "/claim" or "/brief" (slash optional)."""
    name = clean(command).strip().lstrip("/").lower()
    cleaned = clean(text)
    if name == "claim":
        return _parse_claim(cleaned)
    if name != "brief":
        return ParseProblem(f"I don't know the command /{name[:30]}.", USAGE["brief"])
    if len(cleaned) > MAX_TEXT_CHARS:
        return ParseProblem("That is too long for a command.", USAGE["brief"])
    themes = _Themes(theme_ids, theme_names or {})
    return _parse_brief(tokenize(cleaned), themes)


def clean(text: str) -> str:
    """Curly quotes to straight ones; control characters to spaces; invisible ones dropped."""
    out: list[str] = []
    for char in text.translate(_QUOTES):
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp"):
            out.append(" ")
        elif category not in ("Cf", "Cs"):
            out.append(char)
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    """Split on whitespace; a double- or single-quoted run is one token (quotes removed).

    An unclosed double quote runs to the end. A single quote opens only at a token start
    and closes only before whitespace, so apostrophes ("Meta's") stay inside words.
    """
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
        elif text[i] == '"':
            close = text.find('"', i + 1)
            end = n if close < 0 else close
            tokens.append(Token(text[i + 1 : end], quoted=True))
            i = end + 1
        elif text[i] == "'" and (match := _SINGLE_QUOTED.match(text, i)):
            tokens.append(Token(match.group(1), quoted=True))
            i = match.end()
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            tokens.append(Token(text[i:j]))
            i = j
    return tokens


def _parse_claim(text: str) -> ClaimLookup | ParseProblem:
    query = " ".join(text.split())
    if not query:
        return ParseProblem("Tell me what to look up.", USAGE["claim"])
    if len(query) > MAX_CLAIM_CHARS:
        return ParseProblem("That is too long to look up; try a few key words.", USAGE["claim"])
    return ClaimLookup(query)


def _parse_brief(tokens: list[Token], themes: _Themes) -> Request | ParseProblem:
    if not tokens:
        return ShowHelp()
    word = tokens[0].text.lower()
    sub = _SUBCOMMANDS.get(word)
    args = tokens[1:]
    if sub is None:
        guesses = tuple(difflib.get_close_matches(word, _CANONICAL, n=2, cutoff=0.6))
        return _problem(f"I don't know `{_show(word)}`.", "brief", guesses)
    parsers: dict[str, Callable[[list[Token], _Themes], Request | ParseProblem]] = {
        "subscribe": _parse_subscribe,
        "unsubscribe": _parse_unsubscribe,
        "subscriptions": lambda _a, _t: ListSubscriptions(),
        "themes": lambda _a, _t: ListThemes(),
        "digest": lambda a, _t: _parse_digest(a),
        "feeds": lambda a, _t: _parse_feeds(a),
        "help": lambda a, _t: ShowHelp(a[0].text.lower()[:30] if a else None),
    }
    return parsers[sub](args, themes)


def _split_delivery(args: list[Token]) -> tuple[list[Token], Delivery | None]:
    if args and not args[-1].quoted and args[-1].text.lower() in _DELIVERIES:
        return args[:-1], _DELIVERIES[args[-1].text.lower()]
    return args, None


def _parse_subscribe(args: list[Token], themes: _Themes) -> Request | ParseProblem:
    args, delivery = _split_delivery(args)
    target = _parse_target(args, themes, "subscribe")
    if isinstance(target, ParseProblem):
        return target
    kind, value = target
    return Subscribe(kind, value, delivery or "dm")


def _parse_unsubscribe(args: list[Token], themes: _Themes) -> Request | ParseProblem:
    args, delivery = _split_delivery(args)
    if len(args) == 1 and not args[0].quoted and (m := _SUBSCRIPTION_ID.match(args[0].text)):
        return Unsubscribe("id", str(int(m.group(1))), delivery)
    target = _parse_target(args, themes, "unsubscribe")
    if isinstance(target, ParseProblem):
        return target
    kind, value = target
    return Unsubscribe(kind, value, delivery)


def _parse_target(
    args: list[Token], themes: _Themes, topic: str
) -> tuple[SubscriptionKind, str] | ParseProblem:
    """A theme id or a phrase, see the module docstring for how they are told apart."""
    if not args:
        return _problem("Say which theme or phrase.", topic)
    if any(t.quoted for t in args):
        if len(args) > 1:
            joined = " ".join(t.text for t in args)[:PHRASE_MAX]
            return _problem("Put the whole phrase in quotes.", topic, (f'"{joined}"',))
        return _phrase(args[0].text, topic)
    text = " ".join(t.text for t in args)
    theme_id = themes.resolve(text)
    if theme_id is not None:
        return ("theme", theme_id)
    if len(args) > 1:
        return _phrase(text, topic)
    guesses = themes.suggest(text)
    hint = "" if guesses else " See `/brief themes`."
    return _problem(
        f"There is no theme `{_show(text)}`.{hint} To follow a phrase, put it in quotes.",
        topic,
        guesses,
    )


def _phrase(text: str, topic: str) -> tuple[SubscriptionKind, str] | ParseProblem:
    phrase = " ".join(text.split())
    if not PHRASE_MIN <= len(phrase) <= PHRASE_MAX:
        return _problem(f"A phrase needs {PHRASE_MIN} to {PHRASE_MAX} characters.", topic)
    if not any(c.isalnum() for c in phrase):
        return _problem("A phrase needs at least one letter or digit.", topic)
    return ("phrase", phrase)


def _parse_digest(args: list[Token]) -> Request | ParseProblem:
    if not args:
        return DigestShow()
    word = args[0].text.lower()
    rest = args[1:]
    if word in ("status", "show", "info") and not rest:
        return DigestShow()
    if word == "now" and not rest:
        return DigestNow()
    if word in ("off", "stop", "disable") and not rest:
        return DigestOff()
    if word in ("schedule", "at", "set"):
        return _parse_schedule(rest)
    if word in ("empty", "quiet"):
        return _parse_empty(rest)
    if parse_time(word) is not None:
        return _parse_schedule(args)
    known = ("now", "schedule", "off", "empty")
    guesses = tuple(difflib.get_close_matches(word, known, n=1, cutoff=0.6))
    return _problem(f"I don't know `digest {_show(word)}`.", "digest", guesses)


def _parse_empty(args: list[Token]) -> DigestEmpty | ParseProblem:
    words = [a.text.lower() for a in args]
    if words in (["line"], ["post"], ["show"]):
        return DigestEmpty("line")
    if words in (["skip"], ["nothing"], ["silent"]):
        return DigestEmpty("skip")
    return _problem("Say `line` (post a short line) or `skip` (post nothing).", "digest empty")


def _parse_schedule(args: list[Token]) -> DigestSchedule | ParseProblem:
    words = [t.text for t in args]
    if len(words) >= 2 and words[1].lower() in ("am", "pm"):
        words = [words[0] + words[1], *words[2:]]
    if not words:
        return _problem("Give the time of day for the digest.", "digest schedule")
    time = parse_time(words[0])
    if time is None:
        return _problem(
            f"`{_show(words[0])}` is not a time; use HH:MM (24 h), e.g. 09:00.", "digest schedule"
        )
    zone: str | None = None
    days: set[int] = set()
    for word in words[1:]:
        found_zone = parse_zone(word)
        found_days = parse_days(word) if found_zone is None else None
        if found_zone is not None and zone is not None and found_zone != zone:
            return _problem("Give one time zone only.", "digest schedule")
        if found_zone is not None:
            zone = found_zone
        elif found_days is not None:
            days |= found_days
        else:
            return _problem(
                f"`{_show(word)}` is neither a time zone (Area/City) nor days.",
                "digest schedule",
                suggest_zones(word),
            )
    return DigestSchedule(time, zone, format_days(days) if days else None)


def _parse_feeds(args: list[Token]) -> Request | ParseProblem:
    if not args or (args[0].text.lower() in ("list", "ls", "show") and len(args) == 1):
        return FeedsList()
    action = args[0].text.lower()
    if action not in ("add", "remove", "rm", "delete", "del") or len(args) != 2:
        return _problem("Say `list`, or `add` or `remove` and one URL.", "feeds")
    url = _unwrap_link(args[1].text)
    if not url or len(url) > MAX_URL_CHARS:
        return _problem("That is not a usable URL.", "feeds")
    return FeedsAdd(url) if action == "add" else FeedsRemove(url)


def _unwrap_link(text: str) -> str:
    """Chat clients wrap links as <url> or <url|label>; take the URL."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].split("|", 1)[0]
    return text.strip()


def _problem(message: str, topic: str, suggestions: Sequence[str] = ()) -> ParseProblem:
    if suggestions:
        message += " Did you mean " + " or ".join(f"`{s}`" for s in suggestions) + "?"
    return ParseProblem(message, USAGE[topic], tuple(suggestions))


def _show(text: str) -> str:
    """Echo user text back briefly and without markup-breaking backticks."""
    text = text.replace("`", "'")
    return text if len(text) <= 40 else text[:39] + "…"


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


# --- schedule specs: times, zones and days, as typed and as stored on the channel row ---

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS = frozenset(range(7))
_DAY_ALIASES = (
    {name: i for i, name in enumerate(DAY_NAMES)}
    | {
        full: i
        for i, full in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    }
    | {"tues": 1, "weds": 2, "thur": 3, "thurs": 3}
)
_DAY_SETS = {
    "daily": ALL_DAYS,
    "everyday": ALL_DAYS,
    "weekdays": frozenset(range(5)),
    "workdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "weekend": frozenset({5, 6}),
}
_TIME_24H = re.compile(r"^(\d{1,2}):(\d{2})$")
_TIME_12H = re.compile(r"^(\d{1,2})(?::(\d{2}))?(am|pm)$")


def parse_time(text: str) -> str | None:
    """ "9:00", "09:00", "21:30", "9am", "9:30pm" -> "HH:MM"; anything else -> None."""
    text = text.strip().lower()
    if m := _TIME_24H.match(text):
        hour, minute = int(m.group(1)), int(m.group(2))
    elif m := _TIME_12H.match(text):
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if m.group(3) == "pm" else 0)
    else:
        return None
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


@lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    """Lower-cased IANA Area/City names (and UTC) -> their proper spelling."""
    names = {
        z for z in available_timezones() if "/" in z and not z.startswith(("posix/", "right/"))
    }
    return {z.lower(): z for z in names | {"UTC"}}


def parse_zone(text: str) -> str | None:
    return _zones().get(text.strip().lower())


def suggest_zones(text: str, limit: int = 3) -> tuple[str, ...]:
    """Zones that look like what was typed: a misspelt Area/City, or a bare city name."""
    word = text.strip().lower().replace(" ", "_")
    if not word or len(word) > 64:
        return ()
    zones = _zones()
    by_city = sorted(v for k, v in zones.items() if k.rsplit("/", 1)[-1] == word)
    if by_city:
        return tuple(by_city[:limit])
    if "/" not in word:
        return ()
    return tuple(zones[k] for k in difflib.get_close_matches(word, zones, n=limit, cutoff=0.75))


def parse_days(text: str) -> frozenset[int] | None:
    """ "mon-fri", "weekdays", "daily", "mon,wed,fri", "fri-mon" -> weekday numbers (Mon=0)."""
    text = text.strip().lower()
    if text in _DAY_SETS:
        return _DAY_SETS[text]
    days: set[int] = set()
    for part in filter(None, text.split(",")):
        first, dash, last = part.partition("-")
        start, end = _DAY_ALIASES.get(first), _DAY_ALIASES.get(last if dash else first)
        if start is None or end is None:
            return None
        days.update((start + k) % 7 for k in range((end - start) % 7 + 1))
    return frozenset(days) or None


def format_days(days: Collection[int]) -> str:
    """Canonical spec, also a valid cron day_of_week: runs of three or more as ranges."""
    ordered = sorted(set(days))
    runs: list[list[int]] = []
    for day in ordered:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts: list[str] = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}")
        else:
            parts.extend(DAY_NAMES[d] for d in run)
    return ",".join(parts)


def next_run(hhmm: str, zone_name: str, days_spec: str, now: datetime) -> datetime:
    """The next instant (UTC) after ``now`` at local time ``hhmm`` on one of the days.

    A local time skipped by a DST change runs at the same wall-clock offset (02:30 on a
    spring-forward night runs at 03:30); a repeated one runs at its first occurrence.
    """
    zone = ZoneInfo(zone_name)
    hour, minute = (int(part) for part in hhmm.split(":"))
    days = parse_days(days_spec) or ALL_DAYS
    today = now.astimezone(zone).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        candidate = datetime.combine(day, dtime(hour, minute), tzinfo=zone).astimezone(UTC)
        if candidate > now:
            return candidate
    raise AssertionError("a week always holds one of the scheduled days")

"""The /brief and /claim parser: forgiving input, typed requests, useful problems, no crashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands.parse import (
    DAY_NAMES,
    _zones,
    format_days,
    next_run,
    parse_command,
    parse_days,
    parse_time,
)
from bot.commands.requests import (
    ClaimLookup,
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
    Unsubscribe,
)

THEME_NAMES = {
    "agi": "AGI ambition",
    "compute": "GPUs and compute build-out",
    "llama-models": "Llama models and capabilities",
    "open-source": "Open weights strategy",
    "meta-ai-assistant": "Meta AI assistant",
    "safety-policy": "Safety, regulation and lawsuits",
}
THEME_IDS = tuple(THEME_NAMES)


def brief(text: str) -> Request | ParseProblem:
    return parse_command("/brief", text, theme_ids=THEME_IDS, theme_names=THEME_NAMES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("subscribe open-source", Subscribe("theme", "open-source", "dm")),
        ("SUB Open-Source HERE", Subscribe("theme", "open-source", "here")),
        ("  sub    compute   dm ", Subscribe("theme", "compute", "dm")),
        ("sub open source", Subscribe("theme", "open-source", "dm")),
        ("sub meta ai assistant here", Subscribe("theme", "meta-ai-assistant", "here")),
        ("sub Llama models and capabilities", Subscribe("theme", "llama-models", "dm")),
        ('subscribe "Llama 4" here', Subscribe("phrase", "Llama 4", "here")),
        ("subscribe “Llama  4”", Subscribe("phrase", "Llama 4", "dm")),
        ("subscribe ‘Llama 4’ here", Subscribe("phrase", "Llama 4", "here")),
        ("subscribe 'Zuckerberg'", Subscribe("phrase", "Zuckerberg", "dm")),
        ("subscribe Llama 4", Subscribe("phrase", "Llama 4", "dm")),
        ("subscribe \"Meta's glasses", Subscribe("phrase", "Meta's glasses", "dm")),
        ("unsub 12", Unsubscribe("id", "12")),
        ("unsubscribe #7 here", Unsubscribe("id", "7", "here")),
        ("unsubscribe AGI", Unsubscribe("theme", "agi")),
        ('unsub "llama 4"', Unsubscribe("phrase", "llama 4")),
        ("subscriptions", ListSubscriptions()),
        ("Subs", ListSubscriptions()),
        ("themes", ListThemes()),
        ("", ShowHelp()),
        ("HELP", ShowHelp()),
        ("digest", DigestShow()),
        ("digest NOW", DigestNow()),
        ("digest off", DigestOff()),
        ("digest schedule 9:00", DigestSchedule("09:00")),
        ("digest schedule 09:00 Europe/Berlin", DigestSchedule("09:00", "Europe/Berlin")),
        ("digest schedule 9am europe/berlin", DigestSchedule("09:00", "Europe/Berlin")),
        ("digest schedule 9:30 pm UTC", DigestSchedule("21:30", "UTC")),
        ("digest schedule 12am", DigestSchedule("00:00")),
        ("digest schedule 7:05 mon-fri", DigestSchedule("07:05", None, "mon-fri")),
        ("digest schedule 7:05 weekdays", DigestSchedule("07:05", None, "mon-fri")),
        ("digest schedule 7:05 daily Asia/Tokyo", DigestSchedule("07:05", "Asia/Tokyo", "mon-sun")),
        ("digest schedule 7:05 mon,wed,fri", DigestSchedule("07:05", None, "mon,wed,fri")),
        ("digest schedule 7:05 Mon Wed friday", DigestSchedule("07:05", None, "mon,wed,fri")),
        ("digest 18:00 america/new_york", DigestSchedule("18:00", "America/New_York")),
        ("feeds", FeedsList()),
        ("feeds list", FeedsList()),
        ("feeds add https://example.com/rss", FeedsAdd("https://example.com/rss")),
        ("feeds add <https://example.com/rss|example.com>", FeedsAdd("https://example.com/rss")),
        ("feeds remove https://example.com/rss", FeedsRemove("https://example.com/rss")),
    ],
)
def test_brief_commands_parse_to_typed_requests(text: str, expected: Request) -> None:
    assert brief(text) == expected


def test_claim_takes_the_whole_text_with_spaces_tidied() -> None:
    parsed = parse_command("/claim", "  350k   H100s\tby 2024 ", theme_ids=THEME_IDS)
    assert parsed == ClaimLookup("350k H100s by 2024")
    assert parse_command("CLAIM", "Llama 3", theme_ids=()) == ClaimLookup("Llama 3")


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("sub opensource", "open-source"),
        ("sub lama", "llama-models"),
        ("subscribe Compute2 here", "compute"),
        ("unsub saftey", "safety-policy"),
        ("subscrbe agi", "subscribe"),
        ("themse", "themes"),
        ("digest shedule 9:00", "schedule"),
        ("digest schedule 9:00 Berlin", "Europe/Berlin"),
        ("digest schedule 9:00 Europe/Berln", "Europe/Berlin"),
    ],
)
def test_mistakes_get_a_usage_line_and_did_you_mean(text: str, suggestion: str) -> None:
    parsed = brief(text)
    assert isinstance(parsed, ParseProblem)
    assert suggestion in parsed.suggestions
    assert f"Did you mean `{suggestion}`" in parsed.message
    assert parsed.usage.startswith("/brief")


@pytest.mark.parametrize(
    "text",
    [
        "sub",
        "sub here",
        "sub zuckerberg",  # one unknown word: most likely a typo, so quote phrases
        'sub "x"',
        'sub "!!!"',
        f'sub "{"a" * 101}"',
        'sub "Llama 4" extra',
        "unsub",
        "digest schedule",
        "digest schedule 24:00",
        "digest schedule 9:60",
        "digest schedule 13pm",
        "digest schedule 9",
        "digest schedule 9:00 Mars/Olympus_Mons",
        "digest schedule 9:00 UTC Europe/Berlin",
        "digest schedule 9:00 sometimes",
        "digest now please",
        "feeds add",
        "feeds add a b",
        "feeds launch https://example.com",
        "frobnicate",
    ],
)
def test_unusable_input_is_a_problem_with_usage(text: str) -> None:
    parsed = brief(text)
    assert isinstance(parsed, ParseProblem), parsed
    assert parsed.message and parsed.usage
    assert "Usage: /" in parsed.text


def test_unknown_command_and_empty_claim_are_problems() -> None:
    assert isinstance(parse_command("/weather", "today", theme_ids=THEME_IDS), ParseProblem)
    empty = parse_command("/claim", " \n\t ", theme_ids=THEME_IDS)
    assert isinstance(empty, ParseProblem)
    assert empty.usage.startswith("/claim")


def test_control_and_invisible_characters_are_tidied() -> None:
    assert brief("sub\x00\x07 open\u200b-source\x1b here") == Subscribe(
        "theme", "open-source", "here"
    )


def test_echoed_text_is_short_and_cannot_break_code_spans() -> None:
    parsed = brief("`" * 500)
    assert isinstance(parsed, ParseProblem)
    assert len(parsed.message) < 200
    assert parsed.message.count("`") == 2


COMMANDS = st.sampled_from(["/brief", "/claim", "brief", "/BRIEF", "/Claim", "/other", ""])
PREFIXES = st.sampled_from(
    ["", "sub ", "unsub ", "digest ", "digest schedule ", "digest schedule 9:00 ", "feeds add "]
)
NASTY = st.text(
    alphabet=st.sampled_from(list("\"'“”‘’«» \t\n\x00\x1b\u200b`#-,:/<>|ab9😀")) | st.characters(),
    max_size=300,
)


def _assert_well_formed(parsed: Request | ParseProblem) -> None:
    if isinstance(parsed, ParseProblem):
        assert parsed.usage.strip()
        assert parsed.message.strip()


@settings(max_examples=300, deadline=None)
@given(command=COMMANDS, prefix=PREFIXES, text=NASTY)
def test_parser_never_raises(command: str, prefix: str, text: str) -> None:
    _assert_well_formed(
        parse_command(command, prefix + text, theme_ids=THEME_IDS, theme_names=THEME_NAMES)
    )


@settings(max_examples=20, deadline=None)
@given(prefix=PREFIXES, unit=st.sampled_from(['"', "a b ", "😀", "\x00", "x" * 9, "'"]))
def test_parser_handles_10000_characters(prefix: str, unit: str) -> None:
    text = prefix + unit * (10_000 // len(unit))
    for command in ("/brief", "/claim"):
        _assert_well_formed(parse_command(command, text, theme_ids=THEME_IDS))


ZONES = sorted(_zones().values())


@settings(max_examples=200, deadline=None)
@given(
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    zone=st.sampled_from(ZONES),
    padded=st.booleans(),
    lower=st.booleans(),
)
def test_schedule_round_trips_time_and_zone(
    hour: int, minute: int, zone: str, padded: bool, lower: bool
) -> None:
    typed_time = f"{hour:02d}:{minute:02d}" if padded else f"{hour}:{minute:02d}"
    typed_zone = zone.lower() if lower else zone
    parsed = brief(f"digest schedule {typed_time} {typed_zone}")
    assert parsed == DigestSchedule(f"{hour:02d}:{minute:02d}", zone)


@given(days=st.frozensets(st.integers(0, 6), min_size=1))
def test_day_specs_round_trip(days: frozenset[int]) -> None:
    spec = format_days(days)
    assert parse_days(spec) == days
    typed = ",".join(DAY_NAMES[d] for d in sorted(days))
    assert brief(f"digest schedule 10:00 {typed}") == DigestSchedule("10:00", None, spec)


@given(words=st.lists(st.from_regex(r"[A-Za-z0-9]{1,12}", fullmatch=True), min_size=1, max_size=6))
def test_quoted_phrases_round_trip(words: list[str]) -> None:
    phrase = " ".join(words)
    parsed = brief(f"sub “{phrase}” here")
    if len(phrase) < 2:
        assert isinstance(parsed, ParseProblem)
    else:
        assert parsed == Subscribe("phrase", phrase, "here")


def test_time_forms() -> None:
    assert parse_time("9:00") == parse_time("09:00") == parse_time("9am") == "09:00"
    assert parse_time("12pm") == "12:00"
    assert parse_time("11:59PM") == "23:59"
    assert [parse_time(t) for t in ("0:00", "23:59")] == ["00:00", "23:59"]
    assert [parse_time(t) for t in ("24:00", "0am", "9", "9.30", "", "9:5")] == [None] * 6


def test_day_spec_forms() -> None:
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})
    assert parse_days("mon-sun") == frozenset(range(7))
    assert parse_days("weekends") == frozenset({5, 6})
    assert format_days(range(7)) == "mon-sun"
    assert format_days({0, 1, 2, 4}) == "mon-wed,fri"
    assert format_days({5, 6}) == "sat,sun"
    assert [parse_days(s) for s in ("", ",", "mon-", "funday", "mon-xyz")] == [None] * 5


BERLIN = "Europe/Berlin"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_next_run_follows_the_local_clock_across_dst() -> None:
    # Winter: Berlin is UTC+1; summer: UTC+2. DST began 2024-03-31 at 02:00 local.
    assert next_run("09:00", BERLIN, "mon-sun", utc(2024, 3, 29, 12)) == utc(2024, 3, 30, 8)
    assert next_run("09:00", BERLIN, "mon-sun", utc(2024, 3, 30, 12)) == utc(2024, 3, 31, 7)
    # 02:30 does not exist on that night: it runs at 03:30 local time, 01:30 UTC.
    assert next_run("02:30", BERLIN, "mon-sun", utc(2024, 3, 30, 12)) == utc(2024, 3, 31, 1, 30)
    # 02:30 happens twice on 2024-10-27: the first one (still UTC+2) counts.
    assert next_run("02:30", BERLIN, "mon-sun", utc(2024, 10, 26, 12)) == utc(2024, 10, 27, 0, 30)


def test_next_run_skips_to_the_next_scheduled_day() -> None:
    friday_evening = utc(2024, 6, 7, 18)  # 20:00 in Berlin
    assert next_run("09:00", BERLIN, "mon-fri", friday_evening) == utc(2024, 6, 10, 7)
    assert next_run("09:00", BERLIN, "fri", friday_evening) == utc(2024, 6, 14, 7)
    assert next_run("21:00", BERLIN, "fri", friday_evening) == utc(2024, 6, 7, 19)


@settings(max_examples=200, deadline=None)
@given(
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC"]),
    days=st.frozensets(st.integers(0, 6), min_size=1),
    now=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
)
def test_next_run_is_soon_on_a_chosen_day_at_the_local_time(
    hour: int, minute: int, zone: str, days: frozenset[int], now: datetime
) -> None:
    now = now.replace(tzinfo=UTC)
    run = next_run(f"{hour:02d}:{minute:02d}", zone, format_days(days), now)
    assert now < run <= now + timedelta(days=8)
    local = run.astimezone(ZoneInfo(zone))
    # Equal to the chosen wall-clock time, except inside a DST gap (then up to 1 h later).
    shift = (local.hour * 60 + local.minute) - (hour * 60 + minute)
    assert shift == 0 or (0 < shift <= 60 and local.weekday() in days)
    assert local.weekday() in days

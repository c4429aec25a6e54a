"""Scheduling: interval vs server hints, clamping, jitter, backoff, pausing, header parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.fetch_policy import (
    NO_HINTS,
    FetchHints,
    FetchPolicy,
    backoff_after_failure,
    next_fetch_at,
    parse_hints,
    parse_max_age,
    parse_retry_after,
    should_pause,
)

NOW = datetime(2024, 7, 23, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def rng(seed: int = 7) -> random.Random:
    return random.Random(seed)


def no_jitter(
    hints: FetchHints = NO_HINTS, ttl: int | None = None, interval: timedelta = 30 * MINUTE
) -> timedelta:
    return next_fetch_at(NOW, interval, hints, ttl, rng=rng(), jitter=0.0) - NOW


def test_plain_interval_is_used_without_hints() -> None:
    assert no_jitter() == 30 * MINUTE


def test_the_latest_hint_wins_over_the_interval() -> None:
    assert no_jitter(FetchHints(max_age=2 * HOUR)) == 2 * HOUR
    assert no_jitter(FetchHints(expires=NOW + 3 * HOUR)) == 3 * HOUR
    assert no_jitter(ttl=240) == 4 * HOUR
    assert no_jitter(FetchHints(retry_after=HOUR, max_age=2 * HOUR)) == 2 * HOUR


def test_hints_shorter_than_the_interval_do_not_speed_us_up() -> None:
    assert no_jitter(FetchHints(max_age=MINUTE, expires=NOW - HOUR), ttl=1) == 30 * MINUTE


def test_clamped_to_five_minutes_and_a_day() -> None:
    assert no_jitter(interval=MINUTE) == 5 * MINUTE
    assert no_jitter(FetchHints(max_age=timedelta(days=365))) == timedelta(hours=24)
    assert no_jitter(FetchHints(retry_after=timedelta(days=30))) == timedelta(hours=24)


def test_jitter_is_deterministic_and_spreads_feeds() -> None:
    first = [next_fetch_at(NOW, HOUR, NO_HINTS, None, rng=rng(s)) for s in range(50)]
    again = [next_fetch_at(NOW, HOUR, NO_HINTS, None, rng=rng(s)) for s in range(50)]

    assert first == again
    assert len(set(first)) > 40
    assert all(NOW + 54 * MINUTE <= t <= NOW + 66 * MINUTE for t in first)


def test_jitter_never_comes_back_before_retry_after() -> None:
    hints = FetchHints(retry_after=2 * HOUR)
    times = [next_fetch_at(NOW, 30 * MINUTE, hints, None, rng=rng(s)) for s in range(50)]
    assert min(times) >= NOW + 2 * HOUR


@given(
    interval_s=st.integers(0, 10**7),
    hint_s=st.none() | st.integers(0, 10**9),
    ttl=st.none() | st.integers(-5, 10**9),
    seed=st.integers(0, 2**32),
)
def test_always_within_bounds(
    interval_s: int, hint_s: int | None, ttl: int | None, seed: int
) -> None:
    hint = None if hint_s is None else timedelta(seconds=hint_s)
    hints = FetchHints(retry_after=hint, max_age=hint, expires=None if hint is None else NOW + hint)
    when = next_fetch_at(NOW, timedelta(seconds=interval_s), hints, ttl, rng=rng(seed))
    assert NOW + 5 * MINUTE <= when <= NOW + 24 * HOUR


def test_backoff_doubles_from_five_minutes_to_the_cap() -> None:
    delays = [
        backoff_after_failure(
            NOW, n, 5 * MINUTE, 24 * HOUR, retry_after=None, rng=rng(), jitter=0.0
        )
        - NOW
        for n in (1, 2, 3, 4, 9, 10, 500)
    ]
    expected = [5, 10, 20, 40, 1280, 1440, 1440]
    assert delays == [m * MINUTE for m in expected]


def test_backoff_honours_a_larger_retry_after_but_not_past_the_cap() -> None:
    def delay(retry_after: timedelta) -> timedelta:
        when = backoff_after_failure(
            NOW, 1, 5 * MINUTE, 24 * HOUR, retry_after=retry_after, rng=rng(), jitter=0.0
        )
        return when - NOW

    assert delay(3 * HOUR) == 3 * HOUR
    assert delay(MINUTE) == 5 * MINUTE
    assert delay(timedelta(days=9)) == 24 * HOUR


@given(errors=st.integers(-3, 10**6), seed=st.integers(0, 2**32))
def test_backoff_stays_within_cap(errors: int, seed: int) -> None:
    when = backoff_after_failure(
        NOW, errors, 5 * MINUTE, 24 * HOUR, retry_after=None, rng=rng(seed)
    )
    assert NOW + 4 * MINUTE <= when <= NOW + 24 * HOUR


def test_pause_after_ten_failures_in_a_row() -> None:
    assert not should_pause(9)
    assert should_pause(10)
    assert FetchPolicy(pause_threshold=3).should_pause(3)


def test_policy_methods_use_their_knobs() -> None:
    policy = FetchPolicy(interval=HOUR, jitter=0.0, backoff_base=MINUTE, backoff_cap=HOUR)
    assert policy.after_success(NOW, NO_HINTS, None, rng=rng()) == NOW + HOUR
    assert policy.after_failure(NOW, 3, retry_after=None, rng=rng()) == NOW + 4 * MINUTE
    assert policy.after_failure(NOW, 30, retry_after=None, rng=rng()) == NOW + HOUR


def test_defaults_match_the_issue() -> None:
    policy = FetchPolicy()
    assert (policy.interval, policy.concurrency, policy.per_host) == (30 * MINUTE, 16, 2)
    assert policy.max_body_bytes == 10 * 1024 * 1024
    assert (policy.min_interval, policy.max_interval) == (5 * MINUTE, 24 * HOUR)


def test_retry_after_forms() -> None:
    assert parse_retry_after("120", NOW) == timedelta(seconds=120)
    assert parse_retry_after(" 0 ", NOW) == timedelta(0)
    assert parse_retry_after("Tue, 23 Jul 2024 13:30:00 GMT", NOW) == 90 * MINUTE
    assert parse_retry_after("Mon, 22 Jul 2024 00:00:00 GMT", NOW) == timedelta(0)
    assert parse_retry_after("-5", NOW) is None
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("9" * 40, NOW) == timedelta(days=3650)
    assert parse_retry_after(None, NOW) is None


def test_max_age_parsing() -> None:
    assert parse_max_age("public, max-age=600") == 10 * MINUTE
    assert parse_max_age('MAX-AGE="60", must-revalidate') == MINUTE
    assert parse_max_age("s-maxage=600") is None
    assert parse_max_age("no-store") is None
    assert parse_max_age("max-age=abc") is None
    assert parse_max_age(None) is None


def test_parse_hints_reads_all_three_headers() -> None:
    hints = parse_hints(
        {
            "Retry-After": "60",
            "Cache-Control": "max-age=300",
            "Expires": "Tue, 23 Jul 2024 14:00:00 GMT",
        },
        NOW,
    )
    assert hints == FetchHints(retry_after=MINUTE, max_age=5 * MINUTE, expires=NOW + 2 * HOUR)
    assert parse_hints({"Expires": "0"}, NOW) == NO_HINTS

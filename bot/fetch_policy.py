"""When to fetch a feed next: intervals, server hints, backoff and pausing.

Everything here is pure: the caller passes the clock and the random source, so the
schedule is reproducible in tests and the same on every replica given the same seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

USER_AGENT = "briefbot/0.1 (+https://github.com/briefbot/briefbot)"
_MB = 1024 * 1024
# Hostile servers may announce absurd delays; nothing beyond this is representable anyway.
_LONGEST_HINT = timedelta(days=3650)


@dataclass(frozen=True)
class FetchHints:
    """What a server said about when to come back."""

    retry_after: timedelta | None = None
    max_age: timedelta | None = None
    expires: datetime | None = None


NO_HINTS = FetchHints()


@dataclass(frozen=True)
class FetchPolicy:
    """The knobs of fetching and scheduling, with production defaults."""

    interval: timedelta = timedelta(minutes=30)
    min_interval: timedelta = timedelta(minutes=5)
    max_interval: timedelta = timedelta(hours=24)
    jitter: float = 0.1
    backoff_base: timedelta = timedelta(minutes=5)
    backoff_cap: timedelta = timedelta(hours=24)
    pause_threshold: int = 10
    max_body_bytes: int = 10 * _MB
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    concurrency: int = 16
    per_host: int = 2
    max_redirects: int = 5
    user_agent: str = USER_AGENT

    def after_success(
        self, now: datetime, hints: FetchHints, ttl_minutes: int | None, *, rng: random.Random
    ) -> datetime:
        return next_fetch_at(
            now,
            self.interval,
            hints,
            ttl_minutes,
            rng=rng,
            min_interval=self.min_interval,
            max_interval=self.max_interval,
            jitter=self.jitter,
        )

    def after_failure(
        self,
        now: datetime,
        consecutive_errors: int,
        *,
        retry_after: timedelta | None,
        rng: random.Random,
    ) -> datetime:
        return backoff_after_failure(
            now,
            consecutive_errors,
            self.backoff_base,
            self.backoff_cap,
            retry_after=retry_after,
            rng=rng,
            jitter=self.jitter,
        )

    def should_pause(self, consecutive_errors: int) -> bool:
        return should_pause(consecutive_errors, self.pause_threshold)


def next_fetch_at(
    now: datetime,
    interval: timedelta,
    hints: FetchHints,
    ttl_minutes: int | None,
    *,
    rng: random.Random,
    min_interval: timedelta = timedelta(minutes=5),
    max_interval: timedelta = timedelta(hours=24),
    jitter: float = 0.1,
) -> datetime:
    """The later of our interval and the server's hints, clamped, with jitter.

    An explicit Retry-After is a floor the jitter never undercuts (up to the clamp).
    """
    candidates = [interval, *_hint_delays(now, hints, ttl_minutes)]
    base = _clamp(max(candidates), min_interval, max_interval)
    delay = _clamp(_jittered(base, jitter, rng), min_interval, max_interval)
    if hints.retry_after is not None:
        delay = max(delay, _clamp(hints.retry_after, min_interval, max_interval))
    return now + delay


def backoff_after_failure(
    now: datetime,
    consecutive_errors: int,
    base: timedelta,
    cap: timedelta,
    *,
    retry_after: timedelta | None,
    rng: random.Random,
    jitter: float = 0.1,
) -> datetime:
    """Exponential backoff per feed: base * 2^(n-1), capped, never sooner than Retry-After."""
    exponent = min(max(consecutive_errors, 1) - 1, 32)
    raw = base * (2**exponent) if base <= cap / (2**exponent) else cap
    delay = min(_jittered(min(raw, cap), jitter, rng), cap)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return now + delay


def should_pause(consecutive_errors: int, threshold: int = 10) -> bool:
    """A feed that failed this many times in a row is paused until an admin resumes it."""
    return consecutive_errors >= threshold


def parse_hints(headers: Mapping[str, str], now: datetime) -> FetchHints:
    """Read Retry-After, Cache-Control max-age and Expires from response headers."""
    return FetchHints(
        retry_after=parse_retry_after(headers.get("Retry-After"), now),
        max_age=parse_max_age(headers.get("Cache-Control")),
        expires=parse_http_date(headers.get("Expires")),
    )


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After is either delta-seconds or an HTTP-date; a past date means now."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(timedelta(seconds=int(value[:12])), _LONGEST_HINT)
    when = parse_http_date(value)
    if when is None:
        return None
    return _clamp(when - now, timedelta(0), _LONGEST_HINT)


_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,12})\"?\s*(?:,|$)", re.IGNORECASE)


def parse_max_age(cache_control: str | None) -> timedelta | None:
    if not cache_control:
        return None
    match = _MAX_AGE.search(cache_control)
    if match is None:
        return None
    return min(timedelta(seconds=int(match.group(1))), _LONGEST_HINT)


def parse_http_date(value: str | None) -> datetime | None:
    """An RFC 9110 date as an aware UTC datetime, or None when it is not one."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _hint_delays(now: datetime, hints: FetchHints, ttl_minutes: int | None) -> list[timedelta]:
    delays = [d for d in (hints.retry_after, hints.max_age) if d is not None]
    if hints.expires is not None:
        delays.append(hints.expires - now)
    if ttl_minutes is not None and ttl_minutes > 0:
        delays.append(timedelta(minutes=min(ttl_minutes, 10_000_000)))
    return delays


def _jittered(delay: timedelta, jitter: float, rng: random.Random) -> timedelta:
    return delay * (1.0 + rng.uniform(-jitter, jitter))


def _clamp(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    return max(low, min(value, high))

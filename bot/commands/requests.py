"""Typed requests: what a user asked for, after parsing, before any work is done.

Every request is a frozen dataclass; ``Request`` is their union. The parser returns one of
them or a ``ParseProblem``; the handler turns a request into a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Delivery = Literal["dm", "here"]
SubscriptionKind = Literal["theme", "phrase"]


@dataclass(frozen=True)
class Caller:
    """Who is asking, and where. The adapter fills it in and decides who is an admin."""

    platform: str
    workspace: str
    user_ref: str
    channel_ref: str
    is_admin: bool = False
    display_name: str | None = None


@dataclass(frozen=True)
class ClaimLookup:
    query: str


@dataclass(frozen=True)
class Subscribe:
    kind: SubscriptionKind
    value: str  # a theme id, or the phrase as typed (whitespace collapsed)
    delivery: Delivery = "dm"


@dataclass(frozen=True)
class Unsubscribe:
    """Remove the caller's own subscriptions: one by id, or all for a theme or phrase."""

    kind: Literal["theme", "phrase", "id"]
    value: str
    delivery: Delivery | None = None  # None: whatever the delivery


@dataclass(frozen=True)
class ListSubscriptions:
    pass


@dataclass(frozen=True)
class ListThemes:
    pass


@dataclass(frozen=True)
class DigestShow:
    pass


@dataclass(frozen=True)
class DigestNow:
    pass


@dataclass(frozen=True)
class DigestSchedule:
    """Schedule the channel's digest. ``None`` fields keep the channel's current setting
    (UTC and every day for a channel that never had one)."""

    time: str  # "HH:MM", 24 h, zero-padded
    timezone: str | None = None  # IANA name, e.g. "Europe/Berlin", or "UTC"
    days: str | None = None  # canonical day spec, e.g. "mon-fri" or "mon,wed,fri"


@dataclass(frozen=True)
class DigestOff:
    pass


@dataclass(frozen=True)
class DigestEmpty:
    """What a day without news gets: a short line, or no message at all."""

    mode: Literal["line", "skip"]


@dataclass(frozen=True)
class FeedsList:
    pass


@dataclass(frozen=True)
class FeedsAdd:
    url: str


@dataclass(frozen=True)
class FeedsRemove:
    url: str


@dataclass(frozen=True)
class ShowHelp:
    topic: str | None = None


Request = (
    ClaimLookup
    | Subscribe
    | Unsubscribe
    | ListSubscriptions
    | ListThemes
    | DigestShow
    | DigestNow
    | DigestSchedule
    | DigestOff
    | DigestEmpty
    | FeedsList
    | FeedsAdd
    | FeedsRemove
    | ShowHelp
)


@dataclass(frozen=True)
class ParseProblem:
    """Text that could not be understood: what went wrong, how to type it, and guesses."""

    message: str
    usage: str
    suggestions: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return f"{self.message}\nUsage: {self.usage}"

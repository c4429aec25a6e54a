"""Platform-neutral messages: what the core says. Adapters render them; nothing here knows
about Slack or Discord.

Every message is a pydantic model with a ``kind`` tag so it round-trips through the outbox
as JSON (``dump_message`` / ``load_message``). Text fields that came from feeds are raw and
untrusted: each adapter escapes them for its own markup.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class SourceRef(_Model):
    name: str
    url: str | None = None


class Story(_Model):
    """One story (a cluster of syndicated copies) as it appears in a digest or alert."""

    cluster_id: int
    title: str
    url: str | None
    source: str
    published: datetime
    summary: str
    themes: tuple[str, ...] = ()
    relevance: float = 0.0
    more_sources: tuple[SourceRef, ...] = ()


class ThemeSection(_Model):
    theme_id: str
    theme_name: str
    stories: tuple[Story, ...]


class Digest(_Model):
    kind: Literal["digest"] = "digest"
    title: str
    day: date
    since: datetime
    until: datetime
    sections: tuple[ThemeSection, ...]
    total_stories: int
    left_out: int = 0
    empty_note: str | None = None


class Alert(_Model):
    kind: Literal["alert"] = "alert"
    subscription_id: int
    label: str  # a theme name or the quoted phrase
    theme_id: str | None = None
    stories: tuple[Story, ...]
    left_out: int = 0


class Coverage(_Model):
    title: str
    url: str
    published: str
    source: str | None = None


class ClaimSource(_Model):
    publication: str
    title: str
    url: str | None = None
    seed: str | None = None


class ClaimMatch(_Model):
    id: str
    statement: str
    speaker: str | None
    claimed_on: date | None
    source: ClaimSource
    themes: tuple[str, ...]
    status: str
    score: float
    coverage: tuple[Coverage, ...] = ()
    superseded_by: str | None = None
    status_note: str | None = None
    origin: str = "ledger"


class ClaimAnswer(_Model):
    kind: Literal["claim_answer"] = "claim_answer"
    query: str
    matches: tuple[ClaimMatch, ...]
    problem: str | None = None  # a usage message when the query could not be used


class ThemeInfo(_Model):
    id: str
    name: str
    description: str
    subscribed: bool = False


class ThemeList(_Model):
    kind: Literal["theme_list"] = "theme_list"
    themes: tuple[ThemeInfo, ...]


class SubscriptionInfo(_Model):
    id: int
    kind: Literal["theme", "phrase"]
    value: str
    label: str
    delivery: Literal["dm", "here"]
    dest_ref: str


class SubscriptionList(_Model):
    kind: Literal["subscription_list"] = "subscription_list"
    subscriptions: tuple[SubscriptionInfo, ...]


class FeedInfo(_Model):
    url: str
    title: str | None
    state: Literal["ok", "failing", "paused"]
    last_success: datetime | None
    last_error: str | None


class FeedList(_Model):
    kind: Literal["feed_list"] = "feed_list"
    feeds: tuple[FeedInfo, ...]


class ScheduleInfo(_Model):
    kind: Literal["schedule_info"] = "schedule_info"
    enabled: bool
    time: str | None = None
    timezone: str | None = None
    days: str | None = None
    next_run: datetime | None = None
    empty_day: Literal["line", "skip"] = "line"  # what a day without news gets


class HelpEntry(_Model):
    usage: str
    description: str
    admin_only: bool = False


class Help(_Model):
    kind: Literal["help"] = "help"
    entries: tuple[HelpEntry, ...]
    intro: str = ""


class Notice(_Model):
    """A short reply: a confirmation, a usage line, an error, a refusal."""

    kind: Literal["notice"] = "notice"
    level: Literal["ok", "info", "usage", "error", "denied"]
    text: str
    suggestions: tuple[str, ...] = ()


Message = Annotated[
    Digest
    | Alert
    | ClaimAnswer
    | ThemeList
    | SubscriptionList
    | FeedList
    | ScheduleInfo
    | Help
    | Notice,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


def dump_message(message: Message) -> dict[str, Any]:
    dumped: dict[str, Any] = _ADAPTER.dump_python(message, mode="json")
    return dumped


def load_message(data: dict[str, Any]) -> Message:
    return _ADAPTER.validate_python(data)

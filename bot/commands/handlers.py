"""Carry out a parsed command and answer with a platform-neutral message.

Database work runs in a worker thread (``asyncio.to_thread``), one session per command.
Admin-only actions (feeds, channel schedules) are refused unless the adapter marked the
caller as admin. Subscriptions are personal: every query is scoped to the caller. Any
unexpected failure is logged with a short reference and answered with a plain notice.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Literal, Protocol, TypeVar

from sqlalchemy.orm import Session
from yarl import URL

from bot.claims.lookup import LookupResult
from bot.commands.helptext import USAGE, help_message
from bot.commands.parse import next_run, parse_command, parse_days, parse_time, parse_zone
from bot.commands.requests import (
    Caller,
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
from bot.messages import (
    ClaimAnswer,
    ClaimMatch,
    ClaimSource,
    Coverage,
    FeedInfo,
    FeedList,
    Message,
    Notice,
    ScheduleInfo,
    SubscriptionInfo,
    SubscriptionList,
    ThemeInfo,
    ThemeList,
)
from bot.ssrf import Allowlist, GuardRefusal, check_url_shape, vet_url
from storage import channels as channel_repo
from storage import feeds as feed_repo
from storage import subscriptions as sub_repo
from storage.db import Database
from storage.models import Channel, Feed, Subscription
from storage.types import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
RESOLVE_TIMEOUT_S = 10.0


class ThemeLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...


class ClaimSearch(Protocol):
    """The claim lookup engine (``bot.claims.lookup.LookupEngine``). Called in a thread."""

    def lookup(self, query: str, limit: int = ...) -> LookupResult: ...


NoticeLevel = Literal["ok", "info", "usage", "error", "denied"]
FeedState = Literal["ok", "failing", "paused"]
DigestNowFn = Callable[[int], Message | Awaitable[Message]]
ScheduleChangedFn = Callable[[int], object]


class CommandHandler:
    """One per bot process; safe to share between concurrent commands."""

    def __init__(
        self,
        db: Database,
        themes: Sequence[ThemeLike],
        *,
        claims: ClaimSearch | None = None,
        digest_now: DigestNowFn | None = None,
        on_schedule_changed: ScheduleChangedFn | None = None,
        allowlist: Allowlist | None = None,
        max_subscriptions: int = sub_repo.DEFAULT_CAP,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._themes = {t.id: t for t in themes}
        self._claims = claims
        self._digest_now = digest_now
        self._on_schedule_changed = on_schedule_changed
        self._allowlist = allowlist or Allowlist.empty()
        self._cap = max_subscriptions
        self._clock = clock

    async def handle_text(self, caller: Caller, command: str, text: str) -> Message:
        """Parse and handle what the user typed; a parse problem becomes a usage notice."""
        try:
            parsed = parse_command(
                command,
                text,
                theme_ids=tuple(self._themes),
                theme_names={i: t.name for i, t in self._themes.items()},
            )
        except Exception:
            return _failure("parse", command)
        if isinstance(parsed, ParseProblem):
            return Notice(level="usage", text=parsed.text, suggestions=parsed.suggestions)
        return await self.handle(caller, parsed)

    async def handle(self, caller: Caller, request: Request) -> Message:
        try:
            return await self._dispatch(caller, request)
        except Exception:
            return _failure(type(request).__name__, caller.platform)

    async def _dispatch(self, caller: Caller, request: Request) -> Message:
        match request:
            case ClaimLookup(query=query):
                return await self._claim(query)
            case Subscribe():
                return await self._subscribe(caller, request)
            case Unsubscribe():
                return await self._unsubscribe(caller, request)
            case ListSubscriptions():
                return await self._run(lambda s: self._subscription_list(s, caller))
            case ListThemes():
                return await self._run(lambda s: self._theme_list(s, caller))
            case ShowHelp():
                return help_message()
            case DigestShow():
                return await self._run(lambda s: _schedule_of(s, caller, self._clock()))
            case DigestNow():
                return await self._digest_now_for(caller)
            case DigestSchedule() | DigestOff() | DigestEmpty() if not caller.is_admin:
                return _denied("change this channel's digest")
            case DigestEmpty(mode=mode):
                return await self._run(lambda s: _set_empty(s, caller, mode, self._clock()))
            case DigestSchedule():
                return await self._schedule(caller, request)
            case DigestOff():
                return await self._digest_off(caller)
            case FeedsList() | FeedsAdd() | FeedsRemove() if not caller.is_admin:
                return _denied("manage feeds")
            case FeedsList():
                return await self._run(_feed_list)
            case FeedsAdd(url=url):
                return await self._add_feed(caller, url)
            case FeedsRemove(url=url):
                return await self._run(lambda s: _remove_feed(s, url))
        raise TypeError(f"unhandled request {request!r}")

    async def _run(self, work: Callable[[Session], T]) -> T:
        def in_session() -> T:
            with self._db.session() as session:
                return work(session)

        return await asyncio.to_thread(in_session)

    # --- /claim ---

    async def _claim(self, query: str) -> Message:
        if not query.strip():
            return Notice(level="usage", text=f"Tell me what to look up.\nUsage: {USAGE['claim']}")
        if self._claims is None:
            return Notice(level="error", text="Claim lookups are not available right now.")
        result = await asyncio.to_thread(self._claims.lookup, query)
        return claim_answer(result)

    # --- subscriptions ---

    async def _subscribe(self, caller: Caller, request: Subscribe) -> Message:
        if request.kind == "theme" and request.value not in self._themes:
            return _unknown_theme(request.value)
        label = self._label(request.kind, request.value)
        here = request.delivery == "here"
        where = "in this channel" if here else "by direct message"

        def work(session: Session) -> Notice:
            try:
                sub = sub_repo.add_subscription(
                    session,
                    _owner(caller),
                    kind=request.kind,
                    value=request.value,
                    delivery=request.delivery,
                    dest_ref=caller.channel_ref if here else caller.user_ref,
                    cap=self._cap,
                )
            except sub_repo.SubscriptionExists as exc:
                number = exc.existing.id
                return Notice(level="info", text=f"You already follow {label} {where} (#{number}).")
            except sub_repo.SubscriptionCapReached:
                return Notice(
                    level="error",
                    text=f"You already have {self._cap} subscriptions, the most allowed. "
                    "Remove one with `/brief unsubscribe <number>` first.",
                )
            return Notice(
                level="ok",
                text=f"Following {label}: new coverage comes {where} (#{sub.id}). "
                f"Stop with `/brief unsubscribe {sub.id}`.",
            )

        return await self._run(work)

    async def _unsubscribe(self, caller: Caller, request: Unsubscribe) -> Message:
        owner = _owner(caller)
        if request.kind == "id":
            number = int(request.value)
            removed = await self._run(
                lambda s: sub_repo.remove_subscription_by_id(s, owner, number)
            )
            if not removed:
                return Notice(
                    level="info",
                    text=f"You have no subscription #{number}. See `/brief subscriptions`.",
                )
            return Notice(level="ok", text=f"Stopped subscription #{number}.")
        kind = request.kind
        removed = await self._run(
            lambda s: sub_repo.remove_subscriptions(
                s, owner, kind=kind, value=request.value, delivery=request.delivery
            )
        )
        label = self._label(kind, request.value)
        if not removed:
            return Notice(level="info", text=f"You don't follow {label}.")
        return Notice(level="ok", text=f"Stopped following {label}.")

    def _subscription_list(self, session: Session, caller: Caller) -> SubscriptionList:
        subs = sub_repo.list_subscriptions(session, _owner(caller))
        return SubscriptionList(subscriptions=tuple(self._subscription_info(s) for s in subs))

    def _subscription_info(self, sub: Subscription) -> SubscriptionInfo:
        kind: SubscriptionKind = "theme" if sub.kind == "theme" else "phrase"
        delivery: Delivery = "here" if sub.delivery == "here" else "dm"
        return SubscriptionInfo(
            id=sub.id,
            kind=kind,
            value=sub.value,
            label=self._label(kind, sub.value),
            delivery=delivery,
            dest_ref=sub.dest_ref,
        )

    def _theme_list(self, session: Session, caller: Caller) -> ThemeList:
        subs = sub_repo.list_subscriptions(session, _owner(caller))
        followed = {s.value for s in subs if s.kind == "theme"}
        return ThemeList(
            themes=tuple(
                ThemeInfo(
                    id=t.id, name=t.name, description=t.description, subscribed=t.id in followed
                )
                for t in self._themes.values()
            )
        )

    def _label(self, kind: str, value: str) -> str:
        theme = self._themes.get(value) if kind == "theme" else None
        if theme is not None:
            return theme.name
        return value if kind == "theme" else f'"{value}"'

    # --- digests ---

    async def _digest_now_for(self, caller: Caller) -> Message:
        if self._digest_now is None:
            return Notice(level="error", text="Digests are not available right now.")
        channel_id = await self._run(lambda s: _ensure_channel(s, caller).id)
        # A plain function does database work: keep it off the event loop. An async one
        # only builds its coroutine in the thread; it runs here.
        outcome = await asyncio.to_thread(self._digest_now, channel_id)
        if isinstance(outcome, Awaitable):
            return await outcome
        return outcome

    async def _schedule(self, caller: Caller, request: DigestSchedule) -> Message:
        problem = _schedule_problem(request)
        if problem is not None:
            return Notice(level="usage", text=f"{problem}\nUsage: {USAGE['digest schedule']}")

        def work(session: Session) -> tuple[int, ScheduleInfo]:
            channel = channel_repo.set_schedule(
                session,
                caller.platform,
                caller.workspace,
                caller.channel_ref,
                time=request.time,
                timezone=request.timezone,
                days=request.days,
            )
            return channel.id, _schedule_info(channel, self._clock())

        channel_id, info = await self._run(work)
        await self._schedule_changed(channel_id)
        return info

    async def _digest_off(self, caller: Caller) -> Message:
        def work(session: Session) -> Channel | None:
            return channel_repo.disable_digest(
                session, caller.platform, caller.workspace, caller.channel_ref
            )

        channel = await self._run(work)
        if channel is None:
            return Notice(level="info", text="This channel has no digest scheduled.")
        await self._schedule_changed(channel.id)
        return _schedule_info(channel, self._clock())

    async def _schedule_changed(self, channel_id: int) -> None:
        if self._on_schedule_changed is None:
            return
        result = self._on_schedule_changed(channel_id)
        if inspect.isawaitable(result):
            await result

    # --- feeds ---

    async def _add_feed(self, caller: Caller, url: str) -> Message:
        refusal = await self._vet_feed_url(url)
        if refusal is not None:
            return refusal

        def work(session: Session) -> Notice:
            try:
                feed_repo.add_feed(session, url)
            except feed_repo.FeedExists:
                return Notice(level="info", text=f"Already following {url}.")
            return Notice(level="ok", text=f"Added {url}; it is fetched within a few minutes.")

        answer = await self._run(work)
        if answer.level == "ok":
            log.info("feed added by %s/%s: %s", caller.platform, caller.user_ref, url)
        return answer

    async def _vet_feed_url(self, url: str) -> Notice | None:
        """Refuse anything the fetcher must never reach: the check resolves the host."""
        try:
            parsed = URL(url)
            check_url_shape(parsed)
            await asyncio.wait_for(vet_url(parsed, self._allowlist), RESOLVE_TIMEOUT_S)
        except GuardRefusal as exc:
            level: NoticeLevel = "denied" if exc.kind == "ssrf" else "error"
            return Notice(level=level, text=f"I can't add that feed: {exc.message}.")
        except (ValueError, TypeError):
            return Notice(level="error", text="I can't add that feed: that is not a valid URL.")
        except (OSError, TimeoutError):
            return Notice(level="error", text="I can't add that feed: its host does not resolve.")
        return None


def claim_answer(result: LookupResult) -> ClaimAnswer:
    """The lookup engine's result as the message adapters render."""
    return ClaimAnswer(
        query=result.query,
        problem=result.problem,
        matches=tuple(
            ClaimMatch(
                id=m.claim.id,
                statement=m.claim.statement,
                speaker=m.claim.speaker,
                claimed_on=m.claim.claimed_on,
                source=ClaimSource(
                    publication=m.claim.publication,
                    title=m.claim.source_title,
                    url=m.claim.url,
                    seed=m.claim.seed,
                ),
                themes=m.claim.themes,
                status=m.claim.status,
                score=m.score,
                coverage=tuple(
                    Coverage(title=c.title, url=c.url, published=c.published) for c in m.coverage
                ),
                superseded_by=m.claim.superseded_by,
                status_note=m.claim.status_note,
                origin=m.claim.origin,
            )
            for m in result.matches
        ),
    )


def _owner(caller: Caller) -> sub_repo.Owner:
    return sub_repo.Owner(caller.platform, caller.workspace, caller.user_ref)


def _ensure_channel(session: Session, caller: Caller) -> Channel:
    return channel_repo.ensure_channel(
        session, caller.platform, caller.workspace, caller.channel_ref
    )


def _schedule_problem(request: DigestSchedule) -> str | None:
    """Requests may come from elsewhere than the parser: check them again."""
    if parse_time(request.time) != request.time:
        return f"`{request.time}` is not a time; use HH:MM (24 h)."
    if request.timezone is not None and parse_zone(request.timezone) != request.timezone:
        return f"`{request.timezone}` is not a time zone; use Area/City, e.g. Europe/Berlin."
    if request.days is not None and parse_days(request.days) is None:
        return f"`{request.days}` are not days; use e.g. mon-fri, daily or mon,wed,fri."
    return None


def _schedule_of(session: Session, caller: Caller, now: datetime) -> ScheduleInfo:
    channel = channel_repo.get_channel(
        session, caller.platform, caller.workspace, caller.channel_ref
    )
    return ScheduleInfo(enabled=False) if channel is None else _schedule_info(channel, now)


def _set_empty(
    session: Session, caller: Caller, mode: Literal["line", "skip"], now: datetime
) -> ScheduleInfo:
    channel = _ensure_channel(session, caller)
    channel.empty_digest = mode
    return _schedule_info(channel, now)


def _schedule_info(channel: Channel, now: datetime) -> ScheduleInfo:
    enabled = channel.digest_enabled and channel.digest_time is not None
    return ScheduleInfo(
        enabled=enabled,
        time=channel.digest_time,
        timezone=channel.digest_tz,
        days=channel.digest_days,
        empty_day="skip" if channel.empty_digest == "skip" else "line",
        next_run=(
            next_run(channel.digest_time, channel.digest_tz, channel.digest_days, now)
            if enabled and channel.digest_time
            else None
        ),
    )


def _feed_list(session: Session) -> FeedList:
    return FeedList(feeds=tuple(_feed_info(f) for f in feed_repo.list_feeds(session)))


def _feed_info(feed: Feed) -> FeedInfo:
    state: FeedState = (
        "paused" if not feed.enabled else "failing" if feed.consecutive_errors else "ok"
    )
    return FeedInfo(
        url=feed.url,
        title=feed.title,
        state=state,
        last_success=feed.last_success_at,
        last_error=feed.paused_reason or feed.last_error,
    )


def _remove_feed(session: Session, url: str) -> Notice:
    try:
        feed_repo.remove_feed(session, url)
    except feed_repo.FeedNotFound:
        return Notice(level="info", text=f"Not following {url}. See `/brief feeds list`.")
    return Notice(level="ok", text=f"Removed {url}.")


def _unknown_theme(value: str) -> Notice:
    return Notice(
        level="usage",
        text=f"There is no theme `{value[:40]}`. See `/brief themes`.\nUsage: {USAGE['subscribe']}",
    )


def _denied(action: str) -> Notice:
    return Notice(level="denied", text=f"Only workspace admins can {action}.")


def _failure(what: str, where: str) -> Notice:
    ref = uuid.uuid4().hex[:8]
    log.exception("command %s (%s) failed, ref %s", what, where, ref)
    return Notice(
        level="error",
        text=f"Something went wrong on my side; please try again later (ref {ref}).",
    )

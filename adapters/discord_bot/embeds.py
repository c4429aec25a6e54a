"""Discord message payloads (content, embeds, components) for every platform-neutral message.

``render(message)`` returns the messages to post, in order. Discord's limits hold for any
input: every string is clipped when an embed is built (title 256, description 4,096,
field name 256, value 1,024, footer 2,048, 25 fields), and ``pack`` puts embeds into
messages of at most 10 embeds and ``TOTAL_BUDGET`` characters, so a long digest becomes
several messages. ``TOTAL_BUDGET`` leaves room under the 6,000 total for the delivery
marker the sender appends (``with_marker``). Every string from outside the bot goes
through ``escape.md`` (or ``escape.plain`` where Discord shows no markdown).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from adapters.discord_bot.escape import clip, link, md, units
from adapters.discord_bot.views import (
    Component,
    action_rows,
    subscribe_button,
    unsubscribe_button,
)
from bot.messages import (
    Alert,
    ClaimAnswer,
    ClaimMatch,
    Digest,
    FeedList,
    Help,
    Message,
    Notice,
    ScheduleInfo,
    Story,
    SubscriptionList,
    ThemeList,
)

Embed = dict[str, Any]
Payload = dict[str, Any]

MAX_CONTENT = 2000
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FIELDS = 25
MAX_FOOTER = 2048
MAX_AUTHOR = 256
MAX_EMBEDS = 10
MAX_TOTAL = 6000
MARKER_RESERVE = 64
TOTAL_BUDGET = MAX_TOTAL - MARKER_RESERVE
MAX_MESSAGES = 10
NO_MENTIONS: dict[str, Any] = {"parse": []}

BLUE = 0x0866FF
COLOURS = {"ok": 0x2E9E5B, "info": BLUE, "usage": 0xC99A06, "error": 0xD14343, "denied": 0x8A2BE2}
_NOTICE_ICONS = {"ok": "✅", "info": "ℹ️", "usage": "💡", "error": "⚠️", "denied": "⛔"}
_FEED_ICONS = {"ok": "🟢", "failing": "🔴", "paused": "⏸️"}
_SUMMARY_CHARS = 420
_MARKER = re.compile(r"ref ([0-9a-f]{12}) (\d{1,2})/(\d{1,2})")


# --- embeds: built clipped ----------------------------------------------------------------


def embed(
    title: str | None = None,
    description: str | None = None,
    fields: Iterable[tuple[str, str, bool]] = (),
    *,
    footer: str | None = None,
    colour: int = BLUE,
) -> Embed:
    """An embed with every part clipped to Discord's limit; texts must be escaped already."""
    out: Embed = {"type": "rich", "color": colour}
    if title:
        out["title"] = clip(title, MAX_TITLE)
    if description:
        out["description"] = clip(description, MAX_DESCRIPTION)
    kept = [
        {
            "name": clip(name, MAX_FIELD_NAME) or "\u200b",
            "value": clip(value, MAX_FIELD_VALUE) or "\u200b",
            "inline": inline,
        }
        for name, value, inline in list(fields)[:MAX_FIELDS]
    ]
    if kept:
        out["fields"] = kept
    if footer:
        out["footer"] = {"text": clip(footer, MAX_FOOTER)}
    return out


def embed_size(item: Embed) -> int:
    """The characters Discord counts towards the 6,000 across a message's embeds."""
    size = units(item.get("title", "")) + units(item.get("description", ""))
    size += sum(units(f["name"]) + units(f["value"]) for f in item.get("fields", []))
    size += units((item.get("footer") or {}).get("text", ""))
    size += units((item.get("author") or {}).get("name", ""))
    return size


def fmt_date(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.strftime("%d %b %Y, %H:%M UTC")
    return value.strftime("%d %b %Y")


# --- packing embeds into messages -----------------------------------------------------------


@dataclass
class Unit:
    """One embed with the buttons that belong with it and the stories it shows."""

    embed: Embed
    buttons: list[Component | None] = field(default_factory=list)
    stories: int = 0


@dataclass
class _Message:
    units: list[Unit] = field(default_factory=list)

    def size(self) -> int:
        return sum(embed_size(u.embed) for u in self.units)

    def fits(self, unit: Unit) -> bool:
        return len(self.units) < MAX_EMBEDS and self.size() + embed_size(unit.embed) <= TOTAL_BUDGET


def pack(units_: Sequence[Unit], max_messages: int = MAX_MESSAGES) -> list[Payload]:
    """Embeds into as few messages as the limits allow; what does not fit is counted."""
    messages = [_Message()]
    for unit in units_:
        if embed_size(unit.embed) > TOTAL_BUDGET:  # cannot happen with ``embed``; be sure
            unit = Unit(embed(description="(too long to show)"), unit.buttons, unit.stories)
        if messages[-1].units and not messages[-1].fits(unit):
            messages.append(_Message())
        messages[-1].units.append(unit)
    if len(messages) > max_messages:
        _cut(messages, max_messages)
    return [_payload(m) for m in messages]


def _cut(messages: list[_Message], max_messages: int) -> None:
    omitted = sum(u.stories for m in messages[max_messages:] for u in m.units)
    del messages[max_messages:]
    last = messages[-1]
    note = Unit(embed(description="…"))
    while last.units and not last.fits(note):
        omitted += last.units.pop().stories
    noun = "story" if omitted == 1 else "stories"
    last.units.append(Unit(embed(description=f"{omitted} more {noun} not shown.")))


def _payload(message: _Message) -> Payload:
    payload: Payload = {
        "content": "",
        "embeds": [u.embed for u in message.units],
        "allowed_mentions": NO_MENTIONS,
    }
    rows = action_rows([b for u in message.units for b in u.buttons])
    if rows:
        payload["components"] = rows
    return payload


def text_payload(content: str) -> Payload:
    return {"content": clip(content, MAX_CONTENT - MARKER_RESERVE), "allowed_mentions": NO_MENTIONS}


# --- the delivery marker: lets find_sent recognise its own messages -------------------------


def marker_id(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]


def with_marker(payload: Payload, idempotency_key: str, part: int, count: int) -> Payload:
    """``payload`` with ``ref <id> part/count`` in its last footer (or content when it has
    no embed). ``MARKER_RESERVE`` keeps room for it under every limit."""
    mark = f"ref {marker_id(idempotency_key)} {part}/{count}"
    marked = dict(payload)
    embeds = [dict(e) for e in payload.get("embeds", [])]
    if embeds:
        last = embeds[-1]
        old = (last.get("footer") or {}).get("text", "")
        last["footer"] = {"text": f"{clip(old, MAX_FOOTER - 80)} · {mark}" if old else mark}
        marked["embeds"] = embeds
    else:
        content = clip(str(payload.get("content", "")), MAX_CONTENT - 80)
        marked["content"] = f"{content}\n-# {mark}" if content else f"-# {mark}"
    return marked


def markers_in(message: dict[str, Any]) -> list[tuple[str, int, int]]:
    """The delivery markers (id, part, count) in a message object read back from Discord."""
    texts = [str(message.get("content") or "")]
    texts += [str((e.get("footer") or {}).get("text", "")) for e in message.get("embeds") or []]
    return [(m[1], int(m[2]), int(m[3])) for t in texts for m in _MARKER.finditer(t)]


# --- stories -------------------------------------------------------------------------------


def story_field(story: Story) -> tuple[str, str, bool]:
    title = md(" ".join(story.title.split()) or "(untitled)", MAX_FIELD_NAME)
    meta = [md(story.source, 100), fmt_date(story.published)]
    meta += [md(ref.name, 60) for ref in story.more_sources[:2]]
    read = link(story.url, "read")
    if read:
        meta.append(read)
    tail = " · ".join(p for p in meta if p)
    summary = md(" ".join(story.summary.split()), _SUMMARY_CHARS)
    value = f"{clip(summary, MAX_FIELD_VALUE - units(tail) - 1)}\n{tail}" if summary else tail
    return title, value, False


def story_units(
    heading: str, stories: Sequence[Story], buttons: list[Component | None], colour: int = BLUE
) -> list[Unit]:
    """Embeds of up to 25 story fields under ``heading``; later ones say "continued"."""
    units_: list[Unit] = []
    current: list[tuple[str, str, bool]] = []
    size = units(heading)
    for story in stories:
        entry = story_field(story)
        entry_size = units(entry[0]) + units(entry[1])
        if current and (len(current) == MAX_FIELDS or size + entry_size > TOTAL_BUDGET // 2):
            units_.append(_story_unit(heading, current, buttons, colour, continued=bool(units_)))
            current, size = [], units(heading)
        current.append(entry)
        size += entry_size
    if current or not units_:
        units_.append(_story_unit(heading, current, buttons, colour, continued=bool(units_)))
    return units_


def _story_unit(
    heading: str,
    fields: list[tuple[str, str, bool]],
    buttons: list[Component | None],
    colour: int,
    *,
    continued: bool,
) -> Unit:
    title = f"{clip(heading, MAX_TITLE - 12)} (continued)" if continued else heading
    return Unit(embed(title, fields=fields, colour=colour), buttons, stories=len(fields))


# --- one renderer per message kind ----------------------------------------------------------


def render(message: Message) -> list[Payload]:
    """The messages to post for ``message``, in order."""
    match message:
        case Digest():
            return render_digest(message)
        case Alert():
            return render_alert(message)
        case ClaimAnswer():
            return render_claims(message)
        case ThemeList():
            return render_themes(message)
        case SubscriptionList():
            return render_subscriptions(message)
        case FeedList():
            return render_feeds(message)
        case ScheduleInfo():
            return [render_schedule(message)]
        case Help():
            return render_help(message)
        case Notice():
            return [render_notice(message)]


def render_digest(digest: Digest) -> list[Payload]:
    total = digest.total_stories
    noun = "story" if total == 1 else "stories"
    themes = len(digest.sections)
    summary = (
        f"{fmt_date(digest.day)} · {total} {noun} · {themes} theme{'' if themes == 1 else 's'}"
    )
    if not digest.sections:
        note = digest.empty_note or "No new Meta AI coverage since the last digest."
        summary += f"\n{md(note, 1000)}"
    units_ = [Unit(embed(md(digest.title, MAX_TITLE) or "Digest", summary))]
    for section in digest.sections:
        heading = f"{md(section.theme_name, 200)} · {len(section.stories)}"
        button = subscribe_button(section.theme_id, section.theme_name)
        units_ += story_units(heading, section.stories, [button])
    if digest.left_out:
        units_.append(Unit(embed(description=f"{digest.left_out} more stories left out.")))
    return pack(units_)


def render_alert(alert: Alert) -> list[Payload]:
    buttons: list[Component | None] = [unsubscribe_button(alert.subscription_id)]
    for story in alert.stories:
        buttons += [subscribe_button(t, t) for t in story.themes if t != alert.theme_id]
    heading = f"New coverage: {md(alert.label, 200)}"
    units_ = story_units(heading, alert.stories, buttons[:5])
    if alert.left_out:
        units_.append(Unit(embed(description=f"{alert.left_out} more stories left out.")))
    return pack(units_)


def render_claims(answer: ClaimAnswer) -> list[Payload]:
    query = md(" ".join(answer.query.split()), 200)
    if answer.problem:
        return pack([Unit(embed("Claim lookup", md(answer.problem, 2000)))])
    if not answer.matches:
        return [text_payload(f"No tracked claim matches “{query}”.")]
    head = Unit(embed(f"Claims matching “{query}”", colour=BLUE))
    return pack([head, *(Unit(_claim_embed(m)) for m in answer.matches)], max_messages=3)


def _claim_embed(match: ClaimMatch) -> Embed:
    lines = []
    if match.status_note:
        lines.append(f"*{md(match.status_note, 800)}*")
    if match.superseded_by:
        lines.append(f"superseded by `{md(match.superseded_by, 100)}`")
    src = match.source
    source = f"{md(src.publication, 100)}: {md(src.title, 300)}"
    if read := link(src.url, "source"):
        source += f" · {read}"
    fields = [
        ("Who", md(match.speaker, 200) if match.speaker else "unknown", True),
        ("When", fmt_date(match.claimed_on) if match.claimed_on else "unknown", True),
        ("Status", md(match.status, 60), True),
        ("Source", source, False),
    ]
    if match.themes:
        fields.append(("Themes", ", ".join(md(t, 60) for t in match.themes[:8]), False))
    if match.coverage:
        coverage = [
            f"• {md(c.title, 200)} ({md(c.published, 40)}) {link(c.url, 'read')}".rstrip()
            for c in match.coverage[:3]
        ]
        fields.append(("Coverage", "\n".join(coverage), False))
    return embed(md(match.statement, MAX_TITLE), "\n".join(lines), fields)


def render_themes(themes: ThemeList) -> list[Payload]:
    fields = [
        (
            f"{md(t.name, 150)} ({md(t.id, 80)})" + (" ✓" if t.subscribed else ""),
            md(t.description, 500),
            False,
        )
        for t in themes.themes
    ]
    buttons = [subscribe_button(t.id, t.name) for t in themes.themes if not t.subscribed]
    return _listing("Themes", fields, buttons, footer="✓ you follow it")


def render_subscriptions(subs: SubscriptionList) -> list[Payload]:
    if not subs.subscriptions:
        return [
            text_payload(
                "You follow nothing yet. Try `/brief subscribe open-source` "
                "or a Follow button under a digest."
            )
        ]
    fields = [
        (
            f"#{s.id} {md(s.label, 200)}",
            f"{s.kind}, {'by direct message' if s.delivery == 'dm' else 'in this channel'}",
            False,
        )
        for s in subs.subscriptions
    ]
    buttons: list[Component | None] = [unsubscribe_button(s.id) for s in subs.subscriptions]
    return _listing("Your subscriptions", fields, buttons)


def render_feeds(feeds: FeedList) -> list[Payload]:
    if not feeds.feeds:
        return [text_payload("No feeds yet. An admin can add one: `/brief feeds add URL`")]
    fields = []
    for feed in feeds.feeds:
        lines = [md(feed.url, 500)]
        if feed.last_success:
            lines.append(f"last success {fmt_date(feed.last_success)}")
        if feed.last_error:
            lines.append(f"last error: {md(feed.last_error, 300)}")
        name = f"{_FEED_ICONS[feed.state]} {md(feed.title or feed.url, 200)}"
        fields.append((name, "\n".join(lines), False))
    return _listing("Feeds", fields, [])


def _listing(
    title: str,
    fields: Sequence[tuple[str, str, bool]],
    buttons: list[Component | None],
    footer: str | None = None,
) -> list[Payload]:
    chunks = [fields[i : i + MAX_FIELDS] for i in range(0, len(fields), MAX_FIELDS)] or [[]]
    units_ = [
        Unit(embed(title if n == 0 else f"{title} (continued)", fields=chunk, footer=footer))
        for n, chunk in enumerate(chunks)
    ]
    units_[0].buttons = buttons
    return pack(units_, max_messages=3)


def render_schedule(info: ScheduleInfo) -> Payload:
    if not info.enabled:
        text = "The digest is **off** in this channel. Turn it on: `/brief digest schedule 09:00`"
    else:
        when = " ".join(md(p, 60) for p in (info.time, info.timezone, info.days) if p)
        text = f"The digest is posted here at **{when}**."
        if info.next_run:
            text += f"\nNext one: {fmt_date(info.next_run)}."
    return text_payload(text)


def render_help(help_: Help) -> list[Payload]:
    fields = [
        (
            md(e.usage, MAX_FIELD_NAME),
            md(e.description, 600) + (" *(Manage Server)*" if e.admin_only else ""),
            False,
        )
        for e in help_.entries
    ]
    units_ = [Unit(embed("briefbot", md(help_.intro, 2000), fields[:MAX_FIELDS]))]
    return pack(units_, max_messages=1)


def render_notice(notice: Notice) -> Payload:
    text = f"{_NOTICE_ICONS[notice.level]} {md(notice.text, 1500)}"
    tips = [f"**{md(' '.join(s.split()), 100)}**" for s in notice.suggestions[:5]]
    if tips:
        text += "\nDid you mean " + ", ".join(tips) + "?"
    return text_payload(text)

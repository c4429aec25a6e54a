"""Block Kit rendering for every platform-neutral message.

``render(message)`` returns a list of chat.postMessage payloads (``text`` + ``blocks``).
The first is the message itself; any further ones are posted in its thread. Slack's limits
hold for any input: the builders clip, and ``paginate`` keeps each payload under the block
cap. Every string from outside the bot goes through ``escape.mrkdwn`` or ``escape.link``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from adapters.slack_app.escape import clip, clip_mrkdwn, esc, link, mrkdwn
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

Block = dict[str, Any]
Payload = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 2000
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_VALUE = 2000
MAX_FALLBACK = 3000
MAX_PAYLOADS = 20

SUBSCRIBE_ACTION = "briefbot_subscribe"
UNSUBSCRIBE_ACTION = "briefbot_unsubscribe"

_TITLE_CHARS = 300
_NOTICE_ICONS = {"ok": "✅", "info": "ℹ️", "usage": "💡", "error": "⚠️", "denied": "⛔"}
_FEED_ICONS = {"ok": "🟢", "failing": "🔴", "paused": "⏸️"}


# --- block builders: each one clips to Slack's limits -------------------------------------


def header(text: str) -> Block:
    shown = clip(" ".join(text.split()) or "briefbot", MAX_HEADER)
    return {"type": "header", "text": {"type": "plain_text", "text": shown, "emoji": True}}


def section(text: str, accessory: Block | None = None) -> Block:
    """A mrkdwn section; ``text`` must already be escaped."""
    block: Block = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": clip_mrkdwn(text or " ", MAX_SECTION)},
    }
    if accessory is not None:
        block["accessory"] = accessory
    return block


def context(parts: Iterable[str]) -> Block:
    """A context line of escaped mrkdwn parts (empty ones dropped)."""
    elements = [
        {"type": "mrkdwn", "text": clip_mrkdwn(part, MAX_CONTEXT_TEXT)} for part in parts if part
    ]
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS] or [_mrkdwn(" ")]}


def divider() -> Block:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    block: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(text, MAX_BUTTON_TEXT), "emoji": True},
        "action_id": action_id[:MAX_ACTION_ID],
        "value": value[:MAX_VALUE],
    }
    if style:
        block["style"] = style
    return block


def actions(elements: Sequence[Block], block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements[:25])}
    if block_id:
        block["block_id"] = block_id[:MAX_ACTION_ID]
    return block


def subscribe_button(theme_id: str, theme_name: str) -> Block:
    return button(f"Subscribe to {theme_name}", SUBSCRIBE_ACTION, theme_id, style="primary")


def unsubscribe_button(subscription_id: int) -> Block:
    return button("Unsubscribe", UNSUBSCRIBE_ACTION, str(subscription_id), style="danger")


def _mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text}


def fmt_date(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.strftime("%d %b %Y, %H:%M UTC")
    return value.strftime("%d %b %Y")


# --- paging: groups of blocks that stay together -------------------------------------------


@dataclass
class Group:
    blocks: list[Block]
    stories: int = 0


@dataclass
class _Page:
    groups: list[Group] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(g.blocks) for g in self.groups)


def paginate(
    groups: Sequence[Group], fallback: str, max_payloads: int = MAX_PAYLOADS
) -> list[Payload]:
    """Pack groups into payloads of at most MAX_BLOCKS blocks; the rest becomes a thread."""
    pages: list[_Page] = [_Page()]
    for group in groups:
        group = Group(group.blocks[:MAX_BLOCKS], group.stories)
        if pages[-1].groups and pages[-1].size + len(group.blocks) > MAX_BLOCKS:
            pages.append(_Page())
        pages[-1].groups.append(group)
    if len(pages) > max_payloads:
        _cut(pages, max_payloads)
    fallback = clip_mrkdwn(fallback, MAX_FALLBACK - 40)
    payloads: list[Payload] = []
    for number, page in enumerate(pages, start=1):
        blocks = _trim_dividers([b for g in page.groups for b in g.blocks])
        text = fallback if number == 1 else f"{fallback} (part {number} of {len(pages)})"
        payloads.append({"text": text, "blocks": blocks})
    return payloads


def _cut(pages: list[_Page], max_payloads: int) -> None:
    omitted = sum(g.stories for page in pages[max_payloads:] for g in page.groups)
    del pages[max_payloads:]
    last = pages[-1]
    while last.groups and last.size >= MAX_BLOCKS:
        omitted += last.groups.pop().stories
    noun = "story" if omitted == 1 else "stories"
    last.groups.append(Group([context([f"{omitted} more {noun} not shown."])]))


def _trim_dividers(blocks: list[Block]) -> list[Block]:
    while blocks and blocks[0]["type"] == "divider":
        blocks.pop(0)
    while blocks and blocks[-1]["type"] == "divider":
        blocks.pop()
    return blocks or [section(" ")]


# --- stories -------------------------------------------------------------------------------


def story_blocks(story: Story) -> list[Block]:
    title = link(story.url, story.title or "(untitled)", _TITLE_CHARS)
    head = f"*{title}*"
    summary = clip_mrkdwn(mrkdwn(story.summary.strip()), MAX_SECTION - len(head) - 1)
    text = f"{head}\n{summary}" if summary else head
    return [
        section(text),
        context(
            [
                esc(story.source, 200),
                fmt_date(story.published),
                _themes(story.themes),
                *(f"also {link(ref.url, ref.name, 80)}" for ref in story.more_sources[:3]),
            ]
        ),
    ]


def _themes(theme_ids: Sequence[str]) -> str:
    shown = ", ".join(esc(t, 60) for t in theme_ids[:8])
    return f"themes: {shown}" if shown else ""


# --- one renderer per message kind ------------------------------------------------------


def render(message: Message) -> list[Payload]:
    """chat.postMessage payloads for ``message``: first the parent, then thread replies."""
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
            return render_schedule(message)
        case Help():
            return render_help(message)
        case Notice():
            return render_notice(message)


def render_digest(digest: Digest) -> list[Payload]:
    total = digest.total_stories
    noun = "story" if total == 1 else "stories"
    groups = [
        Group(
            [
                header(digest.title),
                context(
                    [fmt_date(digest.day), f"{total} {noun}", f"{len(digest.sections)} themes"]
                ),
            ]
        )
    ]
    if not digest.sections:
        note = digest.empty_note or "No new Meta AI coverage since the last digest."
        groups.append(Group([section(mrkdwn(note))]))
    for theme in digest.sections:
        lead = section(
            f"*{esc(theme.theme_name, 200)}* · {len(theme.stories)}",
            accessory=subscribe_button(theme.theme_id, theme.theme_name),
        )
        stories = [story_blocks(s) for s in theme.stories] or [[]]
        # The theme line travels with its first story so it never ends a page alone.
        groups.append(Group([divider(), lead, *stories[0]], stories=1 if theme.stories else 0))
        groups.extend(Group(blocks, stories=1) for blocks in stories[1:])
    if digest.left_out:
        groups.append(Group([context([f"{digest.left_out} more stories left out."])]))
    fallback = mrkdwn(f"{clip(digest.title, 200)}: {total} {noun} ({fmt_date(digest.day)})")
    return paginate(groups, fallback)


def render_alert(alert: Alert) -> list[Payload]:
    label = clip(alert.label, 120)
    groups = [Group([header(f"New coverage: {label}")])]
    groups.extend(Group(story_blocks(s), stories=1) for s in alert.stories)
    if alert.left_out:
        groups.append(Group([context([f"{alert.left_out} more stories left out."])]))
    groups.append(Group([_alert_actions(alert)]))
    count = len(alert.stories)
    fallback = mrkdwn(f"New coverage of {label}: {count} {'story' if count == 1 else 'stories'}")
    return paginate(groups, fallback)


def _alert_actions(alert: Alert) -> Block:
    seen: list[str] = []
    for story in alert.stories:
        for theme in story.themes:
            if theme != alert.theme_id and theme not in seen:
                seen.append(theme)
    buttons = [subscribe_button(t, t) for t in seen[:4]]
    buttons.append(unsubscribe_button(alert.subscription_id))
    return actions(buttons)


def render_claims(answer: ClaimAnswer) -> list[Payload]:
    query = clip(answer.query.strip(), 200)
    groups = [Group([header(f"Claims matching “{query}”" if query else "Claim lookup")])]
    if answer.problem:
        groups.append(Group([section(mrkdwn(answer.problem))]))
    elif not answer.matches:
        groups.append(Group([section(f"No tracked claim matches *{mrkdwn(query)}*.")]))
    groups.extend(Group(_claim_blocks(m)) for m in answer.matches)
    count = len(answer.matches)
    fallback = mrkdwn(f"{count} tracked claim{'' if count == 1 else 's'} match “{query}”")
    return paginate(groups, fallback, max_payloads=5)


def _claim_blocks(match: ClaimMatch) -> list[Block]:
    text = f"*{esc(match.statement, 1500)}*"
    if match.status_note:
        text += f"\n_{esc(match.status_note, 800)}_"
    if match.superseded_by:
        text += f"\nsuperseded by `{esc(match.superseded_by, 100)}`"
    src = match.source
    source = link(src.url, f"{clip(src.publication, 100)}: {clip(src.title, 200)}", 320)
    blocks = [
        section(text),
        context(
            [
                esc(match.speaker, 120) if match.speaker else "speaker unknown",
                fmt_date(match.claimed_on) if match.claimed_on else "date unknown",
                source,
                _themes(match.themes),
                f"status: {esc(match.status, 60)}",
            ]
        ),
    ]
    if match.coverage:
        lines = [
            f"• {link(c.url, c.title, 200)} ({esc(c.source or '', 80)} {esc(c.published, 40)})"
            for c in match.coverage[:3]
        ]
        blocks.append(section(lines_within(["*Coverage*", *lines], MAX_SECTION)))
    return blocks


def render_themes(themes: ThemeList) -> list[Payload]:
    groups = [Group([header("Themes")])]
    for theme in themes.themes:
        text = f"*{esc(theme.name, 200)}* `{esc(theme.id, 100)}`\n"
        text += esc(theme.description, 2000)
        if theme.subscribed:
            groups.append(Group([section(text + "\n✓ subscribed")]))
        else:
            groups.append(Group([section(text, accessory=subscribe_button(theme.id, theme.name))]))
    return paginate(groups, f"{len(themes.themes)} themes", max_payloads=5)


def render_subscriptions(subs: SubscriptionList) -> list[Payload]:
    groups = [Group([header("Your subscriptions")])]
    if not subs.subscriptions:
        hint = "None yet. Try `/brief subscribe open-source dm` or the buttons in a digest."
        groups.append(Group([section(hint)]))
    for sub in subs.subscriptions:
        where = "by direct message" if sub.delivery == "dm" else "in this channel"
        text = f"*{esc(sub.label, 300)}* ({sub.kind}), {where}"
        groups.append(Group([section(text, accessory=unsubscribe_button(sub.id))]))
    count = len(subs.subscriptions)
    return paginate(groups, f"{count} subscription{'' if count == 1 else 's'}", max_payloads=5)


def render_feeds(feeds: FeedList) -> list[Payload]:
    groups = [Group([header("Feeds")])]
    if not feeds.feeds:
        groups.append(
            Group([section("No feeds yet. An admin can add one: `/brief feeds add URL`")])
        )
    for feed in feeds.feeds:
        lines = [f"{_FEED_ICONS[feed.state]} {link(feed.url, feed.title or feed.url, 300)}"]
        lines.append(esc(feed.url, 500))
        if feed.last_success:
            lines.append(f"last success {fmt_date(feed.last_success)}")
        if feed.last_error:
            lines.append(f"last error: {esc(feed.last_error, 500)}")
        groups.append(Group([section(lines_within(lines, MAX_SECTION))]))
    return paginate(groups, f"{len(feeds.feeds)} feeds", max_payloads=5)


def render_schedule(info: ScheduleInfo) -> list[Payload]:
    if not info.enabled:
        text = "The digest is *off* in this channel. Turn it on: `/brief digest schedule 09:00 UTC`"
    else:
        when = " ".join(mrkdwn(p) for p in (info.time, info.timezone, info.days) if p)
        text = f"The digest is posted here at *{when}*."
        if info.next_run:
            text += f"\nNext one: {fmt_date(info.next_run)}."
    return paginate([Group([section(text)])], clip_mrkdwn(text, 500))


def render_help(help_: Help) -> list[Payload]:
    groups = [Group([header("briefbot")])]
    if help_.intro:
        groups.append(Group([section(esc(help_.intro, 2500))]))
    lines = [
        f"`{esc(e.usage, 200)}` {esc(e.description, 400)}" + (" _(admins)_" if e.admin_only else "")
        for e in help_.entries
    ]
    groups.extend(Group([section(chunk)]) for chunk in _chunks(lines, MAX_SECTION))
    return paginate(groups, "briefbot help", max_payloads=3)


def render_notice(notice: Notice) -> list[Payload]:
    text = f"{_NOTICE_ICONS[notice.level]} {esc(notice.text, 2800)}"
    blocks = [section(text)]
    tips = [f"`{esc(s, 200)}`" for s in notice.suggestions[:MAX_CONTEXT_ELEMENTS]]
    if tips:
        blocks.append(context(tips))
    return paginate([Group(blocks)], esc(notice.text, 500))


def lines_within(lines: Sequence[str], limit: int) -> str:
    """The leading lines that fit in ``limit`` characters, joined by newlines."""
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > limit:
            break
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept)


def _chunks(lines: Sequence[str], limit: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for line in lines:
        if current and len(current) + 1 + len(line) > limit:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks

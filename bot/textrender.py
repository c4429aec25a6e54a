"""Plain-text rendering of every message model: the console adapter and `--format text`."""

from __future__ import annotations

from functools import singledispatch

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

NO_MATCH = "No tracked claim matches"


def render_text(message: Message) -> str:
    return _render(message).rstrip() + "\n"


@singledispatch
def _render(message: object) -> str:  # pragma: no cover - every model is registered
    raise TypeError(f"no text renderer for {type(message).__name__}")


def _story(story: Story) -> str:
    lines = [f"• {story.title}", f"  {story.source} · {story.published:%Y-%m-%d %H:%M} UTC"]
    if story.more_sources:
        names = ", ".join(s.name for s in story.more_sources[:3])
        n = len(story.more_sources)
        lines[-1] += f" · +{n} more source{'s' if n > 1 else ''} ({names})"
    if story.summary:
        lines.append(f"  {story.summary}")
    if story.url:
        lines.append(f"  {story.url}")
    return "\n".join(lines)


@_render.register
def _digest(message: Digest) -> str:
    out = [message.title, "=" * len(message.title)]
    if message.empty_note:
        return "\n".join([*out, message.empty_note])
    for section in message.sections:
        out += ["", f"## {section.theme_name}"]
        out += [_story(s) for s in section.stories]
    if message.left_out:
        out += ["", f"…and {message.left_out} more stories not shown."]
    return "\n".join(out)


@_render.register
def _alert(message: Alert) -> str:
    n = len(message.stories) + message.left_out
    out = [f"Alert: {n} new {'story' if n == 1 else 'stories'} on {message.label}"]
    out += [_story(s) for s in message.stories]
    if message.left_out:
        out.append(f"…and {message.left_out} more.")
    return "\n".join(out)


def _claim(match: ClaimMatch) -> str:
    who = match.speaker or "unattributed"
    when = match.claimed_on.isoformat() if match.claimed_on else "undated"
    lines = [
        f"• {match.statement}",
        f"  {who}, {when} — {match.source.publication}: {match.source.title}",
        f"  themes: {', '.join(match.themes) or '-'} · status: {match.status}"
        f" · score {match.score:.2f}",
    ]
    if match.status_note:
        lines.append(f"  note: {match.status_note}")
    for cov in match.coverage[:3]:
        lines.append(f"  coverage: {cov.title} ({cov.published[:10]}) {cov.url}")
    return "\n".join(lines)


@_render.register
def _claims(message: ClaimAnswer) -> str:
    if message.problem:
        return message.problem
    if not message.matches:
        return f"{NO_MATCH} “{message.query}”."
    head = f"Claims matching “{message.query}”:"
    return "\n".join([head, *(_claim(m) for m in message.matches)])


@_render.register
def _themes(message: ThemeList) -> str:
    rows = [
        f"• {t.id} — {t.name}{' (subscribed)' if t.subscribed else ''}: {t.description}"
        for t in message.themes
    ]
    return "\n".join(["Themes:", *rows])


@_render.register
def _subs(message: SubscriptionList) -> str:
    if not message.subscriptions:
        return "You have no subscriptions. Try /brief subscribe open-source"
    rows = [f"• [{s.id}] {s.label} → {s.delivery}" for s in message.subscriptions]
    return "\n".join(["Your subscriptions:", *rows])


@_render.register
def _feeds(message: FeedList) -> str:
    if not message.feeds:
        return "No feeds yet."
    rows = []
    for f in message.feeds:
        line = f"• [{f.state}] {f.title or f.url} — {f.url}"
        if f.last_error:
            line += f"\n  last error: {f.last_error}"
        rows.append(line)
    return "\n".join(["Feeds:", *rows])


@_render.register
def _schedule(message: ScheduleInfo) -> str:
    if not message.enabled:
        return "The daily digest is off for this channel."
    text = f"Daily digest at {message.time} {message.timezone} ({message.days})."
    if message.next_run:
        text += f" Next: {message.next_run:%Y-%m-%d %H:%M %Z}."
    quiet = "a short line" if message.empty_day == "line" else "no message"
    return f"{text} A day without news gets {quiet}."


@_render.register
def _help(message: Help) -> str:
    rows = [
        f"  {e.usage:<48} {e.description}{' (admins)' if e.admin_only else ''}"
        for e in message.entries
    ]
    return "\n".join([message.intro or "Commands:", *rows])


@_render.register
def _notice(message: Notice) -> str:
    # The text already names any suggestions; they are separate for buttons elsewhere.
    return message.text

"""The App Home tab: a user's subscriptions, the themes, and one channel's digest schedule.

Everything on it is a button that runs an ordinary command for the user. The channel whose
schedule is shown is picked with a conversations select and kept in the view's
``private_metadata``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from adapters.slack_app.blocks import (
    Block,
    actions,
    button,
    context,
    divider,
    header,
    render,
    section,
    subscribe_button,
    unsubscribe_button,
)
from adapters.slack_app.escape import esc
from bot.messages import Message, Notice, ScheduleInfo, SubscriptionList, ThemeList

MAX_VIEW_BLOCKS = 100
CHANNEL_ACTION = "briefbot_home_channel"
DIGEST_ON_ACTION = "briefbot_digest_on"
DIGEST_OFF_ACTION = "briefbot_digest_off"
DEFAULT_DIGEST_TIME = "09:00"
_SLACK_ID = re.compile(r"^[A-Za-z0-9_]{1,40}$")


@dataclass(frozen=True)
class HomeState:
    """What the home tab shows; built from command answers for one user."""

    subscriptions: Message
    themes: Message
    channel: str | None = None
    schedule: Message | None = None
    notice: Notice | None = None


def channel_of(private_metadata: str | None) -> str | None:
    try:
        data = json.loads(private_metadata or "{}")
    except ValueError:
        return None
    channel = data.get("channel") if isinstance(data, dict) else None
    return channel if is_slack_id(channel) else None


def is_slack_id(value: object) -> bool:
    """A channel or user id as Slack writes them; anything else from a payload is ignored."""
    return isinstance(value, str) and _SLACK_ID.match(value) is not None


def render_home(state: HomeState) -> dict[str, Any]:
    blocks: list[Block] = [header("briefbot")]
    if state.notice is not None:
        blocks += render(state.notice)[0]["blocks"]
    blocks += _subscriptions(state.subscriptions)
    blocks += [divider(), *_schedule(state.channel, state.schedule)]
    blocks += [divider(), *_themes(state.themes)]
    if len(blocks) > MAX_VIEW_BLOCKS:
        blocks = [*blocks[: MAX_VIEW_BLOCKS - 1], context(["More themes: `/brief themes`"])]
    return {
        "type": "home",
        "blocks": blocks,
        "private_metadata": json.dumps({"channel": state.channel} if state.channel else {}),
    }


def _subscriptions(answer: Message) -> list[Block]:
    blocks: list[Block] = [section("*Your subscriptions*")]
    if not isinstance(answer, SubscriptionList):
        return [*blocks, *_as_blocks(answer)]
    if not answer.subscriptions:
        blocks.append(context(["None yet: subscribe to a theme below."]))
    for sub in answer.subscriptions[:30]:
        where = "by direct message" if sub.delivery == "dm" else "in a channel"
        text = f"{esc(sub.label, 300)} ({sub.kind}), {where}"
        blocks.append(section(text, accessory=unsubscribe_button(sub.id)))
    return blocks


def _schedule(channel: str | None, answer: Message | None) -> list[Block]:
    picker: Block = {
        "type": "conversations_select",
        "action_id": CHANNEL_ACTION,
        "placeholder": {"type": "plain_text", "text": "Pick a channel"},
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if channel:
        picker["initial_conversation"] = channel
    blocks: list[Block] = [section("*Channel digest*", accessory=picker)]
    if channel is None or answer is None:
        return [*blocks, context(["Pick a channel to see and change its daily digest."])]
    if not isinstance(answer, ScheduleInfo):
        return [*blocks, *_as_blocks(answer)]
    blocks += render(answer)[0]["blocks"]
    on = button(f"Daily at {DEFAULT_DIGEST_TIME} UTC", DIGEST_ON_ACTION, channel, "primary")
    off = button("Turn the digest off", DIGEST_OFF_ACTION, channel, "danger")
    blocks.append(actions([off] if answer.enabled else [on]))
    blocks.append(context(["Changing a channel's digest is for workspace admins."]))
    return blocks


def _themes(answer: Message) -> list[Block]:
    blocks: list[Block] = [section("*Themes*")]
    if not isinstance(answer, ThemeList):
        return [*blocks, *_as_blocks(answer)]
    for theme in answer.themes:
        text = f"*{esc(theme.name, 200)}*\n{esc(theme.description, 1500)}"
        if theme.subscribed:
            blocks.append(section(text + "\n✓ subscribed"))
        else:
            blocks.append(section(text, accessory=subscribe_button(theme.id, theme.name)))
    return blocks


def _as_blocks(answer: Message) -> list[Block]:
    return list(render(answer)[0]["blocks"][:10])

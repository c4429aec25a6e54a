"""Persistent buttons: follow a theme from a digest or an alert, stop an alert.

The buttons carry everything they need in their custom_id (``briefbot:sub:<theme_id>``,
``briefbot:unsub:<subscription id>``) and are matched with ``DynamicItem`` templates, so
a button on a message posted weeks ago works after any number of restarts: the client
only has to register the two classes (``add_dynamic_items``) at setup.

The renderer builds plain component JSON (``subscribe_button`` / ``unsubscribe_button`` /
``action_rows``); ``view_for`` turns that JSON back into a ``View`` for discord.py sends.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

import discord

from adapters.discord_bot.escape import plain
from bot.commands.requests import Request, Subscribe, Unsubscribe

Component = dict[str, Any]

SUB_PREFIX = "briefbot:sub:"
UNSUB_PREFIX = "briefbot:unsub:"
SUB_TEMPLATE = r"briefbot:sub:(?P<theme>[a-z0-9][a-z0-9_-]{0,63})"
UNSUB_TEMPLATE = r"briefbot:unsub:(?P<id>[0-9]{1,18})"
MAX_LABEL = 80
MAX_ROWS = 5
MAX_PER_ROW = 5
MAX_BUTTONS = MAX_ROWS * MAX_PER_ROW
_THEME_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

STYLE_PRIMARY = 1
STYLE_SECONDARY = 2
STYLE_DANGER = 4


class ButtonActions(Protocol):
    """What a pressed button does: the command bridge answers with the request's result."""

    async def on_button(self, interaction: discord.Interaction[Any], request: Request) -> None: ...


_ACTIONS: weakref.WeakKeyDictionary[discord.Client, ButtonActions] = weakref.WeakKeyDictionary()


def attach(client: discord.Client, actions: ButtonActions) -> None:
    """Register the buttons on ``client`` and say who acts on them. Call once at setup."""
    _ACTIONS[client] = actions
    client.add_dynamic_items(SubscribeButton, UnsubscribeButton)


async def _act(interaction: discord.Interaction[Any], request: Request) -> None:
    actions = _ACTIONS.get(interaction.client)
    if actions is not None:
        await actions.on_button(interaction, request)


# --- the buttons as discord.py items -------------------------------------------------------


class SubscribeButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=SUB_TEMPLATE):
    def __init__(self, theme_id: str, label: str = "Follow", row: int | None = None) -> None:
        button: discord.ui.Button[Any] = discord.ui.Button(
            label=plain(label, MAX_LABEL) or "Follow",
            style=discord.ButtonStyle.primary,
            custom_id=f"{SUB_PREFIX}{theme_id}",
            row=row,
        )
        super().__init__(button)
        self.theme_id = theme_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> SubscribeButton:
        label = getattr(item, "label", None) or "Follow"
        return cls(match["theme"], label)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _act(interaction, Subscribe(kind="theme", value=self.theme_id, delivery="dm"))


class UnsubscribeButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=UNSUB_TEMPLATE):
    def __init__(self, subscription_id: int, row: int | None = None) -> None:
        button: discord.ui.Button[Any] = discord.ui.Button(
            label="Stop this alert",
            style=discord.ButtonStyle.danger,
            custom_id=f"{UNSUB_PREFIX}{subscription_id}",
            row=row,
        )
        super().__init__(button)
        self.subscription_id = subscription_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> UnsubscribeButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        request = Unsubscribe(kind="id", value=str(self.subscription_id))
        await _act(interaction, request)


# --- the same buttons as component JSON ------------------------------------------------------


def subscribe_button(theme_id: str, label: str) -> Component | None:
    """A "follow this theme" button, or None for an id the template would not match."""
    if not _THEME_ID.fullmatch(theme_id):
        return None
    return _button(f"{SUB_PREFIX}{theme_id}", f"Follow {label}", STYLE_PRIMARY)


def unsubscribe_button(subscription_id: int) -> Component:
    return _button(f"{UNSUB_PREFIX}{subscription_id}", "Stop this alert", STYLE_DANGER)


def _button(custom_id: str, label: str, style: int) -> Component:
    return {
        "type": 2,
        "style": style,
        "label": plain(label, MAX_LABEL) or "Follow",
        "custom_id": custom_id,
    }


def action_rows(buttons: Sequence[Component | None]) -> list[Component]:
    """Up to 25 distinct buttons in rows of five."""
    kept: list[Component] = []
    seen: set[str] = set()
    for button in buttons:
        if button is None or button["custom_id"] in seen:
            continue
        seen.add(button["custom_id"])
        kept.append(button)
    kept = kept[:MAX_BUTTONS]
    return [
        {"type": 1, "components": kept[i : i + MAX_PER_ROW]}
        for i in range(0, len(kept), MAX_PER_ROW)
    ]


def view_for(components: Sequence[Component]) -> discord.ui.View | None:
    """A persistent View holding the buttons described by ``components``; None if none."""
    view = discord.ui.View(timeout=None)
    for row, action_row in enumerate(components[:MAX_ROWS]):
        for spec in action_row.get("components", []):
            item = _item_for(str(spec.get("custom_id", "")), str(spec.get("label", "")), row)
            if item is not None:
                view.add_item(item)
    return view if view.children else None


def _item_for(custom_id: str, label: str, row: int) -> discord.ui.Item[Any] | None:
    if match := re.fullmatch(SUB_TEMPLATE, custom_id):
        return SubscribeButton(match["theme"], label, row=row)
    if match := re.fullmatch(UNSUB_TEMPLATE, custom_id):
        return UnsubscribeButton(int(match["id"]), row=row)
    return None

"""Slack adapter: Bolt (AsyncApp) in Socket Mode, HTTP mode or OAuth distribution."""

from __future__ import annotations

from typing import Any

from adapters.slack_app.app import build_slack, slack_mode
from adapters.slack_app.blocks import render
from bot.messages import Message
from bot.plugins import AdapterParts
from bot.services import Services

PARENT_TS = "<ts of the first message>"


def build(services: Services) -> AdapterParts | None:
    """Entry point (briefbot.adapters): None unless Slack credentials are configured."""
    settings = services.app.settings
    if slack_mode(settings) is None:
        return None
    adapter = build_slack(settings, services.handler, engine=services.app.db.engine)
    return AdapterParts(
        name="slack",
        sender=adapter.sender,
        tasks=adapter.tasks(),  # Socket Mode; HTTP routes are served by the bot's HTTP side
        web_routes=adapter.web_routes(),
    )


def preview(message: Message, *, destination: str) -> list[dict[str, Any]]:
    """Entry point (briefbot.renderers): the chat.postMessage payloads, in order; the
    messages after the first go in its thread."""
    payloads: list[dict[str, Any]] = []
    for n, payload in enumerate(render(message)):
        sent = {"channel": destination, **payload}
        if n:
            sent["thread_ts"] = PARENT_TS
        payloads.append(sent)
    return payloads

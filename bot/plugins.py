"""The seam between the core and the chat adapters.

The core never imports an adapter: adapters register themselves as entry points in
``pyproject.toml`` (group ``briefbot.adapters`` for running, ``briefbot.renderers`` for
``briefbot digest --format``), and the core discovers them here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from bot.delivery import Sender
from bot.messages import Message

if TYPE_CHECKING:
    from aiohttp import web

    from bot.services import Services

# A long-running coroutine of an adapter (socket mode, gateway, console prompt); it
# returns when the stop event is set.
Task = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class AdapterParts:
    """What a configured adapter contributes to a running bot."""

    name: str
    sender: Sender | None = None
    tasks: Sequence[Task] = ()
    web_routes: Sequence[web.RouteDef] = ()


class AdapterFactory(Protocol):
    def __call__(self, services: Services) -> AdapterParts | None:
        """The adapter's parts, or None when it is not configured (no credentials)."""
        ...


class Renderer(Protocol):
    def __call__(self, message: Message, *, destination: str) -> list[dict[str, Any]]:
        """The exact payloads the platform would be sent for ``message``."""
        ...


def adapter_factories() -> Mapping[str, AdapterFactory]:
    return {ep.name: ep.load() for ep in entry_points(group="briefbot.adapters")}


def renderers() -> Mapping[str, Renderer]:
    return {ep.name: ep.load() for ep in entry_points(group="briefbot.renderers")}

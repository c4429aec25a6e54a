"""Console adapter: the bot in a terminal, with no chat accounts.

Outgoing messages (digests, alerts) print as readable text; commands typed at the prompt
(`/claim 350k h100`, `/brief themes`) go through the same platform-neutral handler as
Slack and Discord. Feed text is printed with rich markup off, so a title such as
"[bold red]" is shown as typed.
"""

from __future__ import annotations

import asyncio
import getpass
import itertools
import sys
from collections.abc import Callable

from rich.console import Console
from rich.rule import Rule

from bot.commands.requests import Caller
from bot.delivery import Destination, Sent
from bot.messages import Message
from bot.plugins import AdapterParts
from bot.services import Services
from bot.textrender import render_text

PLATFORM = "console"
CHANNEL = "terminal"
PROMPT = "briefbot> "


class ConsoleSender:
    platform = PLATFORM

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._ids = itertools.count(1)

    async def send(self, dest: Destination, message: Message, idempotency_key: str) -> Sent:
        show(self.console, message, heading=f"to {'@' if dest.direct else '#'}{dest.ref}")
        return Sent(message_id=f"console-{next(self._ids)}")

    async def find_sent(self, dest: Destination, idempotency_key: str) -> str | None:
        return None  # a terminal keeps no history to look in


def show(console: Console, message: Message, *, heading: str | None = None) -> None:
    if heading:
        console.print(Rule(heading, style="dim"))
    console.print(render_text(message), markup=False, highlight=False, end="")


def split_command(line: str) -> tuple[str, str] | None:
    """`/brief themes` -> ("brief", "themes"); None for a line that is not a command."""
    line = line.strip()
    if not line.startswith("/"):
        return None
    command, _, rest = line[1:].partition(" ")
    return command.lower(), rest.strip()


def console_caller() -> Caller:
    user = getpass.getuser()
    return Caller(
        platform=PLATFORM,
        workspace="local",
        user_ref=user,
        channel_ref=CHANNEL,
        is_admin=True,  # whoever holds the terminal runs the bot
        display_name=user,
    )


async def prompt_loop(
    services: Services,
    stop: asyncio.Event,
    *,
    console: Console,
    read_line: Callable[[], str | None] | None = None,
) -> None:
    """Read commands until EOF, `/quit` or stop; answer each one in the terminal."""
    read = read_line or _read_stdin
    caller = console_caller()
    console.print("Type /brief help for commands, /quit to leave.", style="dim")
    while not stop.is_set():
        line = await asyncio.to_thread(read)
        if line is None or line.strip() in {"/quit", "/exit"}:
            stop.set()
            return
        parsed = split_command(line)
        if parsed is None:
            if line.strip():
                console.print("Commands start with /, e.g. /claim 350k H100s or /brief help")
            continue
        command, text = parsed
        answer = await services.handler.handle_text(caller, command, text)
        show(console, answer)


def _read_stdin() -> str | None:
    try:
        return input(PROMPT)
    except EOFError:
        return None


def build(services: Services) -> AdapterParts:
    """Entry point (briefbot.adapters): always available; interactive only on a TTY."""
    console = Console()
    if not (sys.stdin.isatty() and services.interactive):
        return AdapterParts(name=PLATFORM, sender=ConsoleSender(console))

    async def task(stop: asyncio.Event) -> None:
        await prompt_loop(services, stop, console=console)

    return AdapterParts(name=PLATFORM, sender=ConsoleSender(console), tasks=[task])

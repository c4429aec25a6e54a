"""The console adapter and the offline demo, end to end as a user sees them."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from adapters.console import ConsoleSender, prompt_loop, split_command
from bot.app import App, open_app
from bot.config import Settings
from bot.delivery import Destination
from bot.messages import Notice
from bot.services import build_services

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = open_app(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}"))
    yield application
    application.close()


def test_split_command() -> None:
    assert split_command("  /Brief   themes ") == ("brief", "themes")
    assert split_command("/claim") == ("claim", "")
    assert split_command("hello") is None


async def test_prompt_answers_typed_commands(app: App) -> None:
    lines = iter(
        ["/claim 350k h100", "/brief subscrbe open-source", "hello", "/brief themes", None]
    )
    buffer = io.StringIO()
    console = Console(file=buffer, width=120)
    await prompt_loop(
        build_services(app), asyncio.Event(), console=console, read_line=lambda: next(lines)
    )
    shown = buffer.getvalue()
    assert "350,000" in shown, "the claim lookup answered"
    assert "Did you mean `subscribe`" in shown and shown.count("Did you mean") == 1
    assert "Commands start with /" in shown
    assert "open-source" in shown and "Traceback" not in shown


async def test_console_sender_prints_feed_text_verbatim() -> None:
    buffer = io.StringIO()
    sender = ConsoleSender(Console(file=buffer, width=120))
    hostile = Notice(level="info", text="[bold red]not markup[/bold red] <@U1>")
    sent = await sender.send(Destination("console", "local", "general"), hostile, "k1")
    assert sent.message_id.startswith("console-")
    assert "[bold red]not markup[/bold red]" in buffer.getvalue()


def test_demo_runs_offline_end_to_end(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "demo"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"},
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Meta AI briefing" in out and "## " in out, "a digest was delivered"
    assert "Alert:" in out, "an alert for the sample subscription was delivered"
    assert out.count("> /claim ") == 3 and out.count("Claims matching") == 3
    assert "Traceback" not in out + proc.stderr
    assert elapsed < 60
    assert not list(tmp_path.iterdir()), "the demo leaves nothing behind"

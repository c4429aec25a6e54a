"""Logging: one line per event, JSON on request, and no secret ever reaches the output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.config import Settings
from bot.logs import Redactor, setup_logging

BOT_TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
APP_TOKEN = "xapp-1-A0123456789-1234567890123-abcdef0123456789"
DISCORD = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
DB_PASSWORD = "s3cr3t-pg-pass"


def settings(log_format: str = "json") -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"postgresql://briefbot:{DB_PASSWORD}@db:5432/briefbot",
        log_format=log_format,
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_app_token=SecretStr(APP_TOKEN),
        slack_signing_secret=SecretStr(SIGNING),
        discord_token=SecretStr(DISCORD),
    )


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def capture(log_format: str) -> io.StringIO:
    out = io.StringIO()
    setup_logging(settings(log_format), stream=out)
    return out


def test_json_lines_carry_level_logger_message_and_extra_fields(restore_root: None) -> None:
    out = capture("json")
    log = logging.getLogger("briefbot.test")
    log.info("fetched %d feeds", 3, extra={"feed_count": 3})
    log.warning("second event")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["level"] == "info" and first["logger"] == "briefbot.test"
    assert first["msg"] == "fetched 3 feeds" and first["feed_count"] == 3
    assert first["ts"].endswith("+00:00")
    assert json.loads(lines[1])["level"] == "warning"


def test_a_traceback_stays_on_its_event_line_in_both_formats(restore_root: None) -> None:
    for log_format in ("json", "text"):
        out = capture(log_format)
        try:
            raise RuntimeError(f"boom with {BOT_TOKEN}")
        except RuntimeError:
            logging.getLogger("briefbot.test").exception("job failed")
        lines = out.getvalue().splitlines()
        assert len(lines) == 1, lines
        assert "RuntimeError" in lines[0] and BOT_TOKEN not in lines[0]
        if log_format == "json":
            assert "Traceback" in json.loads(lines[0])["exc"]


def test_no_secret_reaches_the_output(restore_root: None) -> None:
    out = capture("json")
    log = logging.getLogger("slack_sdk.web")  # a library logging a request, say
    log.info("Authorization: Bearer %s", BOT_TOKEN)
    log.info("socket mode with %s", APP_TOKEN)
    log.info("discord headers %s", {"Authorization": f"Bot {DISCORD}"})
    log.info("signing secret is %s", SIGNING)
    log.info("connecting to postgresql://briefbot:%s@db:5432/briefbot", DB_PASSWORD)
    log.info("password alone: %s", DB_PASSWORD, extra={"url": f"x://u:{DB_PASSWORD}@h"})
    text = out.getvalue()
    for secret in (BOT_TOKEN, APP_TOKEN, DISCORD, SIGNING, DB_PASSWORD):
        assert secret not in text
    assert "postgresql://briefbot:***@db:5432/briefbot" in text
    assert "Bearer ***" in text and "socket mode with ***" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token xoxp-123-456-abc end", "token xoxp-*** end"),
        ("Authorization: Bot abcdefghijk.lmnopqrstuvwxyz", "Authorization: Bot ***"),
        ("https://user:pa55@example.com/feed", "https://user:***@example.com/feed"),
        ("https://example.com/feed?x=1", "https://example.com/feed?x=1"),
        ("Meta Bot launches", "Meta Bot launches"),  # ordinary words stay
    ],
)
def test_token_shapes_are_masked_without_settings(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


def test_setting_up_twice_keeps_one_handler(restore_root: None) -> None:
    first = capture("text")
    second = capture("text")
    logging.getLogger("briefbot.test").info("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1

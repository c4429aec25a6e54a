"""Logging: one line per event (JSON with ``BRIEFBOT_LOG_FORMAT=json``), secrets redacted.

The redacting filter sits on our handler, so it sees every record that reaches the output,
from any library: Slack and Discord tokens, bearer tokens, passwords in URLs, and the secret
values the settings hold are replaced before anything is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from bot.config import Settings

MASK = "***"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Slack: bot, user, app-level, refresh and config tokens.
    (re.compile(r"\b(xox[abposre]|xapp)-[A-Za-z0-9-]+"), rf"\1-{MASK}"),
    # Authorization header values (Discord uses "Bot <token>").
    (re.compile(r"\b(Bot|Bearer)\s+[A-Za-z0-9._~+/=-]{20,}"), rf"\1 {MASK}"),
    # A Discord token on its own: three base64url parts.
    (re.compile(r"\b[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"), MASK),
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*):[^\s@/]+@"), rf"\1:{MASK}@"),
)
_OURS = "_briefbot_handler"
_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class Redactor:
    """Replaces token shapes and the given secret values in a text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole; short values
        # would mask ordinary words and are left to the patterns.
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


class RedactingFilter(logging.Filter):
    """Renders each record's message (and traceback) once, redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in vars(record).items():  # fields passed with extra={...}
            if key not in _RESERVED and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class OneLineFormatter(logging.Formatter):
    """Plain text, but a traceback stays on the line of its event."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", " | ")


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret value the settings hold, the database password included."""
    values = [
        secret.get_secret_value()
        for secret in (
            settings.slack_bot_token,
            settings.slack_app_token,
            settings.slack_signing_secret,
            settings.slack_client_secret,
            settings.discord_token,
            settings.llm_api_key,
        )
        if secret is not None
    ]
    try:
        password = make_url(settings.database_url).password
    except Exception:  # an unparsable URL has no password to hide
        password = None
    if password:
        values.append(str(password))
    return values


def setup_logging(
    settings: Settings | None = None,
    *,
    log_format: str | None = None,
    level: int = logging.INFO,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Install (or replace) briefbot's handler on the root logger; returns it."""
    fmt = (log_format or (settings.log_format if settings else "text")).strip().lower()
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _OURS, True)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(Redactor(settings_secrets(settings) if settings else ())))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler logs every job run at INFO: one line per job per minute says nothing new.
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))  # "Context impl ..."
    return handler


__all__ = [
    "JsonFormatter",
    "RedactingFilter",
    "Redactor",
    "settings_secrets",
    "setup_logging",
]

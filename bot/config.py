"""Configuration from the environment (prefix BRIEFBOT_) and an optional .env file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.db import default_database_url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BRIEFBOT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str = Field(default_factory=default_database_url)
    pack: Path | None = None
    allow_private_feeds: str = ""
    user_agent: str = "briefbot/0.1 (+https://github.com/briefbot/briefbot)"

    fetch_interval_minutes: float = 30.0
    fetch_concurrency: int = 16
    fetch_per_host: int = 2
    fetch_timeout_s: float = 30.0
    max_feed_bytes: int = 10 * 1024 * 1024
    pause_after_errors: int = 10
    # Where feeds are parsed and entries tagged: "process" (one per core, the default)
    # or "thread" (one process; handy for tests and tiny machines).
    parse_pool: Literal["process", "thread"] = "process"
    parse_workers: int = Field(default=2, ge=1, le=64)

    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None

    http_port: int = 8080
    log_format: str = "text"

    slack_api_url: str = "https://slack.com/api/"
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_SIGNING_SECRET"
    )
    slack_client_id: str | None = Field(default=None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_CLIENT_SECRET"
    )
    discord_token: SecretStr | None = Field(default=None, validation_alias="DISCORD_TOKEN")
    discord_guild: str | None = None
    discord_api_url: str | None = None
    admin_users: str = ""


def load_settings() -> Settings:
    return Settings()

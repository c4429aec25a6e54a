"""Multi-workspace installs: Bolt OAuth settings over slack_sdk's SQLAlchemy stores.

The stores are slack_sdk's synchronous ones on the bot's own engine (PostgreSQL or SQLite);
their tables (``slack_bots``, ``slack_installations``, ``slack_oauth_states``) are created
on start, outside Alembic. Bolt's AsyncApp wants async stores, so the two classes here
run each call in a worker thread. slack_sdk's module imports ``sqlalchemy.ext.asyncio``,
which needs ``greenlet`` under SQLAlchemy 2.1.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

log = logging.getLogger(__name__)

BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "im:write",
    "users:read",
    "channels:history",
    "groups:history",
    "im:history",
)
STATE_EXPIRY_S = 600


class ThreadedInstallationStore(AsyncInstallationStore):
    """Bot installations per workspace (or org) in the bot's database; the newest wins."""

    def __init__(self, engine: sa.Engine, client_id: str) -> None:
        self.sync = SQLAlchemyInstallationStore(client_id=client_id, engine=engine, logger=log)
        self.sync.create_tables()  # type: ignore[no-untyped-call]  # checkfirst: every start

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.sync.save, installation)
        log.info(
            "Slack install saved for team %s", installation.team_id or installation.enterprise_id
        )

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.sync.save_bot, bot)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        return await asyncio.to_thread(
            self.sync.find_bot,
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await asyncio.to_thread(
            self.sync.find_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(self.sync.delete_bot, enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await asyncio.to_thread(
            self.sync.delete_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
        )

    async def bot_token(self, team_id: str) -> str | None:
        """The bot token installed in ``team_id``, for the outbox sender."""
        bot = await self.async_find_bot(enterprise_id=None, team_id=team_id)
        return str(bot.bot_token) if bot is not None and bot.bot_token else None


class ThreadedStateStore(AsyncOAuthStateStore):
    """One-time OAuth ``state`` values that expire after ten minutes."""

    def __init__(self, engine: sa.Engine, expiry_s: int = STATE_EXPIRY_S) -> None:
        self.sync = SQLAlchemyOAuthStateStore(
            expiration_seconds=expiry_s, engine=engine, logger=log
        )
        self.sync.create_tables()  # type: ignore[no-untyped-call]

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = await asyncio.to_thread(self.sync.issue)
        await asyncio.to_thread(self._purge_expired)
        return state

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.sync.consume, state)

    def _purge_expired(self) -> None:
        # slack_sdk never deletes unused states, and anyone may open /slack/install.
        table = self.sync.oauth_states
        now = datetime.now(UTC).replace(tzinfo=None)  # the store keeps naive UTC
        with self.sync.engine.begin() as conn:
            conn.execute(sa.delete(table).where(table.c.expire_at < now))


def oauth_settings(
    *,
    client_id: str,
    client_secret: str,
    installations: ThreadedInstallationStore,
    state_store: ThreadedStateStore,
    redirect_uri: str | None = None,
    authorization_url: str | None = None,
) -> AsyncOAuthSettings:
    return AsyncOAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(BOT_SCOPES),
        redirect_uri=redirect_uri,
        install_path="/slack/install",
        redirect_uri_path="/slack/oauth_redirect",
        installation_store=installations,
        installation_store_bot_only=True,
        state_store=state_store,
        authorization_url=authorization_url,
        logger=log,
    )

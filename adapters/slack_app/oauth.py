"""Multi-workspace installs: Bolt OAuth settings over stores in the bot's own database.

slack_sdk ships SQLAlchemy stores, but its module imports ``sqlalchemy.ext.asyncio``, which
under SQLAlchemy 2.1 needs ``greenlet`` (not a dependency of this project). So these are
two small stores on the bot's synchronous engine, with their own tables
(``slack_bots``, ``slack_oauth_states``; created on start, outside Alembic) and
slack_sdk's async store interfaces, each query in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

import sqlalchemy as sa
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

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

metadata = sa.MetaData()
bots = sa.Table(
    "slack_bots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("app_id", sa.String(64)),
    sa.Column("enterprise_id", sa.String(64)),
    sa.Column("enterprise_name", sa.String(200)),
    sa.Column("team_id", sa.String(64)),
    sa.Column("team_name", sa.String(200)),
    sa.Column("bot_token", sa.String(400), nullable=False),
    sa.Column("bot_id", sa.String(64), nullable=False),
    sa.Column("bot_user_id", sa.String(64), nullable=False),
    sa.Column("bot_scopes", sa.String(1000), nullable=False, default=""),
    sa.Column("bot_refresh_token", sa.String(400)),
    sa.Column("bot_token_expires_at", sa.BigInteger),
    sa.Column("is_enterprise_install", sa.Boolean, nullable=False, default=False),
    sa.Column("installed_at", sa.Float, nullable=False),
    sa.Index("slack_bots_lookup", "client_id", "enterprise_id", "team_id", "installed_at"),
)
states = sa.Table(
    "slack_oauth_states",
    metadata,
    sa.Column("state", sa.String(64), primary_key=True),
    sa.Column("expire_at", sa.Float, nullable=False),
)


class BotStore(AsyncInstallationStore):
    """Bot installations per workspace (or org); the newest one wins."""

    def __init__(self, engine: sa.Engine, client_id: str) -> None:
        self._engine = engine
        self._client_id = client_id
        metadata.create_all(engine)  # checkfirst: safe at every start

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        await self.async_save_bot(installation.to_bot())

    async def async_save_bot(self, bot: Bot) -> None:
        row = {
            "client_id": self._client_id,
            "app_id": bot.app_id,
            "enterprise_id": bot.enterprise_id,
            "enterprise_name": bot.enterprise_name,
            "team_id": bot.team_id,
            "team_name": bot.team_name,
            "bot_token": bot.bot_token,
            "bot_id": bot.bot_id,
            "bot_user_id": bot.bot_user_id,
            "bot_scopes": ",".join(bot.bot_scopes),
            "bot_refresh_token": bot.bot_refresh_token,
            "bot_token_expires_at": bot.bot_token_expires_at,
            "is_enterprise_install": bool(bot.is_enterprise_install),
            "installed_at": float(bot.installed_at),
        }
        await asyncio.to_thread(self._write, sa.insert(bots).values(**row))
        log.info("Slack install saved for team %s", bot.team_id or bot.enterprise_id)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        if is_enterprise_install:
            team_id = None
        query = (
            sa.select(bots)
            .where(bots.c.client_id == self._client_id)
            .where(
                bots.c.enterprise_id.is_(None)
                if enterprise_id is None
                else bots.c.enterprise_id == enterprise_id
            )
            .where(bots.c.team_id.is_(None) if team_id is None else bots.c.team_id == team_id)
            .order_by(bots.c.installed_at.desc(), bots.c.id.desc())
            .limit(1)
        )
        row = await asyncio.to_thread(self._read_one, query)
        return None if row is None else _bot_of(row)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return None  # bot-only installs: Bolt asks for bots

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        query = (
            sa.delete(bots)
            .where(bots.c.client_id == self._client_id)
            .where(
                bots.c.enterprise_id.is_(None)
                if enterprise_id is None
                else bots.c.enterprise_id == enterprise_id
            )
            .where(bots.c.team_id.is_(None) if team_id is None else bots.c.team_id == team_id)
        )
        await asyncio.to_thread(self._write, query)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        return None

    async def bot_token(self, team_id: str) -> str | None:
        """The bot token installed in ``team_id``, for the outbox sender."""
        bot = await self.async_find_bot(enterprise_id=None, team_id=team_id)
        return str(bot.bot_token) if bot is not None and bot.bot_token else None

    def _write(self, statement: sa.Executable) -> None:
        with self._engine.begin() as conn:
            conn.execute(statement)

    def _read_one(self, statement: sa.Select[Any]) -> sa.Row[Any] | None:
        with self._engine.connect() as conn:
            return conn.execute(statement).first()


def _bot_of(row: sa.Row[Any]) -> Bot:
    return Bot(
        app_id=row.app_id,
        enterprise_id=row.enterprise_id,
        enterprise_name=row.enterprise_name,
        team_id=row.team_id,
        team_name=row.team_name,
        bot_token=row.bot_token,
        bot_id=row.bot_id,
        bot_user_id=row.bot_user_id,
        bot_scopes=row.bot_scopes,
        bot_refresh_token=row.bot_refresh_token,
        bot_token_expires_at=row.bot_token_expires_at,
        is_enterprise_install=row.is_enterprise_install,
        installed_at=row.installed_at,
    )


class StateStore(AsyncOAuthStateStore):
    """One-time OAuth ``state`` values that expire after ten minutes."""

    def __init__(self, engine: sa.Engine, expiry_s: float = STATE_EXPIRY_S) -> None:
        self._engine = engine
        self._expiry_s = expiry_s
        metadata.create_all(engine)

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(24)
        row = {"state": state, "expire_at": time.time() + self._expiry_s}
        await asyncio.to_thread(self._run, sa.insert(states).values(**row))
        await asyncio.to_thread(
            self._run, sa.delete(states).where(states.c.expire_at < time.time())
        )
        return state

    async def async_consume(self, state: str) -> bool:
        query = sa.delete(states).where(
            states.c.state == state[:64], states.c.expire_at > time.time()
        )
        return await asyncio.to_thread(self._run, query) == 1

    def _run(self, statement: sa.Executable) -> int:
        with self._engine.begin() as conn:
            return int(getattr(conn.execute(statement), "rowcount", 0))


def oauth_settings(
    *,
    client_id: str,
    client_secret: str,
    installations: BotStore,
    state_store: StateStore,
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

"""Engines, sessions and schema upgrades for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from storage.claim_index import index_coverage_at_commit

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULT_SQLITE_FILE = "briefbot.db"


def default_database_url(workdir: Path | None = None) -> str:
    base = (workdir or Path.cwd()).resolve()
    return f"sqlite:///{base / DEFAULT_SQLITE_FILE}"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and route them to psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; issue it ourselves so
        # SELECT ... then UPDATE in one transaction is really atomic. Read-only work (see
        # Database.reading) needs no write lock: under WAL it reads a snapshot.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5)


READ_ONLY = "briefbot_read_only"


def _sqlite_begin(conn: Connection) -> None:
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN in the "begin" event
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


# Any fixed number: replicas starting together take turns at migrating.
MIGRATION_LOCK = 0x62726965  # "brie"


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations; safe to call at every start, from several replicas at once."""
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), revision)
        return
    with engine.connect() as lock:
        lock.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
        try:
            command.upgrade(alembic_config(engine), revision)
        finally:
            lock.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
            lock.commit()


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class Database:
    """An engine plus a session factory: the one handle the rest of the bot passes around."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        if migrate:
            upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        index_coverage_at_commit(self._sessions)
        self._readers = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only unit of work: on SQLite it takes no write lock, so it never waits
        for a writer (nor makes one wait). Writing through it is a mistake."""
        with self._readers() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

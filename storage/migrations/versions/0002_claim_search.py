"""full-text search over claims

SQLite: an external-content FTS5 table over claims.search_text kept in step by triggers,
plus an fts5vocab table for term counts. PostgreSQL: a generated tsvector column with a
GIN index. search_text holds tokens already normalised by bot.claims.query, so neither
backend stems ('simple' configuration, unicode61 tokenizer).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE_UP = [
    "CREATE VIRTUAL TABLE claims_fts USING fts5("
    "search_text, content='claims', content_rowid='rowid', tokenize='unicode61')",
    "CREATE VIRTUAL TABLE claims_fts_vocab USING fts5vocab(claims_fts, 'row')",
    "CREATE TRIGGER claims_fts_ai AFTER INSERT ON claims BEGIN "
    "INSERT INTO claims_fts(rowid, search_text) VALUES (new.rowid, new.search_text); END",
    "CREATE TRIGGER claims_fts_ad AFTER DELETE ON claims BEGIN "
    "INSERT INTO claims_fts(claims_fts, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text); END",
    "CREATE TRIGGER claims_fts_au AFTER UPDATE OF search_text ON claims BEGIN "
    "INSERT INTO claims_fts(claims_fts, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text); "
    "INSERT INTO claims_fts(rowid, search_text) VALUES (new.rowid, new.search_text); END",
    "INSERT INTO claims_fts(claims_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS claims_fts_au",
    "DROP TRIGGER IF EXISTS claims_fts_ad",
    "DROP TRIGGER IF EXISTS claims_fts_ai",
    "DROP TABLE IF EXISTS claims_fts_vocab",
    "DROP TABLE IF EXISTS claims_fts",
]
PG_UP = [
    "ALTER TABLE claims ADD COLUMN search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED",
    "CREATE INDEX ix_claims_search_vector ON claims USING gin (search_vector)",
]
PG_DOWN = [
    "DROP INDEX IF EXISTS ix_claims_search_vector",
    "ALTER TABLE claims DROP COLUMN IF EXISTS search_vector",
]


def _run(statements: list[str]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    _run(SQLITE_UP if op.get_bind().dialect.name == "sqlite" else PG_UP)


def downgrade() -> None:
    _run(SQLITE_DOWN if op.get_bind().dialect.name == "sqlite" else PG_DOWN)

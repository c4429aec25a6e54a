"""coverage claims indexed per transaction: the FTS5 insert trigger skips them

storage.claim_index indexes a transaction's new coverage claims in one statement as it
commits; a trigger firing per row made FTS5 write a tiny segment for nearly every claim.
PostgreSQL is unchanged (a generated tsvector column).

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_INSERT_TRIGGER = (
    "CREATE TRIGGER claims_fts_ai AFTER INSERT ON claims {when}BEGIN "
    "INSERT INTO claims_fts(rowid, search_text) VALUES (new.rowid, new.search_text); END"
)


def _replace_trigger(when: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS claims_fts_ai")
    op.execute(_INSERT_TRIGGER.format(when=when))


def upgrade() -> None:
    _replace_trigger("WHEN new.origin IS NOT 'coverage' ")


def downgrade() -> None:
    _replace_trigger("")

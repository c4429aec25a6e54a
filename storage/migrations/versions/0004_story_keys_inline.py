"""story keys inline: a story's index keys in one column instead of a row per key

Ingest wrote ~48 cluster_keys rows per relevant item, the costliest statement of storing
(a unique index of tens of thousands of rows a day). The keys are only ever read into the
in-memory story index, so each story now carries them in clusters.band_keys. Also drops
the indexes on items.content_hash, published_at and alerts_matched, which no query uses
(each costs every insert).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UNUSED_INDEXES = ("content_hash", "published_at", "alerts_matched")


def upgrade() -> None:
    # No batch mode anywhere here: on SQLite it copies a table, and dropping the old copy
    # would cascade to the rows that refer to it. Both databases alter in place.
    op.add_column("clusters", sa.Column("band_keys", sa.Text(), nullable=False, server_default=""))
    joined = (
        "group_concat(key, ' ')"
        if op.get_bind().dialect.name == "sqlite"
        else "string_agg(key, ' ' ORDER BY key)"
    )
    op.execute(
        f"UPDATE clusters SET band_keys = (SELECT {joined} FROM cluster_keys"
        " WHERE cluster_keys.cluster_id = clusters.id)"
        " WHERE id IN (SELECT cluster_id FROM cluster_keys)"
    )
    op.drop_table("cluster_keys")
    for column in UNUSED_INDEXES:
        op.drop_index(f"ix_items_{column}", table_name="items")


def downgrade() -> None:
    for column in UNUSED_INDEXES:
        op.create_index(f"ix_items_{column}", "items", [column], unique=False)
    op.create_table(
        "cluster_keys",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["clusters.id"],
            name=op.f("fk_cluster_keys_cluster_id_clusters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", "cluster_id", name=op.f("pk_cluster_keys")),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, band_keys FROM clusters")).all()
    pairs = [{"key": key, "cid": cluster_id} for cluster_id, text in rows for key in text.split()]
    if pairs:
        bind.execute(
            sa.text(
                "INSERT INTO cluster_keys (key, cluster_id, created_at)"
                " VALUES (:key, :cid, CURRENT_TIMESTAMP)"
            ),
            pairs,
        )
    op.execute("ALTER TABLE clusters DROP COLUMN band_keys")  # SQLite 3.35+

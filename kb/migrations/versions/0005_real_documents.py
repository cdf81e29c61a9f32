"""real documents: more document kinds, inferred years and periods, cases, passage roles

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: New members of the ``reviewtype`` enum. Stored by name, as SQLAlchemy stores enums; none is
#: longer than the longest old name (15), so SQLite's VARCHAR(15) needs no change.
NEW_TYPES = ("THEMATIC_REVIEW", "SCRUTINY_REPORT", "NEWSLETTER", "BRIEFING")


def upgrade() -> None:
    """Only ``ADD COLUMN`` and new tables and indexes: SQLite then never rebuilds a table, which
    it could not do here with data in it (foreign keys point at ``review`` and ``passage``)."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in NEW_TYPES:
            op.execute(f"ALTER TYPE reviewtype ADD VALUE IF NOT EXISTS '{name}'")
    op.create_table(
        "review_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("partnership_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["partnership_id"], ["partnership.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_review_case_partnership_id", "review_case", ["partnership_id"])
    op.add_column(
        "review",
        sa.Column("year_inferred", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "review", sa.Column("period", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)
    )
    op.add_column(
        "review",
        sa.Column(
            "type_source",
            sqlmodel.sql.sqltypes.AutoString(length=20),
            nullable=False,
            server_default="inferred",
        ),
    )
    if bind.dialect.name == "sqlite":
        # SQLite adds a column with a REFERENCES clause in place; Alembic would rebuild. A
        # downgraded SQLite database still has the column (see downgrade).
        columns = {c["name"] for c in sa.inspect(bind).get_columns("review")}
        if "case_id" not in columns:
            op.execute("ALTER TABLE review ADD COLUMN case_id INTEGER REFERENCES review_case (id)")
    else:
        op.add_column("review", sa.Column("case_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_review_case_id", "review", "review_case", ["case_id"], ["id"])
    op.add_column(
        "review",
        sa.Column("case_source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    )
    op.create_index("ix_review_case_id", "review", ["case_id"])
    op.add_column(
        "passage",
        sa.Column(
            "role",
            sqlmodel.sql.sqltypes.AutoString(length=30),
            nullable=False,
            server_default="other",
        ),
    )
    op.add_column(
        "passage",
        sa.Column(
            "role_source",
            sqlmodel.sql.sqltypes.AutoString(length=20),
            nullable=False,
            server_default="model",
        ),
    )
    op.add_column(
        "passage", sa.Column("role_confidence", sa.Float(), nullable=False, server_default="0")
    )
    op.create_index("ix_passage_role", "passage", ["role"])


def downgrade() -> None:
    """Native ``DROP COLUMN`` (SQLite 3.35+), again without rebuilding tables. SQLite cannot
    drop ``review.case_id`` (a foreign key column) that way, so there it stays, emptied, and an
    upgrade finds it in place."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_passage_role", table_name="passage")
    for column in ("role_confidence", "role_source", "role"):
        op.drop_column("passage", column)
    op.drop_index("ix_review_case_id", table_name="review")
    for column in ("case_source", "type_source", "period", "year_inferred"):
        op.drop_column("review", column)
    if sqlite:
        op.execute("UPDATE review SET case_id = NULL")
    else:
        op.drop_column("review", "case_id")  # its foreign key goes with it
    op.drop_index("ix_review_case_partnership_id", table_name="review_case")
    op.drop_table("review_case")
    # PostgreSQL cannot drop enum values; the four new names stay valid but unused.

"""real documents: more document kinds, inferred years and periods, cases, passage roles

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: New members of the ``reviewtype`` enum. Stored by name, as SQLAlchemy stores enums; none is
#: longer than the longest old name (15), so SQLite's VARCHAR(15) needs no change.
NEW_TYPES = ("THEMATIC_REVIEW", "SCRUTINY_REPORT", "NEWSLETTER", "BRIEFING")


def upgrade() -> None:
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
    with op.batch_alter_table("review_case", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_case_partnership_id"), ["partnership_id"], unique=False
        )
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("year_inferred", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("period", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "type_source",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="inferred",
            )
        )
        batch_op.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("case_source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_review_case_id"), ["case_id"], unique=False)
        batch_op.create_foreign_key("fk_review_case_id", "review_case", ["case_id"], ["id"])
    with op.batch_alter_table("passage", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "role",
                sqlmodel.sql.sqltypes.AutoString(length=30),
                nullable=False,
                server_default="other",
            )
        )
        batch_op.add_column(
            sa.Column(
                "role_source",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="model",
            )
        )
        batch_op.add_column(
            sa.Column("role_confidence", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.create_index(batch_op.f("ix_passage_role"), ["role"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("passage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_passage_role"))
        batch_op.drop_column("role_confidence")
        batch_op.drop_column("role_source")
        batch_op.drop_column("role")
    with op.batch_alter_table("review", schema=None) as batch_op:
        batch_op.drop_constraint("fk_review_case_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_review_case_id"))
        batch_op.drop_column("case_source")
        batch_op.drop_column("case_id")
        batch_op.drop_column("type_source")
        batch_op.drop_column("period")
        batch_op.drop_column("year_inferred")
    with op.batch_alter_table("review_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_case_partnership_id"))
    op.drop_table("review_case")
    # PostgreSQL cannot drop enum values; the four new names stay valid but unused.

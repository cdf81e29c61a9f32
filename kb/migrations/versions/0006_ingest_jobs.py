"""ingest jobs: uploads queued in the database and run by any number of workers

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 19:46:43.525086
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("partnership", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("state", sa.Enum("QUEUED", "RUNNING", "DONE", name="jobstate"), nullable=False),
        sa.Column("worker", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ingest_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ingest_job_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_ingest_job_username"), ["username"], unique=False)

    op.create_table(
        "ingest_job_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("original", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column(
            "state",
            sa.Enum("PENDING", "RUNNING", "INGESTED", "SKIPPED", "FAILED", name="filestate"),
            nullable=False,
        ),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["ingest_job.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ingest_job_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ingest_job_file_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ingest_job_file", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_job_file_job_id"))

    op.drop_table("ingest_job_file")
    with op.batch_alter_table("ingest_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_job_username"))
        batch_op.drop_index(batch_op.f("ix_ingest_job_state"))

    op.drop_table("ingest_job")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS filestate")
        op.execute("DROP TYPE IF EXISTS jobstate")

"""index finding.passage_id and recommendation.passage_id

Why: a new version of a document deletes the old version's passages inside its write
transaction, and each deleted passage makes the database check these foreign keys; unindexed,
that was a scan of both tables per passage (72 s of a 5 MB document's write).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:15:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_finding_passage_id"), ["passage_id"], unique=False)
    with op.batch_alter_table("recommendation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recommendation_passage_id"), ["passage_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("recommendation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recommendation_passage_id"))
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_finding_passage_id"))

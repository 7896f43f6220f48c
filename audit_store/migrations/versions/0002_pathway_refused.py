"""Assessment status: add ``pathway`` (a stop condition answered instead of a ranking) and
``refused`` (the call's data was not exactly one patient's; audited, no card).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_NEW = "status IN ('assessed', 'cannot_assess', 'pathway', 'refused')"
_OLD = "status IN ('assessed', 'cannot_assess')"


def upgrade() -> None:
    with op.batch_alter_table("assessments") as batch:
        batch.drop_constraint(op.f("ck_assessments_ck_assessments_status"), type_="check")
        batch.create_check_constraint(op.f("ck_assessments_ck_assessments_status"), _NEW)


def downgrade() -> None:
    with op.batch_alter_table("assessments") as batch:
        batch.drop_constraint(op.f("ck_assessments_ck_assessments_status"), type_="check")
        batch.create_check_constraint(op.f("ck_assessments_ck_assessments_status"), _OLD)

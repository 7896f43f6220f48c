"""Initial audit schema: assessments, assessment_cards, feedback, outcomes.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _common(table: str) -> list[Any]:
    return [
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("schema_version", sa.SmallInteger(), nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("via", sa.String(8), nullable=False),
        sa.CheckConstraint("via IN ('direct', 'spool')", name=f"ck_{table}_via"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    ]


def upgrade() -> None:
    op.create_table(
        "assessments",
        *_common("assessments"),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("hook", sa.Text(), nullable=False),
        sa.Column("hook_instance", sa.Text(), nullable=False),
        sa.Column("service_id", sa.Text(), nullable=False),
        sa.Column("patient_ref", sa.Text(), nullable=False),
        sa.Column("model_id", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("guideline", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("feature_hash", sa.Text(), nullable=False),
        sa.Column("features", _json(), nullable=False),
        sa.Column("regimen", _json(), nullable=False),
        sa.Column("options", _json(), nullable=False),
        sa.Column("findings", _json(), nullable=False),
        sa.Column("cards", _json(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("prefetch_fetched", _json(), nullable=False),
        sa.Column("llm", _json(), nullable=True),
        sa.UniqueConstraint("request_id", name="uq_assessments_request_id"),
        sa.CheckConstraint("status IN ('assessed', 'cannot_assess')",
                           name="ck_assessments_status"),
    )
    op.create_index("ix_assessments_received_at", "assessments", ["received_at"])
    op.create_index("ix_assessments_hook_instance", "assessments", ["hook_instance"])
    op.create_index("ix_assessments_patient_ref", "assessments", ["patient_ref"])

    op.create_table(
        "assessment_cards",
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("card_uuid", sa.Text(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["assessments.request_id"], ondelete="CASCADE",
                                name="fk_assessment_cards_request_id_assessments"),
        sa.PrimaryKeyConstraint("request_id", "card_uuid", name="pk_assessment_cards"),
    )
    op.create_index("ix_assessment_cards_card_uuid", "assessment_cards", ["card_uuid"])

    op.create_table(
        "feedback",
        *_common("feedback"),
        sa.Column("service_id", sa.Text(), nullable=False),
        sa.Column("card_uuid", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("accepted_suggestions", _json(), nullable=False),
        sa.Column("override_reason_code", sa.Text(), nullable=True),
        sa.Column("override_reason_system", sa.Text(), nullable=True),
        sa.Column("override_reason_display", sa.Text(), nullable=True),
        sa.Column("user_comment", sa.Text(), nullable=True),
        sa.Column("outcome_timestamp", _TS, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.UniqueConstraint("service_id", "card_uuid", "outcome", "outcome_timestamp",
                            name="uq_feedback_service_id_card_uuid_outcome_outcome_timestamp"),
        sa.CheckConstraint("outcome IN ('accepted', 'overridden')", name="ck_feedback_outcome"),
    )
    op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])
    op.create_index("ix_feedback_received_at", "feedback", ["received_at"])

    op.create_table(
        "outcomes",
        *_common("outcomes"),
        sa.Column("patient_ref", sa.Text(), nullable=False),
        sa.Column("observed_at", _TS, nullable=False),
        sa.Column("sbp", sa.Double(), nullable=False),
        sa.Column("setting", sa.String(16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.UniqueConstraint("patient_ref", "observed_at", "setting", "source", "sbp",
                            name="uq_outcomes_patient_ref_observed_at_setting_source_sbp"),
        sa.CheckConstraint("setting IN ('clinic', 'home')", name="ck_outcomes_setting"),
    )
    op.create_index("ix_outcomes_patient_ref", "outcomes", ["patient_ref"])
    op.create_index("ix_outcomes_observed_at", "outcomes", ["observed_at"])


def downgrade() -> None:
    op.drop_table("outcomes")
    op.drop_table("feedback")
    op.drop_table("assessment_cards")
    op.drop_table("assessments")

"""Rationales: the LLM rationales written for assessments (issue 16), one row each: what the LLM
sent, the verifier's verdict, what was shown, the model, server version and latency.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def _json(*, nullable: bool = False) -> Any:
    return sa.JSON(none_as_null=nullable).with_variant(
        postgresql.JSONB(none_as_null=nullable), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rationales",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("schema_version", sa.SmallInteger(), nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("via", sa.String(8), nullable=False),
        sa.Column("rationale_id", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("patient_ref", sa.Text(), nullable=False),
        sa.Column("facts_hash", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("shown", _json(), nullable=False),
        sa.Column("llm_content", sa.Text(), nullable=True),
        sa.Column("verdict", _json(nullable=True), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("server_version", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Double(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rationales"),
        sa.UniqueConstraint("rationale_id", name="uq_rationales_rationale_id"),
        sa.CheckConstraint("via IN ('direct', 'spool')", name="ck_rationales_via"),
        sa.CheckConstraint(
            "status IN ('verified', 'rejected', 'unavailable', 'timeout', 'off')",
            name="ck_rationales_status"),
        sa.CheckConstraint("trigger IN ('card', 'operation', 'panel')",
                           name="ck_rationales_trigger"),
    )
    op.create_index("ix_rationales_request_id", "rationales", ["request_id"])
    op.create_index("ix_rationales_received_at", "rationales", ["received_at"])


def downgrade() -> None:
    op.drop_table("rationales")

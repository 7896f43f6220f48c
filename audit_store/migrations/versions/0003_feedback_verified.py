"""Feedback: ``verified``, whether the service checked the feedback against the audit record of
its card (known card of this service, offered override reason, the card's suggestions).
Feedback stored before this revision was not checked: it reads ``false``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("feedback", sa.Column("verified", sa.Boolean(), nullable=False,
                                        server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("verified")

"""Audit tables (SQLAlchemy Core), one set for SQLite and PostgreSQL.

``assessments`` holds one row per assessment; ``assessment_cards`` indexes the cards shown so
feedback (which names a card uuid) joins back to the assessment; ``feedback`` is unique on
(service_id, card_uuid, outcome, outcome_timestamp) so a resent feedback is stored once, and
says whether it was checked against its card's record (``verified``);
``outcomes`` holds observed follow-up BP; ``rationales`` the LLM rationales written for
assessments (what the LLM sent, the verifier's verdict, what was shown), keyed by the
assessment's ``request_id`` (no foreign key: a rationale written after its card may reach the
database before its assessment leaves the spool). JSON columns are JSONB on PostgreSQL.

Every row also says how it arrived (``via``: ``direct`` or ``spool``) and when the store
committed it (``recorded_at``), so a replayed record can be told from one written in-line.
The migrations in ``migrations/versions`` create exactly these tables; a test compares them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from audit_store.records import utc

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both back ends.

    PostgreSQL stores ``timestamptz``; SQLite has no zone, so values are written as naive UTC
    (one fixed text format, so comparisons and unique keys behave) and read back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect
                             ) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_type(*, nullable: bool = False) -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; SQL NULL (not JSON null) for nullable columns."""
    return JSON(none_as_null=nullable).with_variant(JSONB(none_as_null=nullable), "postgresql")


ID_TYPE: Final = BigInteger().with_variant(Integer(), "sqlite")


def _common() -> list[Column[Any]]:
    return [
        Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        Column("schema_version", SmallInteger, nullable=False),
        Column("recorded_at", UTCDateTime, nullable=False),
        Column("via", String(8), nullable=False),
    ]


assessments = Table(
    "assessments", metadata,
    *_common(),
    Column("request_id", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("hook", Text, nullable=False),
    Column("hook_instance", Text, nullable=False),
    Column("service_id", Text, nullable=False),
    Column("patient_ref", Text, nullable=False),
    Column("model_id", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("guideline", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("feature_hash", Text, nullable=False),
    Column("features", json_type(), nullable=False),
    Column("regimen", json_type(), nullable=False),
    Column("options", json_type(), nullable=False),
    Column("findings", json_type(), nullable=False),
    Column("cards", json_type(), nullable=False),
    Column("latency_ms", Double, nullable=False),
    Column("prefetch_fetched", json_type(), nullable=False),
    Column("llm", json_type(nullable=True), nullable=True),
    UniqueConstraint("request_id"),
    CheckConstraint("status IN ('assessed', 'cannot_assess', 'pathway', 'refused')",
                    name="status"),
    CheckConstraint("via IN ('direct', 'spool')", name="via"),
    Index(None, "received_at"),
    Index(None, "hook_instance"),
    Index(None, "patient_ref"),
)

assessment_cards = Table(
    "assessment_cards", metadata,
    Column("request_id", Text,
           ForeignKey("assessments.request_id", ondelete="CASCADE"), primary_key=True),
    Column("card_uuid", Text, primary_key=True),
    Column("position", SmallInteger, nullable=False),
    Index(None, "card_uuid"),
)

feedback = Table(
    "feedback", metadata,
    *_common(),
    Column("service_id", Text, nullable=False),
    Column("card_uuid", Text, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", json_type(), nullable=False),
    Column("override_reason_code", Text, nullable=True),
    Column("override_reason_system", Text, nullable=True),
    Column("override_reason_display", Text, nullable=True),
    Column("user_comment", Text, nullable=True),
    Column("outcome_timestamp", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("verified", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("service_id", "card_uuid", "outcome", "outcome_timestamp"),
    CheckConstraint("outcome IN ('accepted', 'overridden')", name="outcome"),
    CheckConstraint("via IN ('direct', 'spool')", name="via"),
    Index(None, "card_uuid"),
    Index(None, "received_at"),
)

outcomes = Table(
    "outcomes", metadata,
    *_common(),
    Column("patient_ref", Text, nullable=False),
    Column("observed_at", UTCDateTime, nullable=False),
    Column("sbp", Double, nullable=False),
    Column("setting", String(16), nullable=False),
    Column("source", Text, nullable=False),
    UniqueConstraint("patient_ref", "observed_at", "setting", "source", "sbp"),
    CheckConstraint("setting IN ('clinic', 'home')", name="setting"),
    CheckConstraint("via IN ('direct', 'spool')", name="via"),
    Index(None, "patient_ref"),
    Index(None, "observed_at"),
)

rationales = Table(
    "rationales", metadata,
    *_common(),
    Column("rationale_id", Text, nullable=False),
    Column("request_id", Text, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("patient_ref", Text, nullable=False),
    Column("facts_hash", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("shown", json_type(), nullable=False),
    Column("llm_content", Text, nullable=True),
    Column("verdict", json_type(nullable=True), nullable=True),
    Column("model", Text, nullable=True),
    Column("server_version", Text, nullable=True),
    Column("latency_ms", Double, nullable=True),
    Column("error", Text, nullable=True),
    UniqueConstraint("rationale_id"),
    CheckConstraint("status IN ('verified', 'rejected', 'unavailable', 'timeout', 'off')",
                    name="status"),
    CheckConstraint("trigger IN ('card', 'operation', 'panel')", name="trigger"),
    CheckConstraint("via IN ('direct', 'spool')", name="via"),
    Index(None, "request_id"),
    Index(None, "received_at"),
)

#: Conflict targets that make every insert idempotent (replay skips what is already stored).
UNIQUE_KEYS: Final[dict[str, list[str]]] = {
    "assessments": ["request_id"],
    "assessment_cards": ["request_id", "card_uuid"],
    "feedback": ["service_id", "card_uuid", "outcome", "outcome_timestamp"],
    "outcomes": ["patient_ref", "observed_at", "setting", "source", "sbp"],
    "rationales": ["rationale_id"],
}

"""Mapping between audit records and table rows (both directions)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Literal

from audit_store.records import (
    AssessmentRecord,
    AuditRecord,
    FeedbackRecord,
    OutcomeRecord,
    RationaleRecord,
)
from audit_store.schema import assessment_cards, assessments, feedback, outcomes, rationales

Via = Literal["direct", "spool"]

#: Columns the store adds to every record's own fields.
_STORE_COLUMNS = frozenset({"id", "recorded_at", "via"})


def _row(rec: AuditRecord, via: Via, now: datetime | None) -> dict[str, Any]:
    # Field by field (not asdict): the JSON payloads are handed over as they are.
    row = {f.name: getattr(rec, f.name) for f in fields(rec)}
    row["via"] = via
    row["recorded_at"] = now or datetime.now(UTC)
    return row


def assessment_row(rec: AssessmentRecord, via: Via, now: datetime | None = None
                   ) -> dict[str, Any]:
    return _row(rec, via, now)


def card_rows(rec: AssessmentRecord) -> list[dict[str, Any]]:
    seen: set[str] = set()
    rows = []
    for position, uuid in enumerate(rec.card_uuids()):
        if uuid not in seen:
            seen.add(uuid)
            rows.append({"request_id": rec.request_id, "card_uuid": uuid,
                         "position": position})
    return rows


def feedback_row(rec: FeedbackRecord, via: Via, now: datetime | None = None) -> dict[str, Any]:
    return _row(rec, via, now)


def outcome_row(rec: OutcomeRecord, via: Via, now: datetime | None = None) -> dict[str, Any]:
    return _row(rec, via, now)


def rationale_row(rec: RationaleRecord, via: Via, now: datetime | None = None
                  ) -> dict[str, Any]:
    return _row(rec, via, now)


def _fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _STORE_COLUMNS}


def assessment_from_row(row: Mapping[Any, Any]) -> AssessmentRecord:
    return AssessmentRecord(**_fields(row))


def feedback_from_row(row: Mapping[Any, Any]) -> FeedbackRecord:
    return FeedbackRecord(**_fields(row))


def outcome_from_row(row: Mapping[Any, Any]) -> OutcomeRecord:
    return OutcomeRecord(**_fields(row))


def rationale_from_row(row: Mapping[Any, Any]) -> RationaleRecord:
    return RationaleRecord(**_fields(row))


TABLES = {"assessment": assessments, "feedback": feedback, "outcome": outcomes,
          "card": assessment_cards, "rationale": rationales}

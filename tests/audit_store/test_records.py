"""Audit records: hashing, pseudonyms, validation and the JSON form used by the spool."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from audit_store.records import (
    CARD_OVERRIDE_REASONS,
    SCHEMA_VERSION,
    AssessmentRecord,
    FeedbackRecord,
    IssuedCard,
    OfferedReason,
    OutcomeRecord,
    feature_hash,
    patient_ref,
    record_from_dict,
)
from tests.audit_store import factories


def test_feature_hash_is_canonical_sha256() -> None:
    a = feature_hash({"age": 60, "egfr": None, "bmi": 28.5}, {"acei": 1})
    b = feature_hash({"bmi": 28.5, "egfr": None, "age": 60.0}, {"acei": 1.0})
    assert a == b  # key order and int/float spelling do not matter
    doc = '{"features":{"age":60.0,"bmi":28.5,"egfr":null},"regimen":{"acei":1.0}}'
    assert a == hashlib.sha256(doc.encode()).hexdigest()
    assert feature_hash({"age": 61.0, "egfr": None, "bmi": 28.5}, {"acei": 1.0}) != a
    assert feature_hash({"age": 60.0, "egfr": 0.0, "bmi": 28.5}, {"acei": 1.0}) != a
    assert feature_hash({"age": 60.0, "egfr": None, "bmi": 28.5}, {}) != a


def test_feature_hash_refuses_non_finite_values() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        feature_hash({"age": math.nan}, {})


def test_patient_ref_is_hmac_sha256_and_keyed() -> None:
    key = b"k" * 32
    ref = patient_ref("Patient/123", key)
    assert ref == hmac.new(key, b"Patient/123", hashlib.sha256).hexdigest()
    assert "123" not in ref
    assert len(ref) == 64
    assert patient_ref("Patient/123", b"other-key") != ref
    with pytest.raises(ValueError, match="key"):
        patient_ref("Patient/123", b"")


@pytest.mark.parametrize("rec", [factories.assessment(3, llm={"model": "m", "omissions": 0}),
                                 factories.feedback(2), factories.feedback(4, outcome="accepted"),
                                 factories.outcome(1, setting="home")],
                         ids=["assessment", "overridden", "accepted", "outcome"])
def test_dict_round_trip_through_json(
        rec: AssessmentRecord | FeedbackRecord | OutcomeRecord) -> None:
    kind = type(rec).__name__.removesuffix("Record").lower()
    text = json.dumps(rec.to_dict(), allow_nan=False)
    back = record_from_dict(kind, json.loads(text))
    assert back == rec
    assert back.schema_version == SCHEMA_VERSION


def test_datetimes_are_normalised_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    rec = factories.assessment(received_at=datetime(2026, 11, 24, 10, 0, tzinfo=cet))
    assert rec.received_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert rec.received_at.utcoffset() == timedelta(0)
    assert rec.to_dict()["received_at"] == "2026-11-24T09:00:00+00:00"


def test_invalid_records_are_refused() -> None:
    good = factories.assessment()
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(good, received_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="status"):
        replace(good, status="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="features"):
        replace(good, features={"age": math.inf})
    with pytest.raises(ValueError, match="JSON compliant"):
        replace(good, options=[{"id": "add_ccb", "p_target": math.nan}])
    with pytest.raises(TypeError, match="JSON serializable"):
        replace(good, llm={"when": datetime(2026, 1, 1, tzinfo=UTC)})
    with pytest.raises(ValueError, match="request_id"):
        replace(good, request_id="")
    with pytest.raises(ValueError, match="outcome"):
        replace(factories.feedback(), outcome="ignored")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="setting"):
        replace(factories.outcome(), setting="ward")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schema_version"):
        replace(factories.outcome(), schema_version=SCHEMA_VERSION + 1)


def test_from_dict_refuses_unknown_fields_and_kinds() -> None:
    data = factories.outcome().to_dict() | {"patient_id": "123"}
    with pytest.raises(ValueError, match="unknown OutcomeRecord fields"):
        OutcomeRecord.from_dict(data)
    with pytest.raises(ValueError, match="kind"):
        record_from_dict("diagnosis", factories.outcome().to_dict())


def test_feedback_key_and_card_uuids() -> None:
    fb = factories.feedback(7)
    assert fb.key() == (fb.service_id, "card-000007-0", "overridden", fb.outcome_timestamp)
    assert factories.assessment(5, cards=2).card_uuids() == ["card-000005-0", "card-000005-1"]


def test_feedback_spooled_before_the_verified_flag_reads_as_unchecked() -> None:
    data = factories.feedback(3).to_dict()
    del data["verified"]  # a spool line written by the previous release
    assert FeedbackRecord.from_dict(data).verified is False
    checked = replace(factories.feedback(3), verified=True)
    assert FeedbackRecord.from_dict(json.loads(json.dumps(checked.to_dict()))) == checked
    with pytest.raises(ValueError, match="verified"):
        replace(checked, verified="yes")  # type: ignore[arg-type]


def test_an_issued_card_reads_either_form_of_suggestions() -> None:
    entry = {"uuid": "c", "suggestions": [{"uuid": "s-1", "option": "x"}, {"uuid": None},
                                          "s-legacy"],
             CARD_OVERRIDE_REASONS: [{"code": "need-more-info", "display": "Need more"},
                                     {"display": "no code"}]}
    card = IssuedCard.from_entry("req", "svc", entry)
    assert card.suggestions == frozenset({"s-1", "s-legacy"})
    assert card.override_reasons == (OfferedReason("need-more-info", None, "Need more"),)
    assert IssuedCard.from_entry("req", "svc", {"uuid": "c"}).override_reasons is None

"""Audit records: what the service remembers about each assessment, feedback and outcome.

One event schema serves the EU AI Act art. 12 event log, the DCB0129 hazard log and the
monitoring job: request and hook ids, model version and execution provider, a hash of the input
features (plus the features themselves, which are derived values, never FHIR resources),
the scored options with their intervals, drivers and findings, the cards shown, latency, and
later the clinician's feedback and the observed follow-up blood pressure.

No patient identifier is stored. ``patient_ref`` is a keyed hash (HMAC-SHA256) of the patient
id made by the caller with a deployment secret, so records of one patient can be joined
(assessment -> follow-up BP) without the store being able to name the patient.

Records are frozen dataclasses with ``to_dict``/``from_dict`` for the JSON spool; every record
carries ``schema_version`` so a spool written by an older release can still be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeVar, cast, get_args

#: Version of the record layout written to the spool and the database.
SCHEMA_VERSION: Final = 1

#: assessed: options ranked; cannot_assess: not possible (reasons); pathway: a stop condition
#: answered instead of a ranking; refused: the call's data was not one patient's (no card).
AssessmentStatus = Literal["assessed", "cannot_assess", "pathway", "refused"]
FeedbackOutcome = Literal["accepted", "overridden"]
BPSetting = Literal["clinic", "home"]
#: What a rationale's shown text is: the LLM's, verified against the facts (verified), or the
#: deterministic rationale in its place, and why (rejected, unavailable, timeout, off).
RationaleStatus = Literal["verified", "rejected", "unavailable", "timeout", "off"]
#: What asked for a rationale: a card's background writing, $hypertension-options, the panel.
RationaleTrigger = Literal["card", "operation", "panel"]

_DATETIME_FIELDS: Final = frozenset({"received_at", "outcome_timestamp", "observed_at"})


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, no NaN/Infinity (they raise)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def feature_hash(features: Mapping[str, float | None], regimen: Mapping[str, float]) -> str:
    """SHA-256 (hex) of the canonical JSON of the model inputs: features and current regimen.

    Integers and floats of equal value hash alike (all numbers are written as floats), so the
    hash does not depend on how a value was parsed. Non-finite numbers raise ``ValueError``.
    """
    doc = {
        "features": {str(k): None if v is None else float(v) for k, v in features.items()},
        "regimen": {str(k): float(v) for k, v in regimen.items()},
    }
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


def patient_ref(patient_id: str, key: bytes) -> str:
    """Keyed pseudonym of a patient id: HMAC-SHA256 hex. The key is a deployment secret."""
    if not key:
        raise ValueError("patient_ref needs a non-empty key")
    return hmac.new(key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()


def utc(value: datetime, name: str = "datetime") -> datetime:
    """The same instant in UTC; naive datetimes are refused (their zone is unknowable)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _check_choice(name: str, value: object, literal: Any) -> None:
    allowed = get_args(literal)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _check_finite(name: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{name} must be finite or None")


def _check_json(rec: object) -> None:
    """Everything must survive the JSON spool and a JSONB column unchanged: plain JSON types,
    no NaN/Infinity (raises ``ValueError`` or ``TypeError`` otherwise)."""
    json.dumps([getattr(rec, f.name) for f in fields(rec)  # type: ignore[arg-type]
                if f.name not in _DATETIME_FIELDS], allow_nan=False)


_R = TypeVar("_R", bound="_Record")


@dataclass(frozen=True, slots=True)
class _Record:
    """Shared JSON conversion; datetimes travel as ISO 8601 strings with an offset."""

    def __post_init__(self) -> None:
        for name in _DATETIME_FIELDS.intersection(f.name for f in fields(self)):
            object.__setattr__(self, name, utc(getattr(self, name), name))
        version = getattr(self, "schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
            raise ValueError(f"unsupported audit schema_version {version!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in _DATETIME_FIELDS.intersection(out):
            out[name] = out[name].isoformat()
        return out

    @classmethod
    def from_dict(cls: type[_R], data: Mapping[str, Any]) -> _R:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        kwargs = dict(data)
        for name in _DATETIME_FIELDS.intersection(kwargs):
            if isinstance(kwargs[name], str):
                kwargs[name] = datetime.fromisoformat(kwargs[name])
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class AssessmentRecord(_Record):
    """One CDS Hooks call (or CLI/API assessment) and what was shown for it."""

    request_id: str
    hook: str
    hook_instance: str
    service_id: str
    received_at: datetime
    patient_ref: str
    model_id: str
    model_version: str
    provider: str
    guideline: str
    status: AssessmentStatus
    feature_hash: str
    features: dict[str, float | None]
    regimen: dict[str, float]
    #: id, rank, status, predicted_sbp_change, interval, p_target, findings, drivers
    options: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    #: per card: uuid, indicator, summary, suggestions (uuid, option) and the override reasons
    #: offered (``override_reasons``: code, system, display; see :class:`IssuedCard`)
    cards: list[dict[str, Any]]
    latency_ms: float
    prefetch_fetched: list[str]
    llm: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _Record.__post_init__(self)
        if not self.request_id:
            raise ValueError("request_id is required")
        _check_choice("status", self.status, AssessmentStatus)
        _check_finite("latency_ms", self.latency_ms)
        for name, value in self.features.items():
            _check_finite(f"features[{name}]", value)
        _check_json(self)

    def card_uuids(self) -> list[str]:
        return [str(c["uuid"]) for c in self.cards if c.get("uuid")]


@dataclass(frozen=True, slots=True)
class FeedbackRecord(_Record):
    """CDS Hooks feedback on one card: accepted suggestions or an override with its reason."""

    service_id: str
    card_uuid: str
    outcome: FeedbackOutcome
    accepted_suggestions: list[str]
    override_reason_code: str | None
    override_reason_system: str | None
    override_reason_display: str | None
    user_comment: str | None
    outcome_timestamp: datetime
    received_at: datetime
    schema_version: int = SCHEMA_VERSION
    #: True when the service checked it against the audit record of its card (known card of
    #: this service, offered reason, the card's suggestions); False when that record could not
    #: be read yet (its assessment still in the spool, or the database down) and for feedback
    #: stored before the check existed.
    verified: bool = False

    def __post_init__(self) -> None:
        _Record.__post_init__(self)
        if not isinstance(self.verified, bool):
            raise ValueError("verified must be a bool")
        if not self.card_uuid:
            raise ValueError("card_uuid is required")
        _check_choice("outcome", self.outcome, FeedbackOutcome)
        _check_json(self)

    def key(self) -> tuple[str, str, str, datetime]:
        """The idempotency key: the same feedback sent twice is stored once."""
        return (self.service_id, self.card_uuid, self.outcome, self.outcome_timestamp)


@dataclass(frozen=True, slots=True)
class OutcomeRecord(_Record):
    """An observed follow-up systolic BP (clinic or home) for realised calibration."""

    patient_ref: str
    observed_at: datetime
    sbp: float
    setting: BPSetting
    source: str
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _Record.__post_init__(self)
        _check_choice("setting", self.setting, BPSetting)
        _check_finite("sbp", self.sbp)


#: The key of a card entry of :attr:`AssessmentRecord.cards` that lists the override reasons
#: the card offered, each ``{"code", "system", "display"}``.
CARD_OVERRIDE_REASONS: Final = "override_reasons"


@dataclass(frozen=True, slots=True)
class OfferedReason:
    """An override reason a card offered."""

    code: str
    system: str | None
    display: str | None


@dataclass(frozen=True, slots=True)
class IssuedCard:
    """A card the service issued, as the audit record of its assessment shows it (what
    feedback on the card is checked against)."""

    uuid: str
    request_id: str
    service_id: str
    #: uuids of the card's suggestions
    suggestions: frozenset[str]
    #: the override reasons offered; None when the record does not say (written before
    #: records listed them)
    override_reasons: tuple[OfferedReason, ...] | None

    @classmethod
    def from_entry(cls, request_id: str, service_id: str, entry: Mapping[str, Any]
                   ) -> IssuedCard:
        """Read one entry of :attr:`AssessmentRecord.cards`. Suggestions are dicts with a
        ``uuid`` (strings in records of early releases)."""
        ids = (s.get("uuid") if isinstance(s, Mapping) else s
               for s in entry.get("suggestions") or [])
        suggestions = frozenset(str(i) for i in ids if i)
        raw = entry.get(CARD_OVERRIDE_REASONS)
        reasons = None if raw is None else tuple(
            OfferedReason(str(r["code"]), r.get("system"), r.get("display"))
            for r in raw if isinstance(r, Mapping) and r.get("code"))
        return cls(str(entry["uuid"]), request_id, service_id, suggestions, reasons)


@dataclass(frozen=True, slots=True)
class RationaleRecord(_Record):
    """One LLM rationale written for an assessment (issue 16): what the LLM sent, what the
    verifier found, and what a clinician is shown in its place or as it is. Written when the
    LLM's answer (or its failure) is known, which for a card is after the card went out: the
    record names the call it was written for (``request_id``, the assessment record's key)."""

    rationale_id: str
    request_id: str
    trigger: RationaleTrigger
    received_at: datetime
    patient_ref: str
    #: SHA-256 of the facts the rationale was written from (the cache key)
    facts_hash: str
    status: RationaleStatus
    #: the sentences shown, each ``{"text", "facts"}`` (the verified LLM text or the
    #: deterministic rationale)
    shown: list[dict[str, Any]]
    #: the LLM's message content as sent (None: no completion)
    llm_content: str | None
    #: the verifier's verdict: ``{"ok", "problems": [{"kind", "detail", "fact_id",
    #: "sentence"}]}`` (None: nothing to verify)
    verdict: dict[str, Any] | None
    model: str | None
    server_version: str | None
    latency_ms: float | None
    #: why there is no LLM text (an error class name), else None
    error: str | None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _Record.__post_init__(self)
        if not self.rationale_id or not self.request_id:
            raise ValueError("rationale_id and request_id are required")
        _check_choice("status", self.status, RationaleStatus)
        _check_choice("trigger", self.trigger, RationaleTrigger)
        _check_finite("latency_ms", self.latency_ms)
        _check_json(self)


AuditRecord = AssessmentRecord | FeedbackRecord | OutcomeRecord | RationaleRecord
RecordKind = Literal["assessment", "feedback", "outcome", "rationale"]

RECORD_TYPES: Final[dict[str, type[_Record]]] = {
    "assessment": AssessmentRecord,
    "feedback": FeedbackRecord,
    "outcome": OutcomeRecord,
    "rationale": RationaleRecord,
}


def kind_of(rec: AuditRecord) -> RecordKind:
    if isinstance(rec, AssessmentRecord):
        return "assessment"
    if isinstance(rec, FeedbackRecord):
        return "feedback"
    if isinstance(rec, RationaleRecord):
        return "rationale"
    return "outcome"


def record_from_dict(kind: str, data: Mapping[str, Any]) -> AuditRecord:
    """Rebuild a record of ``kind`` from its ``to_dict`` form (raises ``ValueError``)."""
    record_type = RECORD_TYPES.get(kind)
    if record_type is None:
        raise ValueError(f"unknown audit record kind {kind!r}")
    return cast(AuditRecord, record_type.from_dict(data))


__all__ = [
    "CARD_OVERRIDE_REASONS",
    "SCHEMA_VERSION",
    "AssessmentRecord",
    "AuditRecord",
    "FeedbackRecord",
    "IssuedCard",
    "OfferedReason",
    "OutcomeRecord",
    "RationaleRecord",
    "RationaleStatus",
    "RationaleTrigger",
    "RecordKind",
    "canonical_json",
    "feature_hash",
    "kind_of",
    "patient_ref",
    "record_from_dict",
    "utc",
]

"""One audit record per answered assessment, whichever route answered it.

Both the CDS Hooks route and ``$hypertension-options`` answer through
:class:`service.answer.AnswerPath`, which builds their record here and writes it,
with the BP readings its data showed (:func:`observed_outcomes`), in one transaction by
:func:`record_assessment` before the response leaves: durable in the database, or in the
fsync'ed spool when the database is down (see :mod:`audit_store.store`).

``request_id`` is ours, new for every call and returned in the ``X-Request-ID`` header: a CDS
client that resends the same ``hookInstance`` (a retry after a timeout) gets a second answer
with new card uuids, and that answer is audited too (the hook instance is kept beside it).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time
from time import perf_counter
from typing import Any, Final

import anyio
import anyio.to_thread
import structlog
from fastapi.concurrency import run_in_threadpool

from audit_store.records import (
    CARD_OVERRIDE_REASONS,
    AssessmentRecord,
    BPSetting,
    OutcomeRecord,
    RationaleRecord,
    feature_hash,
)
from audit_store.store import AuditUnavailable, Destination
from fhir_mappings.errors import InputError
from models.assessment import Assessment
from models.guideline.findings import Finding
from models.pipeline import PipelineResult
from service.app_state import AppState
from service.errors import PatientConflict, ServiceUnavailable

REQUEST_ID_HEADER: Final = "X-Request-ID"
log = structlog.get_logger("hypermarker.service")


def new_request_id() -> str:
    return str(uuid.uuid4())


def _finding_codes(findings: tuple[Finding, ...]) -> list[dict[str, Any]]:
    """What the audit keeps of findings: code, severity and citation, never free text."""
    return [{"code": f.code, "severity": f.severity.label, "citation": str(f.citation)}
            for f in findings]


def option_summary(a: Assessment) -> list[dict[str, Any]]:
    """What the audit keeps of each option (no free text beyond finding codes)."""
    return [{
        "id": o.option.id, "rank": o.rank, "status": o.status.value,
        "predicted_sbp_change": o.predicted_sbp_change, "interval": list(o.interval),
        "p_target": o.p_target, "guideline_preferred": o.guideline_preferred,
        "findings": _finding_codes(o.findings),
        "drivers": [{"feature": d.feature, "label": d.label, "value": d.value, "unit": d.unit,
                     "contribution": d.contribution} for d in o.drivers],
    } for o in a.options]


def assessment_record(result: PipelineResult, *, request_id: str,
                      hook: str, hook_instance: str, service_id: str, received: datetime,
                      patient_ref: str, cards: Sequence[dict[str, Any]], latency_ms: float,
                      prefetch_fetched: list[str],
                      suggestion_options: Mapping[str, str] | None = None,
                      llm: dict[str, Any] | None = None) -> AssessmentRecord:
    """The record of one answered call: the assessment shown, ``cards`` the cards as sent,
    ``suggestion_options`` suggestion uuid -> option id (so that feedback accepting a
    suggestion names the option taken), ``llm`` the rationale the answer showed (status,
    facts hash, sentences; what the LLM wrote is in its own ``rationale`` record)."""
    options = suggestion_options or {}
    fv, a = result.features, result.assessment
    regimen = {c.value: d for c, d in fv.regimen.items()}
    return AssessmentRecord(
        request_id=request_id, hook=hook, hook_instance=hook_instance, service_id=service_id,
        received_at=received, patient_ref=patient_ref,
        model_id=a.model.id, model_version=a.model.version, provider=a.model.provider,
        guideline=a.guideline, status=a.status.value,
        feature_hash=feature_hash(fv.values, regimen), features=dict(fv.values),
        regimen=regimen, options=option_summary(a), findings=_finding_codes(a.findings),
        cards=[{"uuid": c.get("uuid"), "indicator": c["indicator"], "summary": c["summary"],
                "suggestions": [{"uuid": s.get("uuid"), "option": options.get(s.get("uuid", ""))}
                                for s in c.get("suggestions", [])],
                # the reasons this card offered: feedback is held to exactly these
                CARD_OVERRIDE_REASONS: [{"code": r["code"], "system": r.get("system"),
                                         "display": r.get("display")}
                                        for r in c.get("overrideReasons", [])]}
               for c in cards],
        latency_ms=latency_ms, prefetch_fetched=prefetch_fetched, llm=llm)


#: Feature -> BP setting of the readings kept as observed outcomes.
_OUTCOME_FEATURES: Final[tuple[tuple[str, BPSetting], ...]] = (
    ("sbp_clinic", "clinic"), ("sbp_home", "home"))


def observed_outcomes(result: PipelineResult, patient_ref: str) -> list[OutcomeRecord]:
    """The systolic BP the call's data shows (the same value, by the same rule, that the model
    takes as baseline), as outcome records: a patient's next call after a decision carries the
    follow-up BP that the monitor pairs with that decision (realised calibration). A reading
    seen again by a later call is stored once (the store's unique key)."""
    fv = result.features
    dates = {p.feature: p.date for p in fv.provenance if p.date is not None}
    out: list[OutcomeRecord] = []
    for feature, setting in _OUTCOME_FEATURES:
        value, day = fv.values.get(feature), dates.get(feature)
        if value is None or day is None:
            continue
        observed = datetime.combine(day, time(), UTC)
        out.append(OutcomeRecord(patient_ref=patient_ref, observed_at=observed, sbp=value,
                                 setting=setting, source="ehr-data-at-call"))
    return out


async def refuse_other_patient(state: AppState, error: InputError, *, request_id: str, hook: str,
                               hook_instance: str | None, service_id: str, received: datetime,
                               patient_ref: str, started: float,
                               expression: str | None) -> PatientConflict:
    """Audit a call refused because its data was not exactly one patient's (status
    ``refused``, no card: what was refused and why as a finding code, never the data), count
    it, and return the 422 to raise, which carries the record's request id (``patient_ref``:
    the keyed hash of the context patient's id, :meth:`AppState.patient_ref`)."""
    model = state.pipeline.scorer.manifest
    record = AssessmentRecord(
        request_id=request_id, hook=hook, hook_instance=hook_instance or request_id,
        service_id=service_id, received_at=received, patient_ref=patient_ref,
        model_id=model.model_id, model_version=model.version,
        provider=state.pipeline.scorer.provider, guideline=state.pipeline.profile.name,
        status="refused", feature_hash=feature_hash({}, {}), features={}, regimen={},
        options=[], findings=[{"code": "patient-mismatch", "severity": "block",
                               "citation": "Hypermarker clinical-safety policy: one patient "
                                           "per call"}],
        cards=[], latency_ms=(perf_counter() - started) * 1e3, prefetch_fetched=[])
    await record_assessment(state, record, [])
    state.metrics.latency.labels(hook, "refused").observe(perf_counter() - started)
    log.warning("call_refused", service_id=service_id, request_id=request_id,
                hook_instance=hook_instance, reason="patient-mismatch")
    return PatientConflict(f"not assessed: {error.reason}", expression,
                           headers={REQUEST_ID_HEADER: request_id})


async def record_assessment(state: AppState, record: AssessmentRecord,
                            observed: list[OutcomeRecord]) -> str:
    """Write ``record`` with the outcomes its data showed (in a worker thread: it waits on
    fsync) and count where it went: ``"database"`` or ``"spool"``; 503 when neither could
    keep it."""
    written: Destination | None = None
    try:
        # a cancel scope, not wait_for (a task per call cost 0.8 ms at p50); the thread of a
        # stalled write is abandoned, and the store's breaker keeps the next ones off it
        with anyio.move_on_after(state.settings.audit_write_timeout_s):
            written = await anyio.to_thread.run_sync(
                state.store.record_assessment, record, observed, abandon_on_cancel=True)
        # a stalled database: the spool keeps it, the card goes out
        destination = written if written is not None else await run_in_threadpool(
            state.store.spool_assessment, record, observed)
    except AuditUnavailable as e:  # no card without its audit record: a retryable 503
        raise ServiceUnavailable("the audit store cannot record this assessment; retry") from e
    state.metrics.audit_writes.labels("assessment", destination).inc()
    return destination


async def record_rationale(state: AppState, record: RationaleRecord) -> None:
    """Write an LLM rationale's record (in a worker thread; the store spools it when the
    database is down). Background work: a failure is logged and counted, never raised."""
    try:
        destination = await anyio.to_thread.run_sync(state.store.record_rationale, record)
    except Exception as e:  # AuditUnavailable, or a record the store refused
        log.error("audit.rationale_not_recorded", error=type(e).__name__,
                  request_id=record.request_id)
        return
    state.metrics.audit_writes.labels("rationale", destination).inc()

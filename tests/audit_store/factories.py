"""Audit records that look like what the service writes (derived values only, no PHI)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from audit_store.records import (
    AssessmentRecord,
    FeedbackRecord,
    OutcomeRecord,
    RationaleRecord,
    feature_hash,
    patient_ref,
)

KEY = b"test-only-patient-ref-key-0123456789"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def features(i: int = 0) -> dict[str, float | None]:
    return {"age": 60.0 + i % 20, "sex_female": float(i % 2), "sbp_clinic": 150.0 + i % 30,
            "sbp_home": None if i % 3 else 148.5, "egfr": 80.0, "potassium": 4.2,
            "urine_acr": None}


def option(rank: int, oid: str, change: float) -> dict[str, Any]:
    return {
        "id": oid, "rank": rank, "status": "recommended" if rank == 1 else "alternative",
        "predicted_sbp_change": change, "interval": [change - 6.5, change + 6.5],
        "p_target": 0.42, "findings": [{"code": "nice-ng136-1.4.30", "severity": "info"}],
        "drivers": [{"feature": "sbp_clinic", "value": 158.0, "shap": -3.25},
                    {"feature": "age", "value": 60.0, "shap": 0.75}],
    }


def assessment(i: int = 0, *, received_at: datetime | None = None,
               cards: int = 1, llm: dict[str, Any] | None = None) -> AssessmentRecord:
    feats = features(i)
    regimen = {"acei": 1.0} if i % 2 else {}
    return AssessmentRecord(
        request_id=f"req-{i:06d}", hook="patient-view", hook_instance=f"hook-{i:06d}",
        service_id="hypermarker-hypertension",
        received_at=received_at or T0 + timedelta(seconds=i),
        patient_ref=patient_ref(f"patient-{i % 50}", KEY),
        model_id="hypermarker-bp-response", model_version="2026.11.0", provider="cpu",
        guideline="nice", status="assessed", feature_hash=feature_hash(feats, regimen),
        features=feats, regimen=regimen,
        options=[option(1, "add_ccb", -11.5), option(2, "add_thiazide_like", -9.25)],
        findings=[{"code": "ckd-potassium-check", "severity": "warning",
                   "citation": "NICE NG136 1.4.33"}],
        cards=[{"uuid": f"card-{i:06d}-{k}", "indicator": "info", "summary": "Consider a CCB",
                "suggestions": [f"sugg-{i:06d}-{k}"]} for k in range(cards)],
        latency_ms=4.75, prefetch_fetched=["patient", "bp", "medications"], llm=llm,
    )


def feedback(i: int = 0, *, outcome: str = "overridden",
             at: datetime | None = None) -> FeedbackRecord:
    return FeedbackRecord(
        service_id="hypermarker-hypertension", card_uuid=f"card-{i:06d}-0",
        outcome=outcome,  # type: ignore[arg-type]
        accepted_suggestions=[] if outcome == "overridden" else [f"sugg-{i:06d}-0"],
        override_reason_code="patient-preference" if outcome == "overridden" else None,
        override_reason_system="https://hypermarker.example/override-reasons"
        if outcome == "overridden" else None,
        override_reason_display="Patient preference" if outcome == "overridden" else None,
        user_comment=None, outcome_timestamp=at or T0 + timedelta(minutes=5, seconds=i),
        received_at=(at or T0) + timedelta(minutes=5, seconds=i, milliseconds=250),
    )


def outcome(i: int = 0, *, setting: str = "clinic") -> OutcomeRecord:
    return OutcomeRecord(
        patient_ref=patient_ref(f"patient-{i % 50}", KEY),
        observed_at=T0 + timedelta(days=28, hours=i), sbp=139.5 + i % 7,
        setting=setting,  # type: ignore[arg-type]
        source="fhir:Observation/85354-9",
    )


def rationale(i: int = 0, *, status: str = "rejected") -> RationaleRecord:
    """An LLM rationale record for assessment ``i`` (a rejected one by default)."""
    return RationaleRecord(
        rationale_id=f"rat-{i:06d}", request_id=f"req-{i:06d}", trigger="card",
        received_at=T0 + timedelta(seconds=i, milliseconds=900),
        patient_ref=patient_ref(f"patient-{i % 50}", KEY), facts_hash=f"{i:064x}",
        status=status,  # type: ignore[arg-type]
        shown=[{"text": "The target is below 140/90 mmHg.", "facts": ["target"]}],
        llm_content='{"sentences": [{"text": "Start ramipril 5 mg.", "facts": ["option-1"]}]}',
        verdict={"ok": False, "problems": [{"kind": "hallucination", "detail": "5 mg",
                                            "fact_id": None, "sentence": 0}]},
        model="rationale-model", server_version="0.33.0", latency_ms=812.5, error=None)

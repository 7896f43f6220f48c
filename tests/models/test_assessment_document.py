"""The assessment document's published JSON Schema: current, and true of what is emitted.

The schema is generated from the document's types (models/assessment_document.py); the file
in docs/schemas/ is what integrators read. These tests fail when the types change without the
file (regenerate: ``uv run python -m models.assessment_document >
docs/schemas/assessment-document.v1.schema.json``), when an emitted document does not
validate, and when the schema would let a renamed or unknown field through.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from fhir_mappings.availability import unavailable_domains
from fhir_mappings.errors import InputError
from models.assessment import AssessmentStatus, assess
from models.assessment_document import SCHEMA_ID, SCHEMA_VERSION, assessment_document, json_schema
from models.explainer import Explainer
from models.pipeline import Pipeline
from models.scorer import Scorer
from service.discovery import PREFETCH
from tests.factories import patient
from tests.safety.runner import load_cases
from vocabulary.drug_classes import DrugClass as D

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "docs" / "schemas" / "assessment-document.v1.schema.json"
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _errors(validator: Draft202012Validator, doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(json.loads(json.dumps(doc)))]


def test_the_published_schema_is_the_one_the_types_generate() -> None:
    published = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    assert published == json_schema(), (
        "the document's types changed: regenerate docs/schemas/assessment-document.v1"
        ".schema.json (uv run python -m models.assessment_document) and bump SCHEMA_VERSION "
        "(a new field: minor; a renamed or removed field: a new major version and file)")
    major = SCHEMA_VERSION.split(".")[0]
    assert PUBLISHED.name == f"assessment-document.v{major}.schema.json"
    assert SCHEMA_ID.endswith(f":{major}")


def test_every_safety_case_document_validates(validator: Draft202012Validator) -> None:
    """Every hand-made hazard case (all three statuses, orders, stops, monitoring, the
    unavailable parts of a record) gives a document the schema accepts."""
    pipeline = Pipeline.load(explain_top=None)
    statuses = set()
    for case in load_cases():
        prefetch = case.request.get("prefetch") or {}
        missing = {k: "not sent" for k in PREFETCH if k not in prefetch}
        try:
            result = pipeline.assess_fhir(prefetch, case.as_of,
                                          patient_id=case.request["context"]["patientId"],
                                          unavailable=unavailable_domains(missing))
        except InputError:
            continue  # refused: another patient's data, no document
        doc = assessment_document(result.assessment)
        statuses.add(doc["status"])
        assert _errors(validator, doc) == [], case.id
    assert statuses == set(AssessmentStatus)


def test_a_document_with_an_order_and_monitoring_validates(
        validator: Draft202012Validator, scorer: Scorer, explainer: Explainer) -> None:
    doc = assessment_document(assess(patient({D.ACE_INHIBITOR: 1.0}, egfr=50), scorer,
                                     explainer))
    assert any("order" in o for o in doc["options"])
    assert any("monitoring" in f for o in doc["options"] for f in o["findings"])
    assert _errors(validator, doc) == []


@pytest.mark.parametrize("change", [
    "rename a field", "add an unknown field", "unknown class id", "unknown status",
    "interval of three", "date not ISO", "unknown severity",
])
def test_the_schema_rejects_what_the_contract_does_not_allow(
        validator: Draft202012Validator, scorer: Scorer, explainer: Explainer,
        change: str) -> None:
    doc: dict[str, Any] = json.loads(json.dumps(assessment_document(
        assess(patient({D.ACE_INHIBITOR: 1.0}), scorer, explainer))))
    assert _errors(validator, doc) == []
    bad = copy.deepcopy(doc)
    option = bad["options"][0]
    if change == "rename a field":
        option["predicted_change"] = option.pop("predicted_sbp_change")
    elif change == "add an unknown field":
        bad["score"] = 1
    elif change == "unknown class id":
        bad["current_regimen"] = {"ace": 1.0}
    elif change == "unknown status":
        option["status"] = "preferred"
    elif change == "interval of three":
        option["interval"] = [-20.0, -10.0, 0.0]
    elif change == "date not ISO":
        bad["provenance"] = [{"feature": "potassium", "source": "Observation/k",
                              "date": "1 Oct 2026", "note": None}]
    else:
        bad["findings"][0]["severity"] = "critical"
    assert _errors(validator, bad) != [], change


def test_provenance_dates_are_dates_until_the_json_edge() -> None:
    """The typed assessment carries dates; only the document writes them as ISO text."""
    request = json.loads((EXAMPLES / "patient-view.json").read_text(encoding="utf-8"))
    a = Pipeline.load().assess_fhir(request["prefetch"], date(2026, 11, 24)).assessment
    dated = [pr for pr in a.provenance if pr.date is not None]
    assert dated
    assert all(type(pr.date) is date for pr in dated)
    doc = assessment_document(a)
    assert {pr["feature"]: pr["date"] for pr in doc["provenance"] if pr["date"]} == {
        pr.feature: pr.date.isoformat() for pr in dated if pr.date is not None}

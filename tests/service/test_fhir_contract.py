"""The FHIR contract: /fhir/metadata, the OperationDefinition and CodeSystems, canonical URLs,
GuidanceResponse.outputParameters, FHIRPath error expressions, WWW-Authenticate on 401, and
every FHIR resource the service emits checked by the HL7 R4 validator (tests/fhir_validator)."""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm

from fhir_mappings.dates import shift_dates
from service.app import create_app
from service.errors import Unauthorized, fhirpath
from service.fhir_canonical import (
    CANONICAL_BASE,
    EXT_EFFECT,
    EXT_SBP,
    EXT_STATUS,
    FINDING_SYSTEM,
    MODULE_URI,
    OPERATION_DEFINITION,
    OPTION_SYSTEM,
)
from service.fhir_contract import FINDING_CODES, code_system_ids
from tests.fhir_validator.runner import problems, validate
from tests.safety.runner import CASES, RXNORM, as_bundle
from tests.service.conftest import example_request, local_settings

OP = "/fhir/$hypertension-options"
ROOT = Path(__file__).resolve().parents[2]
#: Safety cases sent through the operation and validated: a pathway (stop), another
#: patient's data (422), a kidney-failure pathway with its own findings.
CASE_IDS = ("H03-severe-230-130", "H01-lab-of-another-patient", "H05-kidney-failure-egfr-12")


def _example_bundle() -> dict[str, Any]:
    return as_bundle(example_request()["prefetch"])


def _case_bundle(case_id: str) -> dict[str, Any]:
    doc = json.loads((CASES / f"{case_id}.json").read_text(encoding="utf-8"))
    days = (datetime.now(UTC).date() - datetime.fromisoformat(doc["as_of"]).date()).days
    return as_bundle(shift_dates(doc["request"], days)["prefetch"])


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


@pytest.fixture(scope="module")
def answer(client: TestClient) -> dict[str, Any]:
    r = client.post(OP, json=_example_bundle())
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# --- metadata, OperationDefinition, CodeSystems ---------------------------------------------

def test_metadata_is_an_r4_capability_statement_naming_the_operation(client: TestClient
                                                                     ) -> None:
    r = client.get("/fhir/metadata")

    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    cs = r.json()
    assert (cs["resourceType"], cs["kind"], cs["fhirVersion"], cs["format"]) == (
        "CapabilityStatement", "instance", "4.0.1", ["json"])
    rest = cs["rest"][0]
    assert rest["operation"] == [{"name": "hypertension-options",
                                  "definition": OPERATION_DEFINITION}]
    assert "DEMO MODE" in rest["security"]["description"]  # the fixture runs in demo auth
    assert cs["implementation"]["url"].endswith("/fhir")
    assert {r["type"] for r in rest["resource"]} == {"CodeSystem", "OperationDefinition"}


def test_the_operation_definition_is_served_by_id_with_its_canonical(client: TestClient
                                                                     ) -> None:
    r = client.get("/fhir/OperationDefinition/hypertension-options")

    assert r.status_code == 200, r.text
    od = r.json()
    assert (od["url"], od["code"], od["kind"], od["system"], od["instance"]) == (
        OPERATION_DEFINITION, "hypertension-options", "operation", True, False)
    params = {(p["use"], p["name"]): p for p in od["parameter"]}
    assert params["in", "patientData"]["type"] == "Bundle"
    assert params["in", "guideline"]["type"] == "code"
    assert "nice" in params["in", "guideline"]["documentation"]
    assert (params["out", "return"]["type"], params["out", "return"]["min"]) == ("Bundle", 1)
    missing = client.get("/fhir/OperationDefinition/other")
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"


def test_each_code_system_is_served_at_the_path_of_its_canonical(client: TestClient) -> None:
    for cs_id in code_system_ids():
        r = client.get(f"/fhir/CodeSystem/{cs_id}")
        assert r.status_code == 200, r.text
        cs = r.json()
        assert cs["url"] == f"{CANONICAL_BASE}/CodeSystem/{cs_id}"
        assert cs["content"] == "complete"
        assert cs["count"] == len(cs["concept"])
    assert client.get("/fhir/CodeSystem/nope").status_code == 404


def _rule_codes() -> set[str]:
    """Every Finding and Stop code literal in the guideline rules' source."""
    out: set[str] = set()
    for path in (ROOT / "models").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("Finding", "Stop") and node.args):
                continue
            arg = node.args[1] if node.func.id == "Finding" else node.args[0]
            out |= {c.value for c in ast.walk(arg)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return out


def test_the_finding_code_system_holds_every_code_the_rules_emit() -> None:
    codes = _rule_codes()

    assert len(codes) > 50
    assert codes <= set(FINDING_CODES), sorted(codes - set(FINDING_CODES))


def test_emitted_codes_are_in_the_served_code_systems(client: TestClient,
                                                      answer: dict[str, Any]) -> None:
    concepts = {cs_id: {c["code"] for c in client.get(f"/fhir/CodeSystem/{cs_id}").json()[
        "concept"]} for cs_id in ("finding", "treatment-option")}
    for ra in _resources(answer, "RiskAssessment"):
        assert ra["code"]["coding"][0]["code"] in concepts["treatment-option"]
    for di in _resources(answer, "DetectedIssue"):
        assert di["code"]["coding"][0]["code"] in concepts["finding"]


# --- canonical URLs and the linked ranking ---------------------------------------------------

def test_emitted_urls_are_the_projects_canonicals(answer: dict[str, Any]) -> None:
    text = json.dumps(answer)
    assert "example.org" not in text
    guidance = answer["entry"][0]["resource"]
    assert guidance["moduleUri"] == MODULE_URI == OPERATION_DEFINITION
    ra = _resources(answer, "RiskAssessment")[0]
    assert {e["url"] for e in ra["extension"]} == {EXT_SBP, EXT_EFFECT, EXT_STATUS}
    assert ra["code"]["coding"][0]["system"] == OPTION_SYSTEM
    assert _resources(answer, "DetectedIssue")[0]["code"]["coding"][0]["system"] == \
        FINDING_SYSTEM


def test_output_parameters_link_every_option_in_rank_order_and_every_issue(
        answer: dict[str, Any]) -> None:
    by_url = {e["fullUrl"]: e["resource"] for e in answer["entry"]}
    guidance = answer["entry"][0]["resource"]
    params = by_url[guidance["outputParameters"]["reference"]]
    assert params["resourceType"] == "Parameters"
    options = [p for p in params["parameter"] if p["name"] == "option"]
    parts = [{q["name"]: q for q in p["part"]} for p in options]
    linked = [by_url[p["riskAssessment"]["valueReference"]["reference"]] for p in parts]

    assert len(linked) == len(_resources(answer, "RiskAssessment"))
    assert all(r["resourceType"] == "RiskAssessment" for r in linked)
    ranks = [p["rank"]["valueInteger"] for p in parts if "rank" in p]
    assert ranks == list(range(1, len(ranks) + 1))
    assert len(ranks) >= 3
    assert parts[0]["status"]["valueCode"] == "recommended"
    assert "rank 1;" in linked[0]["prediction"][0]["rationale"]
    issues = {p["valueReference"]["reference"] for p in params["parameter"]
              if p["name"] == "issue"}
    assert issues == {u for u, r in by_url.items() if r["resourceType"] == "DetectedIssue"}


# --- errors: FHIRPath expressions, WWW-Authenticate -----------------------------------------

@pytest.mark.parametrize(("path", "root", "expected"), [
    ("$.entry[2].resource.subject", "Bundle", "Bundle.entry[2].resource.subject"),
    ("$.entry[0].resource._birthDate", "Parameters.parameter[1].resource",
     "Parameters.parameter[1].resource.entry[0].resource.birthDate"),
    ("$.prefetch.bp-home.entry[0]", None, "prefetch.`bp-home`.entry[0]"),
    ("$", None, None), ("$[3].code", None, None), ("$[3]", "Bundle", None),
    ("entry[0]", "Bundle", None), ("", "Bundle", None), (None, "Bundle", None),
])
def test_json_paths_become_fhirpath(path: str | None, root: str | None,
                                    expected: str | None) -> None:
    assert fhirpath(path, root) == expected


def _bad_birth_date() -> dict[str, Any]:
    bundle = _example_bundle()
    bundle["entry"][0]["resource"]["birthDate"] = "not-a-date"
    return bundle


def test_an_invalid_element_is_named_by_fhirpath_from_the_posted_resource(
        client: TestClient) -> None:
    direct = client.post(OP, json=_bad_birth_date()).json()
    wrapped = client.post(OP, json={"resourceType": "Parameters", "parameter": [
        {"name": "guideline", "valueCode": "nice"},
        {"name": "patientData", "resource": _bad_birth_date()}]}).json()

    assert direct["issue"][0]["expression"] == ["Bundle.entry[0].resource.birthDate"]
    assert wrapped["issue"][0]["expression"] == [
        "Parameters.parameter[1].resource.entry[0].resource.birthDate"]


def test_another_patients_data_is_a_422_with_a_fhirpath_expression(client: TestClient) -> None:
    r = client.post(OP, json=_case_bundle("H01-lab-of-another-patient"))

    assert r.status_code == 422, r.text
    (expr,) = r.json()["issue"][0]["expression"]
    assert expr.startswith("Bundle.entry[")
    assert "$" not in expr


@pytest.mark.parametrize(("body", "expression"), [
    ({"resourceType": "Parameters", "parameter": [{"name": "guideline", "valueCode": "who"},
                                                  {"name": "patientData"}]},
     "Parameters.parameter[0].value"),
    ({"resourceType": "Parameters", "parameter": [{"name": "patientData", "resource": {
        "resourceType": "Patient"}}]}, "Parameters.parameter[0].resource"),
    ({"resourceType": "Parameters", "parameter": ["x"]}, "Parameters.parameter[0]"),
])
def test_bad_parameters_are_named_by_fhirpath(client: TestClient, body: dict[str, Any],
                                              expression: str) -> None:
    r = client.post(OP, json=body)

    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == [expression]


def test_unauthorized_names_the_bearer_scheme() -> None:
    assert Unauthorized().headers == {"WWW-Authenticate": "Bearer"}


@pytest.fixture(scope="module")
def jwt_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    public = ec.generate_private_key(ec.SECP384R1()).public_key()
    jwk = dict(ECAlgorithm.to_jwk(public, as_dict=True), kid="k1", alg="ES384", use="sig")
    settings = local_settings(tmp_path_factory.mktemp("jwt"), auth_mode="jwt",
                              trusted_issuers=[{"iss": "https://ehr.example.org",
                                                "jwks": {"keys": [jwk]}}])
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_a_401_carries_www_authenticate_and_metadata_stays_public(jwt_client: TestClient
                                                                  ) -> None:
    r = jwt_client.post(OP, json=_example_bundle(), headers={"Authorization": "Bearer x.y.z"})
    meta = jwt_client.get("/fhir/metadata")

    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["issue"][0]["code"] == "security"
    assert meta.status_code == 200
    assert "client JWT" in meta.json()["rest"][0]["security"]["description"]


# --- the HL7 validator on everything the service emits ---------------------------------------

def _suggested_resources(client: TestClient) -> Iterator[dict[str, Any]]:
    """The FHIR resources in the suggestions of an order-select card (a draft amlodipine)."""
    req = example_request(hook="order-select")
    draft = {"resourceType": "MedicationRequest", "id": "draft-1", "status": "draft",
             "intent": "order", "subject": {"reference": f"Patient/{req['context']['patientId']}"},
             "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "17767",
                                                       "display": "amlodipine"}]}}
    req["context"] = {**req["context"], "selections": ["MedicationRequest/draft-1"],
                      "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                      "entry": [{"resource": draft}]}}
    r = client.post("/cds-services/hypertension-order-select", json=req)
    assert r.status_code == 200, r.text
    for card in r.json()["cards"]:
        for suggestion in card.get("suggestions") or []:
            for action in suggestion.get("actions") or []:
                if "resource" in action:
                    yield action["resource"]


def _fhir_answers(client: TestClient) -> Iterator[dict[str, Any]]:
    """Every kind of FHIR resource the service answers with, from real request shapes."""
    yield client.get("/fhir/metadata").json()
    yield client.get("/fhir/OperationDefinition/hypertension-options").json()
    for cs_id in code_system_ids():
        yield client.get(f"/fhir/CodeSystem/{cs_id}").json()
    yield client.post(OP, json=_example_bundle()).json()
    yield client.post(OP, json={"resourceType": "Parameters", "parameter": [
        {"name": "patientData", "resource": _example_bundle()},
        {"name": "guideline", "valueCode": "esc"}]}).json()
    patient_only = _example_bundle()
    patient_only["entry"] = patient_only["entry"][:1]
    cannot = client.post(OP, json=patient_only).json()
    assert cannot["entry"][0]["resource"]["status"] == "data-required"
    yield cannot
    for case_id in CASE_IDS:
        yield client.post(OP, json=_case_bundle(case_id)).json()
    yield client.post(OP, json=_bad_birth_date()).json()  # 400
    yield client.post(OP, json=[1]).json()  # 400, no expression
    yield client.get("/fhir/CodeSystem/nope").json()  # 404
    yield from _suggested_resources(client)


def test_every_fhir_resource_the_service_emits_passes_the_hl7_validator(
        client: TestClient) -> None:
    answers = list(_fhir_answers(client))
    kinds = {a["resourceType"] for a in answers}
    bundle_kinds = {e["resource"]["resourceType"] for a in answers if a["resourceType"] ==
                    "Bundle" for e in a["entry"]}

    assert kinds == {"CapabilityStatement", "OperationDefinition", "CodeSystem", "Bundle",
                     "OperationOutcome", "MedicationRequest"}
    assert bundle_kinds == {"GuidanceResponse", "RiskAssessment", "DetectedIssue",
                            "Parameters"}
    assert problems(answers) == []


def test_the_validator_finds_schema_cardinality_and_invariant_errors(
        answer: dict[str, Any]) -> None:
    """The validator is not a rubber stamp: each kind of check fails on a broken copy."""
    bad = copy.deepcopy(answer)
    guidance = bad["entry"][0]["resource"]
    del guidance["status"]  # GuidanceResponse.status 1..1
    ra = _resources(bad, "RiskAssessment")[0]
    ra["prediction"][0]["probabilityDecimal"] = 120  # ras-2: probability <= 100
    ra["extension"][0]["extension"] = [{"url": "x", "valueCode": "y"}]  # ext-1: not both
    _resources(bad, "DetectedIssue")[0]["severity"] = "severe"  # not in the required code list
    report = validate([bad])[0]
    found = {(e["kind"], e.get("key")) for e in report["errors"]}

    assert ("cardinality", None) in found
    assert ("invariant", "ras-2") in found
    assert ("invariant", "ext-1") in found
    assert any(k == "schema" for k, _ in found)
    assert validate([answer])[0]["errors"] == []

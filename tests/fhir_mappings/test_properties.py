"""Hypothesis properties of the mapping: order independence, irrelevant resources, and
random corruption of valid input giving a typed InputError and nothing else."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappings.errors import InputError
from fhir_mappings.mapping import features_from_fhir
from fhir_mappings.patient_record import build_record
from tests.fhir_mappings.builders import (
    AS_OF,
    Json,
    claim,
    fixture,
    immunization,
    typical_record,
)

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
DOCS = [typical_record(), fixture("medication_reference.json"), fixture("home_bp.json"),
        fixture("allergy.json"), fixture("conditions.json"), fixture("bp_separate.json")]


@SETTINGS
@given(doc=st.sampled_from(DOCS), data=st.data())
def test_record_does_not_depend_on_resource_order(doc: Json, data: st.DataObject) -> None:
    entries = data.draw(st.permutations(doc["entry"]))
    shuffled = {**doc, "entry": entries}
    a, b = build_record(doc, AS_OF), build_record(shuffled, AS_OF)
    assert a == b
    assert a.report == b.report
    assert features_from_fhir(doc, AS_OF) == features_from_fhir(shuffled, AS_OF)


@SETTINGS
@given(doc=st.sampled_from(DOCS), data=st.data(),
       extra=st.lists(st.sampled_from(["claim", "immunization", "encounter"]), max_size=8))
def test_irrelevant_resources_change_nothing(doc: Json, data: st.DataObject,
                                             extra: list[str]) -> None:
    pid = next(e["resource"]["id"] for e in doc["entry"]
               if e["resource"]["resourceType"] == "Patient")
    noise: list[Json] = []
    for i, kind in enumerate(extra):
        if kind == "claim":
            noise.append(claim(f"noise-{i}", pid))
        elif kind == "immunization":
            noise.append(immunization(f"noise-{i}", pid))
        else:
            noise.append({"resourceType": "Encounter", "id": f"noise-{i}", "status": "finished"})
    entries = list(doc["entry"])
    for r in noise:
        entries.insert(data.draw(st.integers(0, len(entries))), {"resource": r})
    noisy = {**doc, "entry": entries}
    assert build_record(doc, AS_OF) == build_record(noisy, AS_OF)
    fv_a, rep_a = features_from_fhir(doc, AS_OF)
    fv_b, rep_b = features_from_fhir(noisy, AS_OF)
    assert fv_a == fv_b
    assert sum(rep_b.resources_ignored.values()) == sum(rep_a.resources_ignored.values()) + len(
        noise)


# ------------------------------------------------------------------------- corruption


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    node = doc
    for p in path[:-1]:
        node = node[p]
    return node


REPLACEMENTS = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
                         st.just([]), st.just({}), st.just([1, "a"]), st.just({"x": 1}),
                         st.sampled_from(["2026-13-01", "Observation", "Patient", "active",
                                          "mm[Hg]", "urn:uuid:x", "#m1", "Bundle",
                                          "9" * 30 + "-01", "entered-in-error", "kPa"]))


@st.composite
def corrupted(draw: st.DrawFn, docs: list[Json] = DOCS) -> bytes:
    doc = copy.deepcopy(draw(st.sampled_from(docs)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        how = draw(st.sampled_from(["delete", "replace", "resource_type"]))
        if how == "delete":
            del parent[path[-1]]
        elif how == "replace":
            parent[path[-1]] = copy.deepcopy(draw(REPLACEMENTS))
        else:
            entries = doc.get("entry") if isinstance(doc, dict) else None
            if isinstance(entries, list) and entries and isinstance(entries[0], dict):
                entry = draw(st.sampled_from(entries))
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    entry["resource"]["resourceType"] = draw(st.sampled_from(
                        ["Patient", "Observation", "Condition", "MedicationRequest",
                         "Medication", "AllergyIntolerance", "Bundle", "Observatoin", ""]))
    raw = orjson.dumps(doc)
    if draw(st.booleans()) and draw(st.booleans()):
        raw = raw[:draw(st.integers(0, len(raw)))]
    return raw


#: CORRUPT_N=5000 for a longer run (passes locally).
CORRUPT_N = int(os.environ.get("CORRUPT_N", "400"))


@settings(max_examples=CORRUPT_N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=corrupted())
def test_corruption_gives_a_typed_input_error_or_a_result(raw: bytes) -> None:
    """Deleted keys, changed types, truncated JSON, wrong resourceType: either a result or
    an InputError naming where, never another exception."""
    try:
        fv, report = features_from_fhir(raw, AS_OF)
    except InputError as e:
        message = str(e)
        assert message
        return
    assert fv.as_of == AS_OF
    assert report.resources_validated >= 1


SYNTHEA = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "synthea-r4"
SMALLEST = min(SYNTHEA.glob("*.json"), key=lambda p: p.stat().st_size, default=None) \
    if SYNTHEA.is_dir() else None


@pytest.mark.skipif(SMALLEST is None, reason=f"Synthea fixtures not found at {SYNTHEA}")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(data=st.data())
def test_corrupted_synthea_bundle(data: st.DataObject) -> None:
    """The same on a real Synthea bundle, keeping the resource types the mapping reads."""
    assert SMALLEST is not None
    doc = orjson.loads(SMALLEST.read_bytes())
    doc["entry"] = [e for e in doc["entry"] if e["resource"]["resourceType"] in
                    ("Patient", "Observation", "Condition", "MedicationRequest",
                     "AllergyIntolerance")]
    raw = data.draw(corrupted([doc]))
    try:
        features_from_fhir(raw, AS_OF)
    except InputError as e:
        where = e.path
        assert where.startswith("$")

"""Every Synthea R4 bundle in shared/fixtures/synthea-r4 maps without error.

Each is assessed at the date of its latest Encounter or blood-pressure reading (Synthea
timelines end in the past). The result is either complete enough to assess (age and clinic
systolic BP known) or says clearly why not. No file is special-cased.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhir_mappings.dates import parse_when
from fhir_mappings.features import validate_value
from fhir_mappings.mapping import features_from_fhir
from fhir_mappings.report import IssueKind
from vocabulary.feature_table import PATIENT_FEATURES, Missing

SYNTHEA = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "synthea-r4"
FILES = sorted(SYNTHEA.glob("*.json")) if SYNTHEA.is_dir() else []
BP_CODES = {"85354-9", "55284-4"}


def latest_activity(doc: dict[str, Any]) -> date:
    """The day of the latest Encounter (period end, else start) or BP Observation."""
    days: list[date] = []
    for entry in doc.get("entry", []):
        r = entry.get("resource", {})
        text = None
        if r.get("resourceType") == "Encounter":
            period = r.get("period", {})
            text = period.get("end") or period.get("start")
        elif r.get("resourceType") == "Observation" and any(
                c.get("code") in BP_CODES for c in r.get("code", {}).get("coding", [])):
            text = r.get("effectiveDateTime")
        when = parse_when(text) if isinstance(text, str) else None
        if when is not None:
            days.append(when.day)
    assert days, "no Encounter or BP reading to date the assessment"
    return max(days)


@pytest.mark.skipif(not FILES, reason=f"Synthea fixtures not found at {SYNTHEA}")
@pytest.mark.parametrize("path", FILES, ids=[p.name.split("_")[0] for p in FILES])
def test_synthea_bundle_maps(path: Path) -> None:
    raw = path.read_bytes()
    as_of = latest_activity(orjson.loads(raw))
    fv, report = features_from_fhir(raw, as_of)

    by_feature = {p.feature: p for p in fv.provenance}
    for spec in PATIENT_FEATURES:
        value = fv.values[spec.name]
        assert validate_value(spec.name, value, spec.name) == value
        p = by_feature[spec.name]
        if value is None or (spec.missing is Missing.ABSENT_AS_ZERO and p.source is None):
            assert p.note, f"{spec.name} has no reason"
        else:
            assert p.source, f"{spec.name} has no source"
    ready = fv.values["age"] is not None and fv.values["sbp_clinic"] is not None
    if not ready:
        assert by_feature["age"].note or by_feature["sbp_clinic"].note
    # Claims and ExplanationOfBenefits are skipped before any model is built
    assert report.resources_ignored.get("Claim", 0) > 0
    assert report.resources_used.get("Claim", 0) == 0
    assert report.resources_validated == sum(report.resources_used.values())
    assert report.count(IssueKind.PREFETCH_ERROR) == 0


@pytest.mark.skipif(not FILES, reason=f"Synthea fixtures not found at {SYNTHEA}")
def test_synthea_race_quirk_and_us_codes_are_read() -> None:
    """Across the set: US Core race is read (known or explained) for every patient, RxNorm
    medications give a regimen for most, and the 55284-4 panels give clinic BP."""
    regimens = 0
    for path in FILES:
        raw = path.read_bytes()
        fv, _ = features_from_fhir(raw, latest_activity(orjson.loads(raw)))
        black = next(p for p in fv.provenance if p.feature == "ethnicity_black")
        assert black.note is not None
        assert "US Core race" in black.note
        regimens += bool(fv.regimen)
    assert regimens >= len(FILES) // 2

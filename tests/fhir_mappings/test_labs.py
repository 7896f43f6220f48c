"""Labs: codes, unit conversion, plausibility, 15-month lookback, eGFR and CKD from labs."""

from __future__ import annotations

import pytest

from fhir_mappings.observations import ckd_epi_2021
from fhir_mappings.patient_record import build_record
from tests.fhir_mappings.builders import AS_OF, bundle, features, fixture, obs, patient, prov


def test_hba1c_percent_is_converted_to_ifcc() -> None:
    """7.0 % NGSP -> (7.0 - 2.15) x 10.929 = 53.0 mmol/mol; the newer result wins over an
    older IFCC one."""
    fv, _ = features(fixture("hba1c_percent.json"))
    assert fv.values["hba1c"] == pytest.approx(53.00565)
    assert prov(fv, "hba1c").source == "Observation/a1c-new"
    assert "converted from 7 %" in prov(fv, "hba1c").note


def test_acr_mg_per_g_potassium_meq_and_creatinine_mg_dl() -> None:
    """ACR 44.2 mg/g -> 5.0 mg/mmol; K 5.4 mEq/L = 5.4 mmol/L; creatinine 1.1 mg/dL ->
    97.3 umol/L and, without an eGFR result, eGFR by CKD-EPI 2021."""
    fv, _ = features(fixture("acr_mg_g.json"))
    assert fv.values["urine_acr"] == pytest.approx(5.0)
    assert fv.values["potassium"] == 5.4
    record = build_record(fixture("acr_mg_g.json"), AS_OF)
    creatinine = record.facts["creatinine"]
    assert creatinine.value == pytest.approx(97.262)
    expected = ckd_epi_2021(97.262, 66, female=True)
    assert fv.values["egfr"] == pytest.approx(expected)
    assert "CKD-EPI 2021" in prov(fv, "egfr").note


def test_ckd_epi_2021_reference_values() -> None:
    """Hand-computed from the published equation (Inker 2021): creatinine 1.0 mg/dL at 60
    years -> 64 mL/min/1.73m2 for a woman, 86 for a man; and a woman of 40 with 0.6 mg/dL
    (below kappa)."""
    assert ckd_epi_2021(88.42, 60, female=True) == pytest.approx(64.49, abs=0.05)
    assert ckd_epi_2021(88.42, 60, female=False) == pytest.approx(86.16, abs=0.05)
    low = 142 * (0.6 / 0.7) ** -0.241 * 0.9938 ** 40 * 1.012
    assert ckd_epi_2021(0.6 * 88.42, 40, female=True) == pytest.approx(low)


def test_searchset_with_comparator_and_preliminary_result() -> None:
    """eGFR '>90' keeps 90 and says so; a preliminary sodium is used; the searchset's
    'next' link is reported as an incomplete search."""
    fv, report = features(fixture("searchset.json"))
    assert fv.values["egfr"] == 90.0
    assert "reported as >90" in prov(fv, "egfr").note
    assert fv.values["sodium"] == 131.0
    assert fv.values["potassium"] == 4.2
    assert report.count("incomplete_search") == 1


def test_implausible_potassium_falls_back_to_the_previous_plausible_one() -> None:
    doc = bundle(patient(), obs("k-ok", "2823-3", 4.8, "mmol/L", "2026-05-01"),
                 obs("k-bad", "2823-3", 12.0, "mmol/L", "2026-10-01"))
    fv, report = features(doc)
    assert fv.values["potassium"] == 4.8
    note = prov(fv, "potassium").note
    assert "implausible value not used" in note
    assert "Observation/k-bad" in note
    assert report.implausible_values == 1


def test_lab_lookback_is_fifteen_months() -> None:
    inside = bundle(patient(), obs("k", "2823-3", 4.1, "mmol/L", "2025-09-01"))
    outside = bundle(patient(), obs("k", "2823-3", 4.1, "mmol/L", "2025-08-01"))
    assert features(inside)[0].values["potassium"] == 4.1
    fv, _ = features(outside)
    assert fv.values["potassium"] is None
    assert prov(fv, "potassium").note == "no potassium result in the last 15 months"


def test_creatinine_without_unit_is_not_guessed() -> None:
    doc = bundle(patient(), {**obs("cr", "2160-0", None, "", "2026-10-01"),
                             "valueQuantity": {"value": 1.0}})
    record = build_record(doc, AS_OF)
    assert record.facts["creatinine"].value is None
    assert record.report.count("unknown_unit") == 1


def test_egfr_contradicting_same_day_creatinine_is_not_used() -> None:
    doc = bundle(patient(gender="male", birth="1958-01-01"),
                 obs("egfr-old", "33914-3", 80, "mL/min/{1.73_m2}", "2026-03-01"),
                 obs("egfr", "33914-3", 4.0, "mL/min/{1.73_m2}", "2026-10-01"),
                 obs("cr", "38483-4", 0.9, "mg/dL", "2026-10-01"))
    fv, report = features(doc)
    assert fv.values["egfr"] == 80.0
    assert report.implausible_values == 1


def test_egfr_in_plain_ml_per_min_is_not_an_egfr() -> None:
    """mL/min (no /1.73m2) is another quantity (clearance): reported, not used."""
    fv, report = features(bundle(patient(), obs("g", "33914-3", 70, "mL/min", "2026-10-01")))
    assert fv.values["egfr"] is None
    assert report.count("unknown_unit") == 1


def test_ckd_from_labs_needs_persistence_over_ninety_days() -> None:
    """Two eGFR < 60 results 90+ days apart make CKD (NICE NG203); one does not."""
    one = bundle(patient(), obs("e1", "98979-8", 52, "mL/min/{1.73_m2}", "2026-10-01"))
    two = bundle(patient(), obs("e0", "98979-8", 55, "mL/min/{1.73_m2}", "2026-05-01"),
                 obs("e1", "98979-8", 52, "mL/min/{1.73_m2}", "2026-10-01"))
    recovered = bundle(patient(), obs("e0", "98979-8", 55, "mL/min/{1.73_m2}", "2026-01-01"),
                       obs("em", "98979-8", 75, "mL/min/{1.73_m2}", "2026-04-01"),
                       obs("e1", "98979-8", 52, "mL/min/{1.73_m2}", "2026-10-01"))
    assert features(one)[0].values["ckd"] == 0.0
    fv, _ = features(two)
    assert fv.values["ckd"] == 1.0
    assert "NICE NG203" in prov(fv, "ckd").note
    assert build_record(two, AS_OF).ckd_stage == "G3a"
    assert features(recovered)[0].values["ckd"] == 0.0


def test_ckd_from_persistent_albuminuria() -> None:
    doc = bundle(patient(), obs("a0", "9318-7", 4.0, "mg/mmol", "2026-03-01"),
                 obs("a1", "9318-7", 35.4, "mg/g", "2026-09-01"))
    assert features(doc)[0].values["ckd"] == 1.0


def test_bmi_and_lvef() -> None:
    doc = bundle(patient(), obs("bmi", "39156-5", 31.2, "kg/m2", "2025-12-01"),
                 obs("ef", "10230-1", 35, "%", "2024-01-01"))
    record = build_record(doc, AS_OF)
    assert record.facts["bmi"].value == 31.2
    assert record.facts["lvef"].value == 35.0


def test_observation_without_date_is_reported() -> None:
    k = obs("k", "2823-3", 4.0, "mmol/L", "2026-10-01")
    del k["effectiveDateTime"]
    fv, report = features(bundle(patient(), k))
    assert fv.values["potassium"] is None
    assert report.count("no_date") == 1


def test_issued_is_used_when_there_is_no_effective_date() -> None:
    k = obs("k", "2823-3", 4.0, "mmol/L", "2026-10-01")
    del k["effectiveDateTime"]
    k["issued"] = "2026-10-02T08:00:00.000+01:00"
    assert features(bundle(patient(), k))[0].values["potassium"] == 4.0

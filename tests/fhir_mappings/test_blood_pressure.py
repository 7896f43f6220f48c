"""Blood pressure: panels, separate readings, units, status, home/ambulatory, summaries."""

from __future__ import annotations

from datetime import date

import pytest

from fhir_mappings.report import IssueKind
from tests.fhir_mappings.builders import (
    AS_OF,
    LOINC,
    bp,
    bundle,
    features,
    fixture,
    med_request,
    obs,
    patient,
    prov,
)


def test_kpa_panel_is_converted_to_mmhg() -> None:
    """20/12 kPa = 150.0/90.0 mmHg (x 7.50062), and the note says it was converted."""
    fv, _ = features(fixture("bp_kpa.json"))
    assert fv.values["sbp_clinic"] == pytest.approx(150.0124)
    assert fv.values["dbp_clinic"] == pytest.approx(90.00744)
    assert "converted from 20 kPa" in prov(fv, "sbp_clinic").note


def test_85354_panel_latest_consultation_not_combined_with_an_earlier_visit() -> None:
    """Readings of two visits (148/88 on 15 Sep, 152/84 on 10 Nov) are not two readings of one
    consultation: the latest consultation's reading is used, never the lower of the two visits
    (NICE NG136 1.2.2 is about the readings of one consultation); a reading older than 12
    months is ignored; days_since_bp counts from the latest reading."""
    fv, _ = features(fixture("bp_panel_85354.json"))
    assert fv.values["sbp_clinic"] == 152.0
    assert fv.values["dbp_clinic"] == 84.0
    p = prov(fv, "sbp_clinic")
    assert p.source == "Observation/bp-b"
    assert p.date == date(2026, 11, 10)
    assert "latest consultation" in p.note
    assert "earlier visits are not combined" in p.note
    assert fv.days_since_bp == (AS_OF - date(2026, 11, 10)).days
    assert fv.values["heart_rate"] == 64.0


def test_lower_of_the_last_two_readings_of_one_consultation() -> None:
    """Three readings at one visit: the lower of the last two (NICE NG136 1.2.2), with its own
    diastolic; an older visit's lower reading does not win."""
    doc = bundle(patient(), bp("v1", 150, 80, "2026-10-01T09:00:00Z"),
                 bp("a", 184, 97, "2026-11-20T09:00:00Z"),
                 bp("b", 193, 111, "2026-11-20T09:05:00Z"),
                 bp("c", 188, 104, "2026-11-20T09:10:00Z"))
    fv, _ = features(doc)
    assert (fv.values["sbp_clinic"], fv.values["dbp_clinic"]) == (188.0, 104.0)
    assert "NICE NG136 1.2.2" in prov(fv, "sbp_clinic").note
    assert fv.data_quality == ()


def test_an_older_visit_never_beats_the_latest() -> None:
    """The review's case: 184/97 weeks ago, 193/111 now: 193/111 is the clinic BP."""
    doc = bundle(patient(), bp("old", 184, 97, "2026-10-20T09:00:00Z"),
                 bp("new", 193, 111, "2026-11-20T09:00:00Z"))
    fv, _ = features(doc)
    assert (fv.values["sbp_clinic"], fv.values["dbp_clinic"]) == (193.0, 111.0)


def test_conflicting_readings_at_the_same_time_are_a_data_quality_warning() -> None:
    doc = bundle(patient(), bp("x", 150, 90, "2026-11-20T09:00:00Z"),
                 bp("y", 172, 96, "2026-11-20T09:00:00Z"))
    fv, _ = features(doc)
    assert fv.values["sbp_clinic"] == 150.0
    assert len(fv.data_quality) == 1
    warning = fv.data_quality[0]
    assert "Conflicting" in warning
    assert "172/96" in warning
    assert "150/90" in warning


def test_the_same_reading_sent_twice_is_no_conflict() -> None:
    doc = bundle(patient(), bp("x", 150, 90, "2026-11-20T09:00:00Z"),
                 bp("y", 150, 90, "2026-11-20T09:00:00Z"))
    fv, _ = features(doc)
    assert fv.data_quality == ()


def test_separate_systolic_and_diastolic_observations_are_paired() -> None:
    """8480-6/8462-4 (and SNOMED 271649006/271650006) at the same time form one reading."""
    fv, _ = features(fixture("bp_separate.json"))
    assert fv.values["sbp_clinic"] == 155.0
    assert fv.values["dbp_clinic"] == 91.0
    assert prov(fv, "sbp_clinic").source == "Observation/sbp-2"
    assert prov(fv, "dbp_clinic").source == "Observation/dbp-2"


def test_entered_in_error_and_cancelled_readings_are_ignored() -> None:
    fv, report = features(fixture("bp_entered_in_error.json"))
    assert fv.values["sbp_clinic"] == 146.0
    assert "the only clinic reading" in prov(fv, "sbp_clinic").note
    assert report.resources_ignored["Observation"] == 2


def test_home_and_daytime_ambulatory_mean_of_last_90_days() -> None:
    """sbp_home = mean of the 96607-7 home mean, the SNOMED daytime ABPM mean and a
    self-measured reading (performer = patient); the 24-hour mean and a reading older than
    90 days are not used; clinic BP is not mixed in."""
    fv, _ = features(fixture("home_bp.json"))
    assert fv.values["sbp_home"] == pytest.approx((142 + 138 + 146) / 3)
    assert "mean of 3" in prov(fv, "sbp_home").note
    assert fv.values["sbp_clinic"] == 160.0


def test_only_24_hour_abpm_says_why_it_is_not_used() -> None:
    doc = bundle(patient(), bp("h24", 130, 80, "2026-11-01", code="97844-5"))
    fv, _ = features(doc)
    assert fv.values["sbp_home"] is None
    assert "24-hour" in prov(fv, "sbp_home").note


def test_measurement_setting_extension_marks_home() -> None:
    ext = [{"url": "http://hl7.org/fhir/us/vitals/StructureDefinition/MeasurementSettingExt",
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                 "code": "264362003"}]}}]
    doc = bundle(patient(), bp("h", 139, 85, "2026-11-20", extension=ext),
                 bp("c", 151, 91, "2026-11-20T10:00:00Z"))
    fv, _ = features(doc)
    assert fv.values["sbp_home"] == 139.0
    assert fv.values["sbp_clinic"] == 151.0


def test_implausible_reading_is_reported_and_the_previous_one_used() -> None:
    doc = bundle(patient(), bp("ok", 150, 90, "2026-09-01"), bp("bad", 400, 90, "2026-11-01"))
    fv, report = features(doc)
    assert fv.values["sbp_clinic"] == 150.0
    assert "implausible" in prov(fv, "sbp_clinic").note
    assert report.implausible_values == 1
    assert report.issues[0].resource == "Observation/bad"


def test_unknown_unit_is_reported_not_guessed() -> None:
    doc = bundle(patient(), bp("cm", 15, 9, "2026-11-01", unit="cmHg"))
    fv, report = features(doc)
    assert fv.values["sbp_clinic"] is None
    assert report.count(IssueKind.UNKNOWN_UNIT) == 2


def test_no_reading_in_twelve_months_says_so_with_the_latest_date() -> None:
    fv, _ = features(bundle(patient(), bp("old", 150, 90, "2025-01-01")))
    assert fv.values["sbp_clinic"] is None
    assert fv.days_since_bp is None
    note = prov(fv, "sbp_clinic").note
    assert "no clinic blood pressure in the last 12 months" in note
    assert "2025-01-01" in note


def test_readings_after_the_assessment_date_are_not_known_yet() -> None:
    doc = bundle(patient(), bp("a", 150, 90, "2026-11-01"), bp("future", 120, 70, "2026-12-01"))
    assert features(doc)[0].values["sbp_clinic"] == 150.0


def test_same_value_tie_takes_the_latest_reading() -> None:
    doc = bundle(patient(), bp("first", 150, 95, "2026-10-01"), bp("second", 150, 85,
                                                                    "2026-11-01"))
    fv, _ = features(doc)
    assert fv.values["dbp_clinic"] == 85.0


def test_heart_rate_latest_within_twelve_months() -> None:
    doc = bundle(patient(), obs("hr-old", "8867-4", 50, "/min", "2025-06-01"),
                 obs("hr-new", "8867-4", 58, "{beats}/min", "2026-06-01"))
    fv, _ = features(doc)
    assert fv.values["heart_rate"] == 58.0
    none, _ = features(bundle(patient(), obs("hr-old", "8867-4", 50, "/min", "2025-06-01")))
    assert none.values["heart_rate"] is None


def test_ambulatory_readings_with_the_same_category_split_by_hour() -> None:
    """Readings that share a category (its verdict is kept for the run) are still daytime
    or night-time by their own hour."""
    amb = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs"}], "text": "Ambulatory BP"}]
    day = bp("day", 150, 90, "2026-11-01T10:00:00Z", category=amb)
    night = bp("night", 120, 70, "2026-11-01T23:30:00Z", category=amb)
    day2 = bp("day2", 140, 80, "2026-11-02T12:00:00Z", category=amb)
    fv, _ = features(bundle(patient(), night, day, day2))
    assert fv.values["sbp_home"] == pytest.approx((150 + 140) / 2)
    assert "ambulatory daytime" in prov(fv, "sbp_home").note
    assert fv.values["sbp_clinic"] is None


def test_a_bp_observation_that_cannot_be_read_is_named() -> None:
    """An Observation under the bp prefetch key with a code nobody maps is not silently
    skipped (an older reading would stand in for it): it is a data-quality warning."""
    odd = bp("x", 192, 116, "2026-11-20", code="99999-9")
    doc = {"patient": patient(), "bp": bundle(odd, bp("old", 146, 86, "2026-09-01"),
                                              kind="searchset")}
    fv, _ = features(doc)
    assert fv.values["sbp_clinic"] == 146.0
    assert any("not understood" in w and "Observation/x" in w for w in fv.data_quality)


def test_one_encounter_across_midnight_is_one_consultation() -> None:
    """The Encounter, when named, makes the consultation: two readings either side of
    midnight in one visit are its last two (the lower is used)."""
    enc = {"encounter": {"reference": "Encounter/e1"}}
    doc = bundle(patient(), bp("a", 186, 104, "2026-11-20T23:55:00Z", **enc),
                 bp("b", 176, 98, "2026-11-21T00:05:00Z", **enc))
    fv, _ = features(doc)
    assert (fv.values["sbp_clinic"], fv.values["dbp_clinic"]) == (176.0, 98.0)
    other = {"encounter": {"reference": "Encounter/e2"}}
    doc = bundle(patient(), bp("a", 176, 98, "2026-11-21T08:00:00Z", **enc),
                 bp("b", 186, 104, "2026-11-21T10:00:00Z", **other))
    fv, _ = features(doc)
    assert fv.values["sbp_clinic"] == 186.0  # a later visit the same day is its own


def test_a_home_monitoring_series_is_a_mean_or_enough_readings() -> None:
    """The white-coat rule needs a monitoring series (NICE NG136 1.2.6-1.2.7): a recorded home
    mean (96607-7) is one; two single home readings are not."""
    mean = bp("m", 126, 78, "2026-11-20", code="96607-7")
    mean["component"][0]["code"] = {"coding": [{"system": LOINC, "code": "96608-5"}]}
    mean["component"][1]["code"] = {"coding": [{"system": LOINC, "code": "96609-3"}]}
    fv, _ = features(bundle(patient(), mean, bp("c", 158, 92, "2026-11-20T10:00:00Z")))
    assert fv.values["home_bp_series"] == 1.0
    ext = [{"url": "http://hl7.org/fhir/us/vitals/StructureDefinition/MeasurementSettingExt",
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                 "code": "264362003"}]}}]
    few = [bp(f"h{i}", 126, 78, f"2026-11-1{i}", extension=ext) for i in range(2)]
    fv, _ = features(bundle(patient(), *few, bp("c", 158, 92, "2026-11-20T10:00:00Z")))
    assert fv.values["sbp_home"] == 126.0
    assert fv.values["home_bp_series"] == 0.0


def test_home_readings_count_only_after_the_regimen_last_changed() -> None:
    """A home series taken before the current regimen's last prescription is of another
    regimen: not used (named in the note); readings after it are, with their diastolic."""
    ext = [{"url": "http://hl7.org/fhir/us/vitals/StructureDefinition/MeasurementSettingExt",
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                 "code": "264362003"}]}}]
    before = [bp(f"h{i}", 126, 78, f"2026-10-1{i}", extension=ext) for i in range(8)]
    after = [bp(f"a{i}", 130, 82, f"2026-11-1{i}", extension=ext) for i in range(3)]
    ramipril = med_request("m1", "35296", display="ramipril",
                           authored="2026-11-01")
    fv, _ = features(bundle(patient(), ramipril, *before, *after,
                            bp("c", 158, 92, "2026-11-20T10:00:00Z")))
    assert fv.values["sbp_home"] == 130.0
    assert fv.values["dbp_home"] == 82.0
    assert fv.values["home_bp_series"] == 0.0
    assert "8 earlier readings, before the regimen change of 2026-11-01" in prov(
        fv, "sbp_home").note
    only_before = bundle(patient(), ramipril, *before, bp("c", 158, 92, "2026-11-20T10:00:00Z"))
    fv, _ = features(only_before)
    assert fv.values["sbp_home"] is None
    assert "regimen change of 2026-11-01: not used" in prov(fv, "sbp_home").note
    untreated = bundle(patient(), *before, bp("c", 158, 92, "2026-11-20T10:00:00Z"))
    fv, _ = features(untreated)
    assert (fv.values["sbp_home"], fv.values["dbp_home"]) == (126.0, 78.0)
    assert fv.values["home_bp_series"] == 1.0

"""Medications: coding systems, medicationReference, status, dose multiples, rule facts."""

from __future__ import annotations

import pytest

from fhir_mappings.mapping import features_from_fhir
from fhir_mappings.mapping_policy import MappingPolicy
from fhir_mappings.medications import round_dose
from fhir_mappings.report import IssueKind
from tests.fhir_mappings.builders import (
    AS_OF,
    RXNORM,
    bundle,
    features,
    fixture,
    med_request,
    patient,
    prov,
)
from vocabulary.drug_classes import DrugClass

ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
A, R, C, T, B, S, X = (DrugClass.ACE_INHIBITOR, DrugClass.ARB, DrugClass.CCB,
                       DrugClass.THIAZIDE_LIKE, DrugClass.BETA_BLOCKER,
                       DrugClass.SPIRONOLACTONE, DrugClass.ALPHA_BLOCKER)


def regimen_of(*meds: dict[str, object]) -> dict[DrugClass, float]:
    fv, _ = features(bundle(patient(), *meds))
    return dict(fv.regimen)


@pytest.mark.parametrize(("code", "system", "expected"), [
    ("314076", RXNORM, {A: 0.5}),        # lisinopril 10 mg: standard 20 mg
    ("314077", RXNORM, {A: 1.0}),        # lisinopril 20 mg
    ("310798", RXNORM, {T: 1.0}),        # HCTZ 25 mg
    ("316049", RXNORM, {T: 1.0}),        # HCTZ 25 mg (SCDC, Synthea-2021)
    ("308136", RXNORM, {C: 0.5}),        # amlodipine 2.5 mg
    ("197361", RXNORM, {C: 1.0}),        # amlodipine 5 mg
    ("979492", RXNORM, {R: 1.0}),        # losartan 50 mg
    ("1656354", RXNORM, {R: 2.0}),       # sacubitril/valsartan 97/103 = valsartan 160
    ("200033", RXNORM, {B: 1.0}),        # carvedilol 25 mg
    ("866414", RXNORM, {B: 1.0}),        # metoprolol succinate 100 mg
    ("313096", RXNORM, {S: 1.0}),        # spironolactone 25 mg
    ("351257", RXNORM, {S: 1.0}),        # eplerenone 50 mg counts as the MRA class
    ("833036", RXNORM, {A: 0.5}),        # captopril 25 mg
    ("318906001", SNOMED, {A: 2.0}),     # dm+d ramipril 10 mg capsules
    ("317954006", SNOMED, {T: 1.0}),     # dm+d indapamide 1.5 mg MR = 2.5 mg
    ("318783003", SNOMED, {X: 1.0}),     # dm+d doxazosin 4 mg
    ("C09AA05", ATC, {A: 1.0}),          # ATC ramipril, strength unknown: standard
    ("C09DA01", ATC, {R: 1.0, T: 1.0}),  # ATC ARB + diuretic combination group
    ("C08CA01", ATC, {C: 1.0}),
    ("35296", RXNORM, {A: 1.0}),         # RxNorm ingredient ramipril
])
def test_codes_to_classes_and_doses(code: str, system: str,
                                    expected: dict[DrugClass, float]) -> None:
    assert regimen_of(med_request("m", code, system)) == expected


def test_ingredient_code_with_strength_in_the_display() -> None:
    assert regimen_of(med_request("m", "C09AA05", ATC, display="Ramipril 10mg capsules")) == {
        A: 2.0}


def test_combination_product_by_name_text_is_flagged() -> None:
    """An unknown code falls back to the text: two classes, reported as a name match."""
    mr = med_request("m", "999999", display="hydrochlorothiazide 12.5 MG / lisinopril 20 MG "
                                            "Oral Tablet")
    fv, report = features(bundle(patient(), mr))
    assert dict(fv.regimen) == {A: 1.0, T: 0.5}
    assert report.name_text_matches == 1
    assert report.issues[0].kind is IssueKind.NAME_TEXT_MATCH
    assert "name text match" in prov(fv, "cur_ace_inhibitor").note


def test_name_matching_can_be_switched_off() -> None:
    mr = med_request("m", "999999", display="amlodipine 5 mg tablets")
    fv, report = features_from_fhir(bundle(patient(), mr), AS_OF,
                                    MappingPolicy(match_names=False))
    assert dict(fv.regimen) == {}
    assert report.unknown_codes == {
        "MedicationRequest http://www.nlm.nih.gov/research/umls/rxnorm|999999": 1}


def test_medication_reference_fixture() -> None:
    """Bundle reference by urn:uuid (amlodipine 10 mg -> 2x), contained #m1 (ramipril
    2.5 mg twice daily = 5 mg -> 1x), and an unresolved reference (reported, then matched by
    its display text: furosemide is not a model class)."""
    fv, report = features(fixture("medication_reference.json"))
    assert dict(fv.regimen) == {C: 2.0, A: 1.0}
    assert prov(fv, "cur_ccb").source == "MedicationRequest/mr-amlo"
    assert report.count(IssueKind.UNRESOLVED_REFERENCE) == 1
    assert report.resources_used["Medication"] == 1
    assert report.resources_used["Medication (contained)"] == 1


def test_medication_statement_fixture() -> None:
    """Active and intended statements count; completed and ended ones do not; ARNI counts
    as an ARB; ATC M01AE01 is an NSAID; text-only indapamide is matched by name."""
    fv, report = features(fixture("medication_statement.json"))
    assert dict(fv.regimen) == {R: 2.0, T: 1.0}
    assert fv.values["nsaid"] == 1.0
    assert prov(fv, "nsaid").source == "MedicationStatement/ms-nsaid"
    assert report.name_text_matches == 1


@pytest.mark.parametrize(("status", "intent"), [
    ("stopped", "order"), ("completed", "order"), ("draft", "order"), ("on-hold", "order"),
    ("entered-in-error", "order"), ("active", "proposal")])
def test_only_active_orders_and_plans(status: str, intent: str) -> None:
    assert regimen_of(med_request("m", "314077", status=status, intent=intent)) == {}


def test_do_not_perform_and_future_orders_are_not_current() -> None:
    assert regimen_of(med_request("m", "314077", doNotPerform=True)) == {}
    assert regimen_of(med_request("m", "314077", authored="2027-01-01")) == {}


def test_dosage_instructions_give_the_daily_dose() -> None:
    """amlodipine 5 mg, 2 tablets once daily = 10 mg -> 2x; in mg: 2.5 mg daily -> 0.5x."""
    two = {"dosageInstruction": [{
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "tablet"}}]}]}
    assert regimen_of(med_request("m", "197361", **two)) == {C: 2.0}
    mg = {"dosageInstruction": [{"doseAndRate": [{"doseQuantity": {
        "value": 2.5, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]}]}
    assert regimen_of(med_request("m", "197361", **mg)) == {C: 0.5}


def test_the_higher_dose_wins_when_a_class_is_recorded_twice() -> None:
    meds = (med_request("m1", "314076"), med_request("m2", "314077"))
    fv, _ = features(bundle(patient(), *meds))
    assert dict(fv.regimen) == {A: 1.0}
    assert "also current: MedicationRequest/m1" in prov(fv, "cur_ace_inhibitor").note


@pytest.mark.parametrize(("code", "system", "fact"), [
    ("849574", RXNORM, "nsaid"), ("M01AE02", ATC, "nsaid"), ("897718", RXNORM, "non_dhp_ccb"),
    ("3443", RXNORM, "non_dhp_ccb"), ("N05AN01", ATC, "lithium"),
    ("A12BA01", ATC, "potassium_supplement"), ("C03DB01", ATC, "potassium_supplement"),
])
def test_rule_facts(code: str, system: str, fact: str) -> None:
    fv, _ = features(bundle(patient(), med_request("m", code, system)))
    assert fv.values[fact] == 1.0
    assert dict(fv.regimen) == {}


def test_loop_diuretic_is_kept_in_the_record_not_the_regimen() -> None:
    from fhir_mappings.patient_record import build_record

    record = build_record(bundle(patient(), med_request("m", "313988")), AS_OF)
    assert record.facts["loop_diuretic"].value == 1.0
    assert dict(record.regimen) == {}


@pytest.mark.parametrize(("raw", "level"), [
    (0.1, 0.5), (0.5, 0.5), (0.7, 0.5), (0.75, 1.0), (1.0, 1.0), (1.4, 1.0), (1.5, 2.0),
    (2.0, 2.0), (8.0, 2.0), (0.0, 0.5)])
def test_round_dose(raw: float, level: float) -> None:
    assert round_dose(raw) == level


def test_recognised_non_antihypertensives_leave_no_trace() -> None:
    """Digoxin is recognised (not an unknown code) but gives no fact and is not 'used'."""
    from fhir_mappings.patient_record import build_record

    record = build_record(bundle(patient(), med_request("m", "197604")), AS_OF)
    assert "not_antihypertensive" not in record.facts
    assert record.report.unknown_codes == {}
    assert record.report.resources_ignored == {"MedicationRequest": 1}


def test_medication_ingredients_with_strength() -> None:
    """A Medication without a product code: its ingredient items and strengths are used."""
    med = {"resourceType": "Medication", "id": "combo", "ingredient": [
        {"itemCodeableConcept": {"coding": [{"system": RXNORM, "code": "52175"}]},
         "strength": {"numerator": {"value": 100, "unit": "mg"},
                      "denominator": {"value": 1, "unit": "tablet"}}},
        {"itemCodeableConcept": {"coding": [{"system": RXNORM, "code": "5487"}]},
         "strength": {"numerator": {"value": 12.5, "unit": "mg"},
                      "denominator": {"value": 1, "unit": "tablet"}}}]}
    mr = med_request("m", "x")
    del mr["medicationCodeableConcept"]
    mr["medicationReference"] = {"reference": "Medication/combo"}
    assert regimen_of(med, mr) == {R: 2.0, T: 0.5}


def test_statement_dosage_twice_daily() -> None:
    ms = {"resourceType": "MedicationStatement", "id": "s", "status": "active",
          "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "200033"}]},
          "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-01-01",
          "dosage": [{"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                      "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}]}]}
    assert regimen_of(ms) == {B: 2.0}  # carvedilol 25 mg twice daily = 50 mg = 2x


def test_grouped_name_pattern_matches_like_the_plain_alternation() -> None:
    """The ingredient-name regex (grouped by first letter) finds exactly what the plain
    longest-first alternation finds."""
    import random
    import re

    from fhir_mappings import drug_codes
    from fhir_mappings.medications import _NAMES

    plain = re.compile(r"\b(" + "|".join(sorted(
        (re.escape(n) for i in drug_codes.INGREDIENTS for n in i.all_names),
        key=len, reverse=True)) + r")\b")
    names = [n for i in drug_codes.INGREDIENTS for n in i.all_names]
    rng = random.Random(7)
    texts = [" / ".join(rng.sample(names, 3)) + " 5 mg" for _ in range(300)]
    texts += [f"{a}{b}" for a in names for b in ("", "s", "-x", " 12.5 mg")]
    texts += [f"x{n}" for n in names]
    for text in texts:
        assert ([(m.start(), m[1]) for m in _NAMES.finditer(text)]
                == [(m.start(), m[1]) for m in plain.finditer(text)]), text


def test_salbutamol_is_airways_therapy_and_aliskiren_its_own_fact() -> None:
    """Issue 11: asthma evidenced only by an inhaler is seen (a caution for beta-blockers);
    aliskiren is a rule fact (MHRA 2012), not just 'another antihypertensive'."""
    from tests.fhir_mappings.builders import bundle, features, med_request, patient

    fv, _ = features(bundle(patient(), med_request("s", "435", display="albuterol inhaler"),
                            med_request("a", "325646", display="aliskiren 150 MG")))
    assert fv.values["airways_therapy"] == 1.0
    assert fv.values["aliskiren"] == 1.0
    assert fv.values["asthma"] == 0.0


def test_diltiazem_alone_is_a_treated_patient() -> None:
    from models.guideline.nice import treatment_indication
    from models.guideline.profiles import NICE
    from models.guideline.targets import Setting
    from tests.factories import patient as fv_patient

    p = fv_patient(non_dhp_ccb=1, sbp_clinic=152, dbp_clinic=88)
    ind = treatment_indication(p, NICE.target(p, Setting.CLINIC))
    assert ind is not None
    assert ind.code == "step-up"


def test_methyldopa_alone_is_a_treated_patient() -> None:
    """Issue 11: other antihypertensives (methyldopa, hydralazine ...) are part of the
    current treatment: a patient on methyldopa is stepped up, not started as untreated."""
    from models.guideline.nice import treatment_indication
    from models.guideline.profiles import NICE
    from models.guideline.targets import Setting
    from tests.fhir_mappings.builders import bundle, features, med_request, patient

    fv, _ = features(bundle(patient(), med_request("m", "6876", display="methyldopa 250 MG")))
    assert fv.values["other_antihypertensive"] == 1.0
    fv = type(fv)(fv.as_of, {**fv.values, "sbp_clinic": 152.0, "dbp_clinic": 88.0,
                             "age": 60.0}, fv.regimen)
    ind = treatment_indication(fv, NICE.target(fv, Setting.CLINIC))
    assert ind is not None
    assert ind.code == "step-up"


def test_sacubitril_valsartan_is_its_own_fact_as_well_as_an_arb() -> None:
    from tests.fhir_mappings.builders import bundle, features, med_request, patient
    from vocabulary.drug_classes import DrugClass

    fv, _ = features(bundle(patient(), med_request(
        "e", "1656354", display="sacubitril 97 MG / valsartan 103 MG Oral Tablet")))
    assert fv.values["sacubitril_valsartan"] == 1.0
    assert DrugClass.ARB in fv.regimen


def test_two_drugs_of_one_class_are_named_as_duplicate_therapy() -> None:
    """Spironolactone and eplerenone (or two ACE inhibitors) both current are not merged
    silently: the card names the duplicate therapy."""
    from tests.fhir_mappings.builders import bundle, features, med_request, patient

    fv, _ = features(bundle(patient(), med_request("s", "313096", display="spironolactone 25"),
                            med_request("e", "351256", display="eplerenone 25 MG Oral Tablet")))
    assert any("duplicate therapy" in w and "eplerenone" in w and "spironolactone" in w
               for w in fv.data_quality), fv.data_quality
    single, _ = features(bundle(patient(), med_request("s", "313096", display="spironolactone")))
    assert not any("duplicate" in w for w in single.data_quality)

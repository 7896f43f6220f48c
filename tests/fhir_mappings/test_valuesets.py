"""Curated value sets shipped as data (fhir_mappings/valuesets/*.toml) and their loader."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fhir_mappings import codes
from fhir_mappings.patient_record import build_record
from fhir_mappings.valuesets import (
    ConditionConcept,
    ValueSetError,
    folder,
    load_condition_file,
    load_conditions,
    load_pregnancy_observations,
)
from tests.fhir_mappings.builders import AS_OF, LOINC, SNOMED, bundle, concept, condition, patient

ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
EXPECTED_FACTS = {
    "pregnancy", "breastfeeding", "dialysis", "diabetes_t2", "ckd", "heart_failure", "hfref",
    "cvd", "asthma", "copd", "gout", "angioedema_history", "ace_inhibitor_intolerance",
    "heart_block", "orthostatic_hypotension", "aortic_stenosis", "frailty",
    "renal_artery_stenosis", "sick_sinus", "acute_coronary"}


def _by_fact() -> dict[str, ConditionConcept]:
    return {c.fact: c for c in load_conditions()}


def _icd10_facts(code: str) -> set[str]:
    norm = codes.normalise_icd10(code)
    return {c.fact for c in codes.CONDITIONS if c.matches_icd10(norm)}


def test_every_file_loads() -> None:
    concepts = load_conditions()
    assert {c.fact for c in concepts} == EXPECTED_FACTS
    assert len({c.fact for c in concepts}) == len(concepts)
    for c in concepts:
        assert c.updated is not None
        assert c.updated <= date.today()
        assert c.source
        assert c.title
        assert c.snomed or c.icd10
    names = {p.name for p in folder().iterdir() if p.name.endswith(".toml")}
    assert names == {f"{f}.toml" for f in EXPECTED_FACTS} | {"pregnancy_observations.toml",
                                                             "brands.toml"}
    # codes.py reads the same data
    assert concepts == codes.CONDITIONS
    assert codes.CONDITIONS_BY_SNOMED["169560008"] == (_by_fact()["pregnancy"],)


def test_history_flags_carried_over() -> None:
    history = {c.fact for c in load_conditions() if c.history}
    assert history == {"cvd", "angioedema_history", "ace_inhibitor_intolerance", "acute_coronary"}


@pytest.mark.parametrize("code", ["169560008", "77386006", "72892002", "47200007"])
def test_pregnancy_snomed(code: str) -> None:
    assert code in _by_fact()["pregnancy"].snomed


@pytest.mark.parametrize("code", ["O10.0", "O10.011", "O10011", "Z33.1", "Z3A.20", "Z34.00",
                                  "O09.291", "O88.011", "O91.011", "O24.410", "z3a20"])
def test_icd10_pregnancy(code: str) -> None:
    assert "pregnancy" in _icd10_facts(code)


@pytest.mark.parametrize("code", ["O90", "O90.3", "O91", "O91.03", "O92", "O92.3", "O85",
                                  "O80", "O10.03", "O14.15", "O24.430", "O88.23", "Z33.2",
                                  "Z39.1", "I10", "N18.6"])
def test_icd10_not_pregnancy(code: str) -> None:
    assert "pregnancy" not in _icd10_facts(code)


def test_breastfeeding_is_not_pregnancy() -> None:
    by_fact = _by_fact()
    assert "413712001" in by_fact["breastfeeding"].snomed
    assert "413712001" not in by_fact["pregnancy"].snomed
    assert by_fact["breastfeeding"].snomed.isdisjoint(by_fact["pregnancy"].snomed)
    assert _icd10_facts("Z39.1") == {"breastfeeding"}
    assert _icd10_facts("O92.13") == {"breastfeeding"}
    assert _icd10_facts("O92.5") == set()  # suppressed lactation: neither


@pytest.mark.parametrize("code", ["Z99.2", "Z992", "Z49.31", "N18.6"])
def test_icd10_dialysis(code: str) -> None:
    assert "dialysis" in _icd10_facts(code)


def test_dialysis_snomed() -> None:
    dialysis = _by_fact()["dialysis"]
    assert {"714152005", "105502003", "236435004", "302497006", "71192002"} <= dialysis.snomed
    assert "46177005" not in dialysis.snomed  # ESRD without dialysis: ckd only


def test_old_codes_carried_over() -> None:
    """A sample of the codes that codes.py listed by hand before the value sets."""
    by_fact = _by_fact()
    for fact, snomed in {
            "diabetes_t2": {"44054006", "157141000119108"}, "ckd": {"709044004", "46177005"},
            "heart_failure": {"446221000", "88805009"}, "hfref": {"703272007", "417996009"},
            "cvd": {"1755008", "399957001", "266257000"}, "copd": {"87433001"},
            "ace_inhibitor_intolerance": {"609537003"}, "frailty": {"925861000000102"}}.items():
        assert snomed <= by_fact[fact].snomed, fact
    assert _icd10_facts("I50.22") == {"heart_failure", "hfref"}
    assert _icd10_facts("E11.22") == {"diabetes_t2", "ckd"}


def test_longest_prefix_decides() -> None:
    c = ConditionConcept("x", frozenset(), ("O", "O9101"), "s", exclude=("O91", "O9"))
    assert c.matches_icd10("O10")
    assert not c.matches_icd10("O91")
    assert not c.matches_icd10("O9103")
    assert c.matches_icd10("O91011")
    assert not c.matches_icd10("Z33")


def test_pregnancy_observation_codes() -> None:
    p = load_pregnancy_observations()
    assert {(LOINC, "82810-3"), (LOINC, "11449-6")} <= p.status_codes
    assert {(SNOMED, "77386006"), (LOINC, "LA15173-0")} <= p.pregnant_values
    assert {(SNOMED, "60001007"), (LOINC, "LA26683-5")} <= p.not_pregnant_values
    assert p.pregnant_values.isdisjoint(p.not_pregnant_values)
    assert {(LOINC, "2106-3"), (LOINC, "2118-8")} <= p.hcg_qualitative_codes
    assert (SNOMED, "10828004") in p.hcg_positive_values
    assert p.hcg_positive_values.isdisjoint(p.hcg_negative_values)
    assert {(LOINC, "19080-1"), (LOINC, "21198-7")} <= p.hcg_quantitative_codes
    assert (LOINC, "2115-4") not in p.hcg_quantitative_codes  # free beta subunit
    assert (p.hcg_unit, p.hcg_negative_below, p.hcg_positive_above) == ("[IU]/L", 5.0, 25.0)
    assert {(LOINC, "11778-8"), (LOINC, "11779-6"), (LOINC, "11780-4")} <= p.delivery_date_codes
    assert p.updated == date(2026, 12, 6)
    assert p.sources
    assert p.pregnant_values == codes.PREGNANT_VALUES


# --------------------------------------------------------------------------- malformed data


GOOD = """fact = "gout"
title = "Gout"
history = false
updated = 2026-12-06
sources = ["test"]
[snomed]
"90560007" = { display = "Gout", source = "test" }
[icd10.include]
"M10" = { display = "Gout", source = "test" }
"""


def _write(tmp_path: Path, text: str, name: str = "gout.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_file_in_tmp(tmp_path: Path) -> None:
    c = load_condition_file(_write(tmp_path, GOOD))
    assert (c.fact, c.snomed, c.icd10, c.updated) == (
        "gout", frozenset({"90560007"}), ("M10",), date(2026, 12, 6))
    assert load_conditions(tmp_path) == (c,)


@pytest.mark.parametrize(("text", "message"), [
    ("fact = \"gout\"\n[snomed\n", "not valid TOML"),
    (GOOD.replace('"90560007"', '"9056X007"'), "not a SNOMED CT concept id"),
    (GOOD.replace('"M10" =', '"M10.0" ='), "not a normalised ICD-10 prefix"),
    (GOOD.replace('"M10" =', '"m10" ='), "not a normalised ICD-10 prefix"),
    (GOOD.replace("history = false", "history = \"no\""), "history must be true or false"),
    (GOOD.replace("history = false", "histroy = false"), "unknown key"),
    (GOOD.replace("updated = 2026-12-06", "updated = \"06/12/2026\""), "not a YYYY-MM-DD"),
    (GOOD.replace('sources = ["test"]', "sources = []"), "sources must be"),
    (GOOD.replace('{ display = "Gout", source = "test" }', '"Gout"', 1), "display = ..."),
    (GOOD.replace('fact = "gout"', 'fact = "asthma"'), "file name must be asthma.toml"),
    (GOOD + '[icd10.exclude]\n"M10" = { display = "x", source = "y" }\n',
     "both included and excluded"),
])
def test_malformed_file_gives_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueSetError, match=message) as info:
        load_condition_file(_write(tmp_path, text))
    assert "gout.toml" in str(info.value)


def test_a_second_file_for_a_fact_is_refused(tmp_path: Path) -> None:
    """Facts are unique: a file must be named after its fact, so a copy under another name is
    refused (and a folder without condition files is an error, not an empty tuple)."""
    with pytest.raises(ValueSetError, match="no condition value-set files"):
        load_conditions(tmp_path)
    _write(tmp_path, GOOD)
    _write(tmp_path, GOOD, "gout_copy.toml")
    with pytest.raises(ValueSetError, match=r"gout_copy\.toml: file name must be gout\.toml"):
        load_conditions(tmp_path)


def test_malformed_observation_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "updated = 2026-12-06\nsources = [\"x\"]\n",
                  "pregnancy_observations.toml")
    with pytest.raises(ValueSetError, match=r"pregnancy_observations.toml: \[hcg_quantitative\]"):
        load_pregnancy_observations(path)


# --------------------------------------------------------------------------- through the mapping


def test_icd10_o10_0_condition_sets_pregnancy() -> None:
    """The safety-review miss: ICD-10 O10.0 (pre-existing essential hypertension complicating
    pregnancy) is a pregnancy."""
    record = build_record(bundle(patient(birth="1994-03-01"), condition("c", "O10.0", ICD10)),
                          AS_OF)
    fact = record.facts["pregnancy"]
    assert fact.value == 1.0
    assert fact.source == "Condition/c"


@pytest.mark.parametrize(("code", "system"), [
    ("169560008", SNOMED), ("Z3A.20", ICD10_CM), ("O10.011", ICD10_CM), ("Z33.1", ICD10)])
def test_pregnancy_codes_through_the_mapping(code: str, system: str) -> None:
    record = build_record(bundle(patient(), condition("c", code, system)), AS_OF)
    assert record.facts["pregnancy"].value == 1.0


@pytest.mark.parametrize(("code", "system"), [("413712001", SNOMED), ("Z39.1", ICD10)])
def test_breastfeeding_condition(code: str, system: str) -> None:
    facts = build_record(bundle(patient(), condition("c", code, system)), AS_OF).facts
    assert facts["breastfeeding"].value == 1.0
    assert "pregnancy" not in facts


@pytest.mark.parametrize(("code", "system"), [("Z99.2", ICD10), ("105502003", SNOMED),
                                              ("714152005", SNOMED)])
def test_dialysis_condition(code: str, system: str) -> None:
    facts = build_record(bundle(patient(), condition("c", code, system)), AS_OF).facts
    assert facts["dialysis"].value == 1.0


def test_puerperium_code_is_not_pregnancy() -> None:
    facts = build_record(bundle(patient(), condition("c", "O90.3", ICD10_CM)), AS_OF).facts
    assert "pregnancy" not in facts


def test_pregnancy_status_loinc_11449_6_with_loinc_answer() -> None:
    ps = {"resourceType": "Observation", "id": "ps", "status": "final",
          "code": concept(LOINC, "11449-6"), "subject": {"reference": "Patient/p1"},
          "effectiveDateTime": "2026-10-01",
          "valueCodeableConcept": concept(LOINC, "LA15173-0", "Pregnant")}
    facts = build_record(bundle(patient(), ps), AS_OF).facts
    assert facts["pregnancy"].value == 1.0
    assert facts["pregnancy"].source == "Observation/ps"

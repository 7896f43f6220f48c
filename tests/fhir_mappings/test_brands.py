"""Brand and product names (fhir_mappings/valuesets/brands.toml): the table, its loader and
its use by the medication mapping as a flagged last resort."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhir_mappings import drug_codes
from fhir_mappings.mapping import features_from_fhir
from fhir_mappings.mapping_policy import MappingPolicy
from fhir_mappings.patient_record import build_record
from fhir_mappings.report import IssueKind
from fhir_mappings.valuesets import (
    Brand,
    ValueSetError,
    brand_ingredients,
    load_brands,
    normalise_name,
)
from tests.fhir_mappings.builders import AS_OF, RXNORM, bundle, features, med_request, patient
from vocabulary.drug_classes import DrugClass

A, T, C, R = (DrugClass.ACE_INHIBITOR, DrugClass.THIAZIDE_LIKE, DrugClass.CCB, DrugClass.ARB)
TEXT_ONLY = "999999"  # an RxNorm code the mapper does not know: the text decides


def text_request(text: str, mid: str = "m") -> dict[str, Any]:
    """A MedicationRequest whose drug is written only as text (no coding at all)."""
    mr = med_request(mid, TEXT_ONLY)
    mr["medicationCodeableConcept"] = {"text": text}
    return mr


# --------------------------------------------------------------------------- the table


def test_the_shipped_table_loads_and_every_ingredient_is_known() -> None:
    brands = load_brands()
    assert len({b.name for b in brands.values()}) > 200
    for brand in brands.values():
        assert brand.ingredients
        assert all(i in drug_codes.INGREDIENTS_BY_NAME for i in brand.ingredients)
        assert brand.status in {"V", "S", "M"}
        assert brand.source


def test_lithium_brands_uk_and_us() -> None:
    lithium = {b.name for b in load_brands().values() if b.ingredients == ("lithium",)}
    assert {"Priadel", "Camcolit", "Liskonum", "Li-Liquid", "Lithobid"} <= lithium


@pytest.mark.parametrize(("name", "ingredients"), [
    ("Co-amilofruse", ("amiloride", "furosemide")),
    ("Zestoretic", ("hydrochlorothiazide", "lisinopril")),
    ("Exforge", ("amlodipine", "valsartan")),
    ("Natrixam", ("amlodipine", "indapamide")),
    ("Entresto", ("sacubitril", "valsartan")),
    ("Rasilez", ("aliskiren",)),
])
def test_combination_brands_list_every_ingredient(name: str,
                                                  ingredients: tuple[str, ...]) -> None:
    assert brand_ingredients()[normalise_name(name)] == ingredients


def test_names_are_normalised_case_and_punctuation_insensitive() -> None:
    assert normalise_name("Li-Liquid") == normalise_name("LI LIQUID") == "li liquid"
    assert load_brands()["li liquid"].name == "Li-Liquid"


# --------------------------------------------------------------------------- mapping


def test_priadel_as_text_only_gives_the_lithium_fact_flagged() -> None:
    fv, report = features(bundle(patient(), text_request("Priadel 400mg MR")))
    assert fv.values["lithium"] == 1.0
    assert dict(fv.regimen) == {}
    issue = next(i for i in report.issues if i.kind is IssueKind.NAME_TEXT_MATCH)
    assert "Priadel" in issue.detail
    assert "lithium" in issue.detail
    assert report.name_text_matches == 1


def test_priadel_in_a_coding_display_with_an_unknown_code() -> None:
    mr = med_request("m", TEXT_ONLY, display="Priadel 400mg modified-release tablets")
    record = build_record(bundle(patient(), mr), AS_OF)
    assert record.facts["lithium"].value == 1.0
    assert "brand Priadel" in (record.facts["lithium"].note or "")


def test_brand_in_a_referenced_medication_code_text() -> None:
    med = {"resourceType": "Medication", "id": "med1", "code": {"text": "Camcolit 400"}}
    mr = med_request("m", TEXT_ONLY)
    del mr["medicationCodeableConcept"]
    mr["medicationReference"] = {"reference": "Medication/med1"}
    fv, _ = features(bundle(patient(), med, mr))
    assert fv.values["lithium"] == 1.0


def test_a_known_code_still_maps_by_code_not_by_the_brand_text() -> None:
    """866414 is a Toprol SBD the mapper knows: it maps by code, with no name-text issue."""
    mr = med_request("m", "866414", RXNORM,
                     display="24 HR metoprolol succinate 100 MG Extended Release Oral Tablet "
                             "[Toprol]")
    fv, report = features(bundle(patient(), mr))
    assert dict(fv.regimen) == {DrugClass.BETA_BLOCKER: 1.0}
    assert report.name_text_matches == 0


def test_a_known_code_wins_over_a_contradicting_brand_text() -> None:
    fv, report = features(bundle(patient(), med_request("m", "314076", display="Priadel")))
    assert dict(fv.regimen) == {A: 0.5}
    assert fv.values["lithium"] == 0.0
    assert report.name_text_matches == 0


def test_a_combination_brand_gives_both_classes() -> None:
    fv, report = features(bundle(patient(), text_request("Zestoretic 20/12.5")))
    assert set(fv.regimen) == {A, T}
    issue = next(i for i in report.issues if i.kind is IssueKind.NAME_TEXT_MATCH)
    assert "Zestoretic" in issue.detail
    assert "lisinopril" in issue.detail
    assert "hydrochlorothiazide" in issue.detail


def test_the_longest_brand_wins() -> None:
    fv, _ = features(bundle(patient(), text_request("Exforge HCT 5/160/12.5 tablets")))
    assert set(fv.regimen) == {C, R, T}


def test_a_single_ingredient_brand_reads_its_strength() -> None:
    fv, _ = features(bundle(patient(), text_request("Zestril 10mg tablets")))
    assert dict(fv.regimen) == {A: 0.5}  # lisinopril 10 mg of the standard 20 mg


def test_a_brand_inside_another_word_does_not_match() -> None:
    fv, report = features(bundle(patient(), text_request("Epriadel 400 / Zestrilx / Istins")))
    assert dict(fv.regimen) == {}
    assert fv.values["lithium"] == 0.0
    assert report.name_text_matches == 0


def test_brand_matching_follows_the_name_matching_switch() -> None:
    fv, _ = features_from_fhir(bundle(patient(), text_request("Priadel 400mg")), AS_OF,
                               MappingPolicy(match_names=False))
    assert fv.values["lithium"] == 0.0


# --------------------------------------------------------------------------- a malformed file


GOOD = """updated = 2026-12-07
[sources]
"x" = "a source"
[brands."Priadel"]
ingredients = ["lithium"]
region = ["UK"]
source = "x"
status = "S"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "brands.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_minimal_file_loads(tmp_path: Path) -> None:
    brands = load_brands(_write(tmp_path, GOOD))
    assert brands == {"priadel": Brand("Priadel", ("lithium",), ("UK",), "x", "S")}


@pytest.mark.parametrize(("text", "message"), [
    (GOOD.replace('"lithium"', '"lithium carbonat"'), "'lithium carbonat' is not in"),
    (GOOD.replace('source = "x"', 'source = "y"'), "source must name"),
    (GOOD.replace('status = "S"', 'status = "Q"'), "status must be one of"),
    (GOOD.replace('region = ["UK"]', 'region = ["FR"]'), "region must list"),
    (GOOD.replace('ingredients = ["lithium"]', "ingredients = []"), "ingredients must be"),
    (GOOD + 'dmd = ["12x"]\n', "dmd codes"),
    (GOOD + 'colour = "red"\n', "unknown key"),
    (GOOD + '[brands."PRIADEL"]\ningredients = ["lithium"]\nregion = ["UK"]\n'
            'source = "x"\nstatus = "S"\n', "already defined"),
    (GOOD + '[brands."Amlodipine"]\ningredients = ["lithium"]\nregion = ["UK"]\n'
            'source = "x"\nstatus = "S"\n', "ingredient name of 'amlodipine'"),
    (GOOD.replace("[brands.", "[brandz."), "unknown key"),
    ("brands = [", "not valid TOML"),
])
def test_a_malformed_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueSetError, match=r"brands\.toml") as err:
        load_brands(_write(tmp_path, text))
    assert message in str(err.value)

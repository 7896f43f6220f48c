"""Options name the patient's own drug and dose (issue 11 item 4): "Increase lisinopril from
10 to 20 mg a day", not "Increase ramipril (ACEi) to 2x standard dose" (hazard H-26)."""

from __future__ import annotations

from datetime import date

from fhir_mappings.features import feature_vector_from_document, feature_vector_to_document
from fhir_mappings.mapping import features_from_fhir
from models.assessment import assess
from models.assessment_document import assessment_document
from models.explainer import Explainer
from models.scorer import Scorer
from tests.fhir_mappings.builders import bp, bundle, med_request, patient


def _labels(doc: dict[str, object]) -> dict[str, str]:
    return {o["id"]: o["label"] for o in doc["options"]}  # type: ignore[attr-defined,index]


def test_titration_and_switch_name_the_patients_drug(scorer: Scorer,
                                                     explainer: Explainer) -> None:
    record = bundle(patient(), bp("b", 156, 92, "2026-11-20"),
                    med_request("l", "314076", display="lisinopril 10 MG Oral Tablet"),
                    med_request("h", "310798", display="Hydrochlorothiazide 25 MG Oral Tablet"))
    fv, _ = features_from_fhir(record, date(2026, 11, 24))
    labels = _labels(assessment_document(assess(fv, scorer, explainer)))
    assert labels["opt-titrate-ace_inhibitor"] == (
        "Increase lisinopril (ACEi) from 10 to 20 mg a day")
    assert labels["opt-switch-thiazide_like-to-ccb"].startswith(
        "Switch hydrochlorothiazide 25 mg a day to amlodipine")
    assert labels["opt-add-ccb"] == "Add amlodipine (CCB)"
    # the features document keeps the drugs (the panel re-assesses from it)
    again = feature_vector_from_document(feature_vector_to_document(fv))
    assert again.current_drugs == fv.current_drugs


def test_without_the_drug_the_catalogue_label_stands(scorer: Scorer,
                                                     explainer: Explainer) -> None:
    from tests.factories import patient as fv_patient
    from vocabulary.drug_classes import DrugClass

    doc = assessment_document(assess(fv_patient({DrugClass.CCB: 1.0}), scorer, explainer))
    assert _labels(doc)["opt-titrate-ccb"] == "Increase amlodipine (CCB) to 2x standard dose"

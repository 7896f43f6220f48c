"""Orders a pharmacist would sign (issue 11 item 4; hazard H-26): the patient's own starting
product, the licensed maximum of the patient's own drug."""

from __future__ import annotations

from dataclasses import replace

from models.assessment import assess
from models.assessment_document import assessment_document
from models.explainer import Explainer
from models.guideline.findings import Severity
from models.guideline.safety import option_findings
from models.options import valid_options
from models.prescribing import STARTING, starting_product
from models.scorer import Scorer
from tests.factories import patient
from vocabulary.drug_classes import DrugClass as D


def test_the_starting_product_fits_the_patient() -> None:
    assert starting_product(D.ARB, patient(egfr=50)).dose_mg == 4.0
    assert starting_product(D.ARB, patient(heart_failure=1)).dmd_vmp == "318978004"
    assert starting_product(D.ARB, patient(egfr=80)) is STARTING[D.ARB]
    hf = starting_product(D.BETA_BLOCKER, patient(hfref=1, heart_failure=1))
    assert (hf.drug, hf.dose_mg) == ("bisoprolol", 1.25)
    bf = starting_product(D.ACE_INHIBITOR, patient(sex_female=1, age=31, breastfeeding=1))
    assert (bf.drug, bf.dose_mg) == ("enalapril", 5.0)


def test_the_document_orders_what_the_patient_should_start(scorer: Scorer,
                                                           explainer: Explainer) -> None:
    doc = assessment_document(assess(patient(egfr=50), scorer, explainer))
    arb = next(o for o in doc["options"] if o["id"] == "opt-start-arb")
    assert arb["order"]["dose_mg"] == 4.0
    assert "renal" in arb["order"]["note"]
    assert not any("order" in o for o in doc["options"] if o["action"] == "titrate")


def test_the_maximum_of_the_patients_own_drug() -> None:
    """Eplerenone 50 -> 100 mg is above its 50 mg maximum (the class representative,
    spironolactone, would allow it); a drug without a known maximum says it was not checked."""
    on_epl = patient({D.SPIRONOLACTONE: 1.0})
    on_epl = replace(on_epl, current_drugs={D.SPIRONOLACTONE: ("eplerenone", 50.0)})
    titrate = next(o for o in valid_options(on_epl.regimen)
                   if o.id == "opt-titrate-spironolactone")
    found = {f.code: f for f in option_findings(on_epl, titrate)}
    assert found["above-licensed-maximum"].severity is Severity.BLOCK
    odd = replace(patient({D.CCB: 1.0}), current_drugs={D.CCB: ("isradipine", 5.0)})
    titrate = next(o for o in valid_options(odd.regimen) if o.id == "opt-titrate-ccb")
    found = {f.code: f for f in option_findings(odd, titrate)}
    assert found["maximum-not-checked"].severity is Severity.WARN

"""What an order says: each class's starting product and dose, and the licensed maximum.

Issue 11 ("orders a pharmacist would sign"): a suggested order starts the class's
representative drug at the BNF starting dose for hypertension, as an orderable product (the
dm+d VMP of that strength, shared/research/clinical.md 6.5 [V]; an RxNorm SCD only where the
code was seen in a source: clinical.md 6.7 [V]); a titration never goes past the licensed
maximum daily dose. The doses are from the BNF/SmPC as recalled ([M]: a pharmacist checks
this table before release), except where the clinical review quoted the BNF (doxazosin 1 mg,
ramipril 1.25-2.5 mg, indapamide 2.5 mg maximum).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fhir_mappings.features import FeatureVector
from vocabulary.drug_classes import CLASS_INFO, DrugClass


@dataclass(frozen=True, slots=True)
class StartingProduct:
    """The product a start or an addition of a class is ordered as."""

    drug: str
    dose_mg: float
    dmd_vmp: str
    dmd_name: str
    rxnorm_scd: str | None
    rxnorm_name: str | None
    note: str = ""
    """For the prescriber (titration, monitoring): the order's note, never its dosage text."""
    patient_instruction: str = ""
    """For the patient (timing), the order's patientInstruction."""


STARTING: Final[dict[DrugClass, StartingProduct]] = {
    DrugClass.ACE_INHIBITOR: StartingProduct(
        "ramipril", 1.25, "318900007", "Ramipril 1.25mg capsules", None, None,
        "double the dose every 2-4 weeks as tolerated; creatinine and K+ 1-2 weeks after each "
        "change"),
    DrugClass.ARB: StartingProduct(
        "candesartan", 8.0, "318979007", "Candesartan 8mg tablets", None, None,
        "4 mg in renal or hepatic impairment or volume depletion"),
    DrugClass.CCB: StartingProduct(
        "amlodipine", 5.0, "319283006", "Amlodipine 5mg tablets", "197361",
        "Amlodipine 5 MG Oral Tablet"),
    DrugClass.THIAZIDE_LIKE: StartingProduct(
        "indapamide", 2.5, "317956008", "Indapamide 2.5mg tablets", None, None,
        "2.5 mg is also the maximum; Na+ and K+ within 4 weeks", "Take in the morning."),
    DrugClass.BETA_BLOCKER: StartingProduct(
        "bisoprolol", 5.0, "318590006", "Bisoprolol 5mg tablets", None, None),
    DrugClass.SPIRONOLACTONE: StartingProduct(
        "spironolactone", 25.0, "318056008", "Spironolactone 25mg tablets", "313096",
        "spironolactone 25 MG Oral Tablet",
        "Na+, K+ and renal function within 1 month (NICE NG136 1.4.50); 50 mg a day at most "
        "for resistant hypertension here (PATHWAY-2; MHRA 2016 with an ACEi or ARB)"),
    DrugClass.ALPHA_BLOCKER: StartingProduct(
        "doxazosin", 1.0, "318781001", "Doxazosin 1mg tablets", None, None,
        "first-dose postural hypotension", "Take the first dose at bedtime."),
}

#: Starting products for patients the standard start does not suit (SmPC 4.2 [M], dm+d VMPs
#: clinical.md 6.5 [V]): candesartan 4 mg in renal impairment or heart failure, bisoprolol
#: 1.25 mg in heart failure (the heart-failure titration), enalapril while breastfeeding
#: (NICE NG133 postnatal section names it).
CANDESARTAN_4 = StartingProduct(
    "candesartan", 4.0, "318978004", "Candesartan 4mg tablets", None, None,
    "4 mg start in renal impairment or heart failure (SmPC); creatinine and K+ in 1-2 weeks")
BISOPROLOL_HF = StartingProduct(
    "bisoprolol", 1.25, "318604001", "Bisoprolol 1.25mg tablets", None, None,
    "heart failure: 1.25 mg for a week, then increase stepwise to 10 mg as tolerated (SmPC)")
ENALAPRIL_5 = StartingProduct(
    "enalapril", 5.0, "318851002", "Enalapril 5mg tablets", None, None,
    "breastfeeding: enalapril is the ACE inhibitor NICE NG133 names; mother's creatinine and "
    "K+ after starting")


def starting_product(drug_class: DrugClass, p: FeatureVector) -> StartingProduct:
    """The product to order when starting ``drug_class`` for this patient."""
    egfr = p.get("egfr")
    heart_failure = p.flag("heart_failure") or p.flag("hfref")
    if drug_class is DrugClass.ARB and (heart_failure or (egfr is not None and egfr < 60)):
        return CANDESARTAN_4
    if drug_class is DrugClass.BETA_BLOCKER and heart_failure:
        return BISOPROLOL_HF
    if drug_class is DrugClass.ACE_INHIBITOR and p.flag("breastfeeding"):
        return ENALAPRIL_5
    return STARTING[drug_class]


#: Licensed maximum daily doses (mg) for hypertension of the drugs a patient may take
#: (BNF/SmPC as recalled [M]: a pharmacist checks this table before release). A titration of
#: a drug not listed says that its maximum was not checked.
MAX_DAILY_MG: Final[dict[str, float]] = {
    "lisinopril": 80.0, "enalapril": 40.0, "perindopril": 8.0, "ramipril": 10.0,
    "losartan": 100.0, "valsartan": 320.0, "irbesartan": 300.0, "olmesartan": 40.0,
    "telmisartan": 80.0, "candesartan": 32.0, "amlodipine": 10.0, "felodipine": 20.0,
    "lercanidipine": 20.0, "lacidipine": 6.0, "nifedipine": 90.0, "indapamide": 2.5,
    "atenolol": 100.0, "metoprolol": 400.0, "nebivolol": 5.0, "bisoprolol": 20.0,
    "spironolactone": 50.0, "eplerenone": 50.0, "doxazosin": 16.0,
}


def daily_mg(drug_class: DrugClass, multiple: float) -> float:
    """The daily dose of the class's representative drug at a dose multiple."""
    return CLASS_INFO[drug_class].standard_dose_mg * multiple

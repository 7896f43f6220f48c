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

from fhir_mappings.vocabulary import CLASS_INFO, DrugClass


@dataclass(frozen=True, slots=True)
class StartingProduct:
    """The product a start or an addition of a class is ordered as."""

    drug: str
    dose_mg: float
    dmd_vmp: str
    dmd_name: str
    rxnorm_scd: str | None
    rxnorm_name: str | None
    max_daily_mg: float
    note: str = ""


STARTING: Final[dict[DrugClass, StartingProduct]] = {
    DrugClass.ACE_INHIBITOR: StartingProduct(
        "ramipril", 1.25, "318900007", "Ramipril 1.25mg capsules", None, None, 10.0,
        "increase every 1-2 weeks as tolerated; check creatinine and K+ 1-2 weeks after each "
        "change"),
    DrugClass.ARB: StartingProduct(
        "candesartan", 8.0, "318979007", "Candesartan 8mg tablets", None, None, 32.0,
        "4 mg in renal or hepatic impairment or volume depletion"),
    DrugClass.CCB: StartingProduct(
        "amlodipine", 5.0, "319283006", "Amlodipine 5mg tablets", "197361",
        "Amlodipine 5 MG Oral Tablet", 10.0),
    DrugClass.THIAZIDE_LIKE: StartingProduct(
        "indapamide", 2.5, "317956008", "Indapamide 2.5mg tablets", None, None, 2.5,
        "2.5 mg is also the maximum; check Na+ and K+ within 4 weeks"),
    DrugClass.BETA_BLOCKER: StartingProduct(
        "bisoprolol", 5.0, "318590006", "Bisoprolol 5mg tablets", None, None, 20.0),
    DrugClass.SPIRONOLACTONE: StartingProduct(
        "spironolactone", 25.0, "318056008", "Spironolactone 25mg tablets", "313096",
        "spironolactone 25 MG Oral Tablet", 100.0,
        "check Na+, K+ and renal function within 1 month (NICE NG136 1.4.50)"),
    DrugClass.ALPHA_BLOCKER: StartingProduct(
        "doxazosin", 1.0, "318781001", "Doxazosin 1mg tablets", None, None, 16.0,
        "first-dose postural hypotension: take the first dose at bedtime"),
}


def daily_mg(drug_class: DrugClass, multiple: float) -> float:
    """The daily dose of the class's representative drug at a dose multiple."""
    return CLASS_INFO[drug_class].standard_dose_mg * multiple


def over_licensed_maximum(drug_class: DrugClass, multiple: float) -> float | None:
    """The daily dose in mg when ``multiple`` is above the licensed maximum, else None."""
    mg = daily_mg(drug_class, multiple)
    return mg if mg > STARTING[drug_class].max_daily_mg + 1e-9 else None

"""Shared vocabulary of the pipeline: antihypertensive drug classes and their doses.

Every later stage (models, service, evaluation) speaks in these ids, so they live at the far
left of the data flow (DESIGN.md section 2). The ids are part of the assessment document's
contract (DESIGN.md section 9) and may not be renamed without a version bump.

Dose is expressed as a multiple of the class's standard dose, the unit of Law et al.
BMJ 2003;326:1427 ("standard dose" = the usual maintenance dose in the BNF/SmPC); 0 means
the class is not taken. The representative drug of each class is the one used in labels and in
suggestions (NICE NG136 1.4.34-1.4.39 names indapamide as the preferred thiazide-like diuretic).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DrugClass(StrEnum):
    """Antihypertensive class ids (DESIGN.md section 9)."""

    ACE_INHIBITOR = "ace_inhibitor"
    ARB = "arb"
    CCB = "ccb"
    THIAZIDE_LIKE = "thiazide_like"
    BETA_BLOCKER = "beta_blocker"
    SPIRONOLACTONE = "spironolactone"
    ALPHA_BLOCKER = "alpha_blocker"


#: Canonical order of classes in feature vectors and dose matrices.
CLASS_ORDER: tuple[DrugClass, ...] = tuple(DrugClass)

#: The renin-angiotensin-system blockers that must never be combined (NICE NG136 1.4.34).
RAS_BLOCKERS: frozenset[DrugClass] = frozenset({DrugClass.ACE_INHIBITOR, DrugClass.ARB})

#: Dose multiples the model knows (half, standard, double the standard dose).
DOSE_LEVELS: tuple[float, ...] = (0.5, 1.0, 2.0)
MAX_DOSE: float = 2.0


@dataclass(frozen=True, slots=True)
class ClassInfo:
    """Human-facing description of a class: its name, representative drug and standard dose."""

    drug_class: DrugClass
    name: str
    short: str
    drug: str
    standard_dose_mg: float
    rxnorm_ingredient: str
    atc: str
    dmd_vmp: str
    """dm+d VMP (SNOMED CT UK drug extension) of the standard-dose product (clinical.md 6.5)."""
    dmd_vmp_name: str


CLASS_INFO: dict[DrugClass, ClassInfo] = {
    c.drug_class: c
    for c in (
        ClassInfo(DrugClass.ACE_INHIBITOR, "ACE inhibitor", "ACEi", "ramipril", 5.0, "35296",
                  "C09AA05", "318902004", "Ramipril 5mg capsules"),
        ClassInfo(DrugClass.ARB, "angiotensin-II receptor blocker", "ARB", "candesartan", 8.0,
                  "214354", "C09CA06", "318979007", "Candesartan 8mg tablets"),
        ClassInfo(DrugClass.CCB, "dihydropyridine calcium-channel blocker", "CCB", "amlodipine",
                  5.0, "17767", "C08CA01", "319283006", "Amlodipine 5mg tablets"),
        ClassInfo(DrugClass.THIAZIDE_LIKE, "thiazide-like diuretic", "thiazide-like",
                  "indapamide", 2.5, "5764", "C03BA11", "317956008",
                  "Indapamide 2.5mg tablets"),
        ClassInfo(DrugClass.BETA_BLOCKER, "beta-blocker", "beta-blocker", "bisoprolol", 5.0,
                  "19484", "C07AB07", "318590006", "Bisoprolol 5mg tablets"),
        ClassInfo(DrugClass.SPIRONOLACTONE, "mineralocorticoid-receptor antagonist",
                  "spironolactone", "spironolactone", 25.0, "9997", "C03DA01", "318056008",
                  "Spironolactone 25mg tablets"),
        ClassInfo(DrugClass.ALPHA_BLOCKER, "alpha-blocker", "alpha-blocker", "doxazosin", 4.0,
                  "49276", "C02CA04", "318783003", "Doxazosin 4mg tablets"),
    )
}


def class_names(classes: frozenset[DrugClass] | set[DrugClass], sep: str = " and ") -> str:
    """The classes' short names in class order ("ACEi and CCB")."""
    return sep.join(CLASS_INFO[c].short for c in CLASS_ORDER if c in classes)

"""Option labels that name the patient's own drug and dose ("Increase lisinopril from 10 to
20 mg a day", "Switch hydrochlorothiazide to amlodipine (CCB)").

The option catalogue (:mod:`models.options`) works in classes and dose multiples; a clinician
reads drugs and milligrams. When the record says which drug of a class the patient takes (and
at what daily dose), titrations and switches are labelled with it; new drugs are named by the
class's starting product (:mod:`models.prescribing`). Without that knowledge the catalogue's
label stands.
"""

from __future__ import annotations

from collections.abc import Mapping

from models.options import Action, TreatmentOption
from vocabulary.drug_classes import CLASS_INFO, CLASS_ORDER, DrugClass

CurrentDrugs = Mapping[DrugClass, tuple[str, float | None]]


def personal_label(o: TreatmentOption, drugs: CurrentDrugs) -> str:
    """The option's label with the patient's own drug and dose where the record has them."""
    if o.action is Action.TITRATE and len(o.started_set) == 0:
        (c,) = tuple(o.increased_set) or (None,)
        if c is None or c not in drugs:
            return o.label
        drug, daily = drugs[c]
        i = CLASS_ORDER.index(c)
        before, after = o.dose_before[i], o.dose_after[i]
        if daily is None or before <= 0:
            return f"Increase {drug} ({CLASS_INFO[c].short}; current dose unknown) to about " \
                   f"{after:g}x the standard dose"
        return (f"Increase {drug} ({CLASS_INFO[c].short}) from {daily:g} to "
                f"{daily * after / before:g} mg a day")
    if o.action is Action.SWITCH:
        old = next(iter(o.stopped_set), None)
        new = next(iter(o.started_set), None)
        if old is None or new is None or old not in drugs:
            return o.label
        drug, daily = drugs[old]
        dose = f" {daily:g} mg a day" if daily is not None else ""
        return (f"Switch {drug}{dose} to {CLASS_INFO[new].drug} "
                f"({CLASS_INFO[new].short})")
    return o.label

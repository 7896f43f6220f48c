"""Plain words for the clinician panel: numbers, doses, sources, and text from earlier stages
with every internal id (feature names such as ``sbp_home``, drug-class ids such as
``thiazide_like``, FHIR resource ids) replaced by the words a clinician reads.

:func:`plain` is applied to every free text the panel shows that another stage wrote (reasons,
data-quality warnings, provenance notes, finding messages): it is the panel's control against
ids reaching a clinician (hazard H-33).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from html import escape
from typing import Any, Final

from models.guideline.findings import Severity
from models.option_labels import CurrentDrugs
from vocabulary.drug_classes import CLASS_INFO, CLASS_ORDER, DrugClass
from vocabulary.feature_table import FEATURES_BY_NAME

MINUS: Final = "\u2212"


def e(v: Any) -> str:
    """HTML-escaped text (quotes too)."""
    return escape(str(v), quote=True)


def signed(x: float, digits: int = 1) -> str:
    """``+1.5`` / ``−2.0`` (a true minus sign, read as "minus" by screen readers)."""
    text = f"{x:+.{digits}f}"
    return MINUS + text[1:] if text.startswith("-") else text


def mmhg(x: float) -> str:
    return f"{signed(x)} mmHg"


def interval_words(lo: float, hi: float) -> str:
    return f"{signed(lo)} to {signed(hi)} mmHg"


def feature_label(name: str) -> str:
    """A feature's label ("home or ambulatory daytime systolic BP"); the name itself only for
    a name the feature table does not know (then made readable)."""
    spec = FEATURES_BY_NAME.get(name)
    return spec.label if spec is not None else name.replace("_", " ")


def _replaceable(name: str, label: str) -> bool:
    """An id to replace in free text: not a plain word that its own label repeats
    ("potassium" in "serum potassium" stays)."""
    return re.search(rf"\b{re.escape(name)}\b", label) is None


_ID_WORDS: Final[dict[str, str]] = {
    **{name: spec.label for name, spec in FEATURES_BY_NAME.items()
       if _replaceable(name, spec.label)},
    **{c.value: CLASS_INFO[c].name for c in DrugClass if "_" in c.value},
}
_ID_RE: Final = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _ID_WORDS), key=len,
                                                       reverse=True)) + r")\b")
_RESOURCE_WORDS: Final[dict[str, str]] = {
    "Observation": "an observation",
    "Condition": "a problem-list entry",
    "MedicationRequest": "a prescription",
    "MedicationStatement": "a medication statement",
    "AllergyIntolerance": "an allergy record",
    "Patient": "the patient record",
    "Encounter": "an encounter",
}
_REF_RE: Final = re.compile(r"\b(" + "|".join(_RESOURCE_WORDS) + r"|Medication|Procedure|"
                           r"DiagnosticReport|Bundle)/[A-Za-z0-9\-.]{1,64}")
_DOSE_RE: Final = re.compile(r"\b(\d+(?:\.\d+)?)x\b")


def _resource(m: re.Match[str]) -> str:
    return _RESOURCE_WORDS.get(m.group(1), "a record entry")


def plain(text: str) -> str:
    """Free text from an earlier stage with internal ids in words (not escaped)."""
    text = _REF_RE.sub(_resource, text)
    text = _ID_RE.sub(lambda m: _ID_WORDS[m.group(1)], text)
    return _DOSE_RE.sub(lambda m: f"{m.group(1)}\u00d7", text).replace(" -> ", " \u2192 ")


def source_words(ref: str | None) -> str:
    """What kind of record a value came from ("a prescription"), never its id."""
    if not ref:
        return "not in the record"
    return _RESOURCE_WORDS.get(ref.split("/", 1)[0], "a record entry")


def day_words(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def dose_multiple_words(x: float) -> str:
    if x == 1:
        return "standard dose"
    if x == 0.5:
        return "half the standard dose"
    if x == 2:
        return "twice the standard dose"
    return f"{x:g} times the standard dose"


def regimen_words(regimen: Mapping[DrugClass, float], drugs: CurrentDrugs) -> list[str]:
    """The current regimen, one drug a line: "ramipril 5 mg a day (ACE inhibitor)"."""
    out = []
    for c in CLASS_ORDER:
        if c not in regimen:
            continue
        info = CLASS_INFO[c]
        if c in drugs:
            drug, daily = drugs[c]
            dose = f"{daily:g} mg a day" if daily is not None else "dose not recorded"
            out.append(f"{drug} {dose} ({info.name})" if daily is not None
                       else f"{drug}, {dose} ({info.name})")
        else:
            out.append(f"{info.name} (drug not named in the record), "
                       f"{dose_multiple_words(regimen[c])}")
    return out


SEVERITY_WORDS: Final[dict[Severity, str]] = {
    Severity.INFO: "Note",
    Severity.WARN: "Caution",
    Severity.BLOCK: "Contraindicated",
}


def sex_words(sex_female: float | None) -> str | None:
    if sex_female is None:
        return None
    return "female" if sex_female == 1.0 else "male"

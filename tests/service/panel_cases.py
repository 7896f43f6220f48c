"""Assessments the panel tests render (an assessed FHIR patient, one with every group of
options, a pathway, a cannot-assess with missing and rejected data), and what a clinician
sees of a page: its visible text, the internal ids that must never be in it, its headings."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from html.parser import HTMLParser
from typing import Final

from fhir_mappings.features import FeatureVector, Provenance
from models.assessment import Assessment, assess
from models.explainer import Explainer
from models.guideline.profiles import NICE
from models.pipeline import Pipeline
from models.scorer import Scorer
from tests.factories import patient
from tests.service.conftest import example_request
from vocabulary.drug_classes import DrugClass

#: What a clinician must never read (issue 15 item 5): feature and class ids, option ids,
#: FHIR resource ids, dose multiples as "x1", the ONNX provider, the model's id, patient ids.
INTERNAL_IDS: Final = (
    re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b"),
    re.compile(r"\bopt-[a-z]"),
    re.compile(r"ExecutionProvider"),
    re.compile(r"\b(?:Observation|Condition|Medication(?:Request|Statement)?|"
               r"AllergyIntolerance|Patient)/"),
    re.compile(r"\b(?:egfr|hba1c|bmi|ckd|cvd|copd|hfref)\b"),
    re.compile(r"(?:\bx|\u00d7)\s?\d"),
    re.compile(r"\b\d+(?:\.\d+)?x\b"),
    re.compile(r"hypermarker-sbp-response"),
    re.compile(r"example-patient-1|pat-planted-7"),
    re.compile(r"the option itself|the current regimen"),
)

PLANTED_QUALITY: Final = ("Observation/bp-9: systolic 400 mmHg is implausible for sbp_clinic "
                          "and was not used.")


_BLOCKS: Final = frozenset({"p", "li", "dt", "dd", "td", "th", "tr", "caption", "summary",
                            "figcaption", "section", "header", "footer", "main", "ul", "dl",
                            "h1", "h2", "h3", "h4", "h5", "h6", "div", "title"})


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.headings: list[tuple[int, str]] = []
        self._skip = 0
        self._heading: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append(" ")
        if tag in ("style", "script"):
            self._skip += 1
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = int(tag[1])
            self.headings.append((self._heading, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append(" ")
        if tag in ("style", "script"):
            self._skip -= 1
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parts.append(data)
        if self._heading is not None:
            level, text = self.headings[-1]
            self.headings[-1] = (level, text + data)


def visible_text(page: str) -> str:
    p = _Text()
    p.feed(page)
    return re.sub(r"\s+", " ", "".join(p.parts)).strip()


def headings(page: str) -> list[tuple[int, str]]:
    p = _Text()
    p.feed(page)
    return p.headings


def internal_ids(page: str) -> list[str]:
    text = visible_text(page)
    return [m.group(0) for rx in INTERNAL_IDS for m in rx.finditer(text)]


def fhir_example(scorer: Scorer, explainer: Explainer) -> tuple[Assessment, FeatureVector]:
    """The README's patient (treated, with provenance from FHIR), every option explained."""
    req = example_request()
    fv = Pipeline(scorer, explainer, NICE).assess_fhir(
        req["prefetch"], patient_id=req["context"]["patientId"]).features
    return assess(fv, scorer, explainer), fv


def every_group(scorer: Scorer, explainer: Explainer) -> Assessment:
    """A patient on A + C + D with gout: options within the step, beyond it, not expected to
    lower BP and contraindicated."""
    fv = patient({DrugClass.ACE_INHIBITOR: 1.0, DrugClass.CCB: 1.0,
                  DrugClass.THIAZIDE_LIKE: 1.0}, gout=1)
    return assess(fv, scorer, explainer)


def pathway(scorer: Scorer, explainer: Explainer) -> Assessment:
    """Clinic BP 190/125 (asthma): the same-day referral pathway, no ranked options, each
    option still checked for an order (beta-blockers)."""
    return assess(patient(sbp_clinic=190, dbp_clinic=125, asthma=1), scorer, explainer)


def cannot_assess(scorer: Scorer, explainer: Explainer) -> Assessment:
    """The medication list unavailable, a rejected BP reading and an unknown home BP, each
    worded with internal ids by the earlier stages (planted here)."""
    fv = replace(patient(), unavailable={"medications": "the FHIR server answered 503"},
                 data_quality=(PLANTED_QUALITY,),
                 provenance=(Provenance("sbp_clinic", "Observation/bp-1", date(2026, 11, 4),
                                        "the only clinic reading; cur_ccb unknown"),
                             Provenance("sbp_home", None, None, "no sbp_home readings"),
                             Provenance("gout", None, None, "not recorded: taken as absent")))
    return assess(fv, scorer, explainer)

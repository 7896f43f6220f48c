"""The safety suite: every combination of the contraindicating conditions, crossed with the
lab thresholds the rules use, on each kind of current regimen.

Conditions (2^14 combinations) are crossed with the regimens; lab values cycle through a grid
that puts every threshold of the rules (and "unknown") in play: potassium, eGFR, sodium and
heart rate each at unknown, below, at and above their cut-offs; a second block crosses the whole
lab grid with age, sex and family origin.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from evaluation.cohort import AS_OF
from evaluation.decisions import Ranker
from fhir_mappings.features import FeatureVector
from models.assessment import ModelInfo, rank_options
from models.guideline.findings import Severity, max_severity
from models.guideline.profiles import GuidelineProfile
from models.guideline.safety import option_findings
from models.model_rows import assemble
from models.options import TreatmentOption, dose_matrices, valid_options
from models.scorer import Scorer
from vocabulary.drug_classes import DrugClass
from vocabulary.feature_table import PATIENT_FEATURES, Kind

CONDITIONS: tuple[str, ...] = (
    "pregnancy", "angioedema_history", "asthma", "copd", "gout", "heart_block",
    "orthostatic_hypotension", "aortic_stenosis", "lithium", "potassium_supplement",
    "non_dhp_ccb", "hfref", "nsaid", "ace_inhibitor_intolerance",
)
LAB_LEVELS: dict[str, tuple[float | None, ...]] = {
    "potassium": (None, 3.3, 4.5, 4.8, 5.0, 5.1, 6.0),
    "egfr": (None, 25.0, 30.0, 40.0, 80.0),
    "sodium": (None, 132.0, 135.0, 140.0),
    "heart_rate": (None, 55.0, 60.0, 72.0),
}
A, C, D = DrugClass.ACE_INHIBITOR, DrugClass.CCB, DrugClass.THIAZIDE_LIKE
REGIMENS: tuple[dict[DrugClass, float], ...] = (
    {}, {A: 1.0}, {C: 1.0}, {A: 1.0, C: 1.0}, {A: 1.0, C: 1.0, D: 1.0},
    {DrugClass.BETA_BLOCKER: 1.0, DrugClass.ARB: 1.0},
)
BASE: dict[str, float | None] = {
    "age": 60.0, "sex_female": 0.0, "ethnicity_black": 0.0, "ethnicity_south_asian": 0.0,
    "bmi": 28.0, "sbp_clinic": 158.0, "dbp_clinic": 92.0, "sbp_home": None, "egfr": 80.0,
    "potassium": 4.2, "sodium": 140.0, "urine_acr": 2.0, "hba1c": 40.0, "heart_rate": 72.0,
}


def _base() -> dict[str, float | None]:
    return {s.name: BASE.get(s.name, 0.0 if s.kind is Kind.BINARY else None)
            for s in PATIENT_FEATURES}


def _lab_grid() -> list[dict[str, float | None]]:
    names = list(LAB_LEVELS)
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*LAB_LEVELS.values())]


def matrix_patients() -> Iterator[FeatureVector]:
    labs = _lab_grid()
    i = 0
    for bits in itertools.product((0.0, 1.0), repeat=len(CONDITIONS)):
        for regimen in REGIMENS:
            values = _base()
            values.update(zip(CONDITIONS, bits, strict=True))
            values.update(labs[i % len(labs)])
            if values["pregnancy"] == 1.0:
                values["sex_female"], values["age"] = 1.0, 32.0
            if values["hfref"] == 1.0:
                values["heart_failure"] = 1.0
            i += 1
            yield FeatureVector(AS_OF, values, regimen, False, 30)
    for lab, age, sex, black in itertools.product(labs, (35.0, 60.0, 85.0), (0.0, 1.0),
                                                  (None, 0.0, 1.0)):
        for regimen in REGIMENS[:: 2]:
            values = _base()
            values.update(lab)
            values.update({"age": age, "sex_female": sex, "ethnicity_black": black})
            yield FeatureVector(AS_OF, values, regimen, False, 30)


def run_safety_matrix(scorer: Scorer, profile: GuidelineProfile, limit: int | None = None,
                      ranker: Ranker | None = None) -> dict[str, Any]:
    """Assess every matrix patient; count contraindicated-first and ranking violations
    (``ranker`` replaces :func:`rank_options`: tests plant a faulty one)."""
    rank = ranker or rank_options
    model = ModelInfo(scorer.manifest.model_id, scorer.manifest.version, scorer.provider)
    cache: dict[tuple[tuple[DrugClass, float], ...], tuple[TreatmentOption, ...]] = {}
    patients = list(itertools.islice(matrix_patients(), limit))
    blocks: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    n = 0
    for p in patients:
        key = tuple(sorted(p.regimen.items()))
        options = cache.get(key)
        if options is None:
            options = cache[key] = valid_options(p.regimen)
        before, after = dose_matrices(options)
        blocks.append(assemble(p.model_vector(), before, after))
        spans.append((n, n + len(options)))
        n += len(options)
    x = np.vstack(blocks)
    scores = scorer.score(x)
    counts = {"patients": len(patients), "patient_options": n, "contraindicated_first": 0,
              "blocked_option_ranked": 0, "blocked_option_in_guideline_default": 0,
              "no_safe_option": 0, "blocked_options": 0}
    for p, (s, e) in zip(patients, spans, strict=True):
        options = cache[tuple(sorted(p.regimen.items()))]
        a = rank(p, options, x[s:e], scores.take(slice(s, e)), model, profile)
        blocked = {o.id for o in options
                   if max_severity(option_findings(p, o)) is Severity.BLOCK}
        counts["blocked_options"] += len(blocked)
        if a.first is None:
            counts["no_safe_option"] += 1
        elif a.first.option.id in blocked:
            counts["contraindicated_first"] += 1
        counts["blocked_option_ranked"] += sum(
            1 for o in a.options if o.option.id in blocked and o.rank is not None)
        counts["blocked_option_in_guideline_default"] += len(blocked & set(a.guideline_default))
    return {"suite": "safety", "guideline": profile.name, "conditions": list(CONDITIONS),
            "lab_levels": {k: list(v) for k, v in LAB_LEVELS.items()}, **counts}

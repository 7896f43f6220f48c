"""Selectable guideline profiles: NICE NG136 (default) and ESC 2024."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fhir_mappings.features import FeatureVector
from models.guideline.esc import esc_preference, esc_target
from models.guideline.nice import Preference, nice_preference
from models.guideline.targets import Setting, Target, nice_target


def _nice_target(p: FeatureVector, setting: Setting) -> Target:
    age = p.get("age")
    return nice_target(age if age is not None else 0.0, p.flag("ckd"), p.get("urine_acr"),
                       setting)


@dataclass(frozen=True, slots=True)
class GuidelineProfile:
    """A guideline's target and preferred next step; the safety rules are shared."""

    name: str
    title: str
    target: Callable[[FeatureVector, Setting], Target]
    preference: Callable[[FeatureVector], Preference]
    tie_margin_mmhg: float = 3.0
    """Predicted differences in systolic BP fall smaller than this are ties, which go to the
    guideline's own choice (models/ranking.py). 3 mmHg: the smallest difference in
    systolic BP lowering that comparisons of antihypertensive regimens treat as a real one
    (equivalence margins of 3 mmHg systolic in drug-comparison analyses), well inside the
    model's own uncertainty for one patient; a difference of this size corresponds to about a
    6% relative difference in major cardiovascular events (about 10% per 5 mmHg, BPLTTC,
    Lancet 2021). A project choice, made a profile setting so that a site can review it.

    The expected-effect intervals do not widen the tie (issue 15, item 3): each is the range
    of the expected effect among patients like this one, mostly person-level variation that
    no choice can foresee, and two options' ranges for one patient are strongly correlated
    (the same person's responsiveness), so their overlap is not a test of the difference. What
    supports a difference is how often a predicted difference between two options of one
    patient has the sign of the true one; measured on 2,000 simulated patients (every pair of
    their options, ``bench/bench_driver_shares.py``): 93.3% of the pairs predicted to differ
    by 3 mmHg or more, against 64.6% below it. The margin is that support."""


NICE = GuidelineProfile("nice", "NICE NG136 (2019, updated 2023)", _nice_target,
                        nice_preference)
ESC = GuidelineProfile("esc", "ESC 2024", esc_target, esc_preference)
PROFILES: dict[str, GuidelineProfile] = {p.name: p for p in (NICE, ESC)}

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
    Lancet 2021). A project choice, made a profile setting so that a site can review it."""


NICE = GuidelineProfile("nice", "NICE NG136 (2019, updated 2023)", _nice_target,
                        nice_preference)
ESC = GuidelineProfile("esc", "ESC 2024", esc_target, esc_preference)
PROFILES: dict[str, GuidelineProfile] = {p.name: p for p in (NICE, ESC)}

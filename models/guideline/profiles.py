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


NICE = GuidelineProfile("nice", "NICE NG136 (2019, updated 2023)", _nice_target,
                        nice_preference)
ESC = GuidelineProfile("esc", "ESC 2024", esc_target, esc_preference)
PROFILES: dict[str, GuidelineProfile] = {p.name: p for p in (NICE, ESC)}

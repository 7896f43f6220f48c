"""Guideline-first ranking (DESIGN.md section 3): the guideline's step first, the model within it.

The options that are not contraindicated are ordered in tiers:

1. **in step**: what the active guideline permits at this patient's step (its preferred
   next classes or combinations, :func:`models.guideline.nice.preferred_options`) and raising a
   current drug towards its optimal dose (NICE NG136 asks for optimal or best-tolerated doses
   before each step-up);
2. **beyond the step**: every other option that lowers BP. It is ranked first only when no
   option of the step is left (each contraindicated or not expected to lower BP), and the
   assessment then says why;
3. options the model predicts will not lower systolic BP get no rank: they are not offered.

Within a tier the model's predicted fall orders the options, and a difference smaller than the
profile's margin (:attr:`models.guideline.profiles.GuidelineProfile.tie_margin_mmhg`) is a
tie that goes to the guideline: an option that is not the guideline's own choice (a dose
increase) must be predicted to lower systolic BP by the margin more than the guideline's
choice to come before it, and an option that needs a caution by the margin more than one
that does not. That is one sort key per option (the predicted change, plus the margin for each
of "not the guideline's choice" and "caution"), so the order is a total order, and a finding
added to one option can only move that option down.

:func:`guideline_order` is the whole ranking of one patient's options from the safety rules,
the guideline's step and the expected effects: :func:`models.assessment.rank_options` builds
the assessment on it, and the evaluation harness reads the order from it directly (without
building an assessment) for every simulated patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import NamedTuple

from fhir_mappings.features import FeatureVector
from models.guideline.findings import Finding, Severity, max_severity
from models.guideline.nice import Preference, preferred_options
from models.guideline.profiles import GuidelineProfile
from models.guideline.safety import catalogue_findings
from models.options import Action, TreatmentOption


class Tier(IntEnum):
    """Where an option stands against the guideline's step (lower ranks first)."""

    IN_STEP = 0
    BEYOND_STEP = 1


class Candidate(NamedTuple):
    """One option that is not contraindicated, as the ranking sees it (a tuple: the ranking
    makes one per option of every patient the harness ranks)."""

    row: int
    option_id: str
    sbp_change: float
    """Predicted 12-week change in clinic systolic BP (negative lowers)."""
    tier: Tier
    caution: bool
    guideline_choice: bool
    """One of the guideline's own preferred options for this step."""

    def key(self, margin: float) -> tuple[Tier, float, str]:
        """Sort key (module docstring): tier, then the predicted change handicapped by the
        margin for not being the guideline's choice and for a caution."""
        handicap = margin * (int(self.caution) + int(not self.guideline_choice))
        return (self.tier, self.sbp_change + handicap, self.option_id)


def lowers_bp(sbp_change: float) -> bool:
    """Whether an option is predicted to lower systolic BP at all (offered only then)."""
    return sbp_change < 0.0


def guideline_first(candidates: Sequence[Candidate], margin: float) -> list[Candidate]:
    """The ranked order of the ``candidates`` that lower BP (module docstring); those that do
    not are left out. When the step has no candidate, the options beyond it come first (the
    caller says why)."""
    return sorted((c for c in candidates if lowers_bp(c.sbp_change)),
                  key=lambda c: c.key(margin))


def optimises_dose(o: TreatmentOption) -> bool:
    """Raising a current drug's dose, nothing started or stopped: what NICE asks for before
    each step-up (optimal or best-tolerated doses), so it belongs to every step."""
    return o.action is Action.TITRATE and not o.started and not o.stopped


class GuidelineOrder(NamedTuple):
    """The guideline-first ranking of one patient's options and what it rests on."""

    findings: tuple[tuple[Finding, ...], ...]
    """Each option's safety findings, in catalogue order."""
    severity: list[Severity | None]
    """Each option's most severe finding (None: no finding)."""
    preference: Preference
    """The guideline's step for this patient."""
    preferred: frozenset[str]
    """Ids of the options that carry out the guideline's own choice at this step (any, even a
    contraindicated one)."""
    candidates: list[Candidate]
    """The options that are not contraindicated, in catalogue order."""
    ranked: list[Candidate]
    """The ranked order (:func:`guideline_first`): the candidates that lower BP."""


def guideline_order(p: FeatureVector, options: Sequence[TreatmentOption],
                    effect: Sequence[float], profile: GuidelineProfile) -> GuidelineOrder:
    """Rank one patient's ``options`` (a catalogue, :func:`models.options.valid_options`) on
    their expected effects ``effect`` (mmHg, in catalogue order): a contraindicated (BLOCK)
    option is no candidate; an option of the guideline's step (its own choice, or a dose
    increase) is in step, every other one beyond it; a caution (WARN) handicaps an option by
    the profile's margin (module docstring)."""
    findings = catalogue_findings(p, options)
    severity = [max_severity(f) for f in findings]
    pref = profile.preference(p)
    preferred = frozenset(preferred_options(pref, options))
    candidates = [Candidate(i, o.id, effect[i],
                            Tier.IN_STEP if o.id in preferred or optimises_dose(o)
                            else Tier.BEYOND_STEP,
                            severity[i] is Severity.WARN, o.id in preferred)
                  for i, o in enumerate(options) if severity[i] is not Severity.BLOCK]
    return GuidelineOrder(findings, severity, pref, preferred, candidates,
                          guideline_first(candidates, profile.tie_margin_mmhg))

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
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import NamedTuple


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

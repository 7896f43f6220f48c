"""The two uncertainties and the chance of reaching target, in words a clinician can read.

DESIGN.md section 3 names two uncertainties that must never be confused:

* the **expected effect** of an option for a patient like this one (``effect_interval`` at
  ``effect_coverage``): what the ranking compares and what every renderer shows as the
  option's effect;
* the range of **one clinic reading** at 12 weeks (``interval`` at ``interval_coverage``):
  how far a single reading may fall from it (measurement noise, visit-to-visit variation,
  regression to the mean of the high reading the decision is made on). Shown, where shown at
  all, only under that name, never as the drug's effect.

``p_target`` is the chance that one 12-week clinic *systolic* reading is below the target's
systolic value (the model predicts systolic BP only). It is shown only where it answers a
question (:func:`p_target_meaningful`): the option is offered (ranked), and the clinic
systolic BP the assessment read is at or above the target's systolic value. When the reading
is already below it, "reaching target" is not what the option is for (the option may be
ranked for a diastolic above target, or for a patient ordered a drug at target), and a high
chance (e.g. 89% for spironolactone at 96/60) reads as a reason to give it. Options not
ranked (contraindicated, not expected to lower BP, a pathway's checks) are not offered, so a
chance for them means nothing.

Every renderer (cards, text, FHIR output, panel) uses these functions, so the words and the
rule are the same everywhere.
"""

from __future__ import annotations

from models.guideline.targets import Target


def _mmhg(v: float) -> str:
    return f"{v:+.0f}" if abs(v) >= 0.5 else "0"


def _tenth(v: float) -> str:
    """A signed value to one decimal; a value that rounds to zero is "0.0" (not "-0.0")."""
    return "0.0" if round(v, 1) == 0 else f"{v:+.1f}"


def effect_words(effect: float, interval: tuple[float, float], coverage: float) -> str:
    """The expected effect and its interval: "expected effect -9.1 mmHg (80%: -13.2 to
    -5.0) for a patient like this"."""
    lo, hi = interval
    return (f"expected effect {_tenth(effect)} mmHg ({coverage:.0%} range for a patient like "
            f"this: {_tenth(lo)} to {_tenth(hi)})")


def effect_short(effect: float, interval: tuple[float, float], coverage: float) -> str:
    """The expected effect in a table cell: "-9.1 (80%: -13.2 to -5.0)"."""
    lo, hi = interval
    return f"{_tenth(effect)} ({coverage:.0%}: {_tenth(lo)} to {_tenth(hi)})"


def reading_words(interval: tuple[float, float], coverage: float) -> str:
    """The single-reading range, labelled as such: "one clinic reading at 12 weeks: 80%
    between -30 and +10 mmHg of the reading the decision was made on"."""
    lo, hi = interval
    return (f"one clinic reading at 12 weeks: {coverage:.0%} between {_mmhg(lo)} and "
            f"{_mmhg(hi)} mmHg from today's reading")


def p_target_meaningful(ranked: bool, clinic_systolic: float | None,
                        target: Target | None) -> bool:
    """Whether the chance of a reading below target is shown for an option (module
    docstring): the option is ranked and the clinic systolic BP is at or above the target's
    systolic value."""
    return (ranked and target is not None and clinic_systolic is not None
            and clinic_systolic >= target.systolic)


def p_target_words(p: float, target: Target) -> str:
    """What ``p_target`` is: "chance that one clinic systolic reading at 12 weeks is below
    140 mmHg: 34%"."""
    return (f"chance that one clinic systolic reading at 12 weeks is below "
            f"{target.systolic:.0f} mmHg: {p:.0%}")


P_TARGET_COLUMN = "chance one 12-wk clinic systolic reading is below target"
"""The column heading of ``p_target`` in a table."""

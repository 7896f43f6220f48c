"""Per-subgroup estimates with confidence intervals, for the gates that hold "in every
subgroup" (evaluation/plan.toml): calibration slope, calibration-in-the-large and interval
coverage of the predicted 12-week systolic change, overall (``all``) and in each subgroup of
:func:`evaluation.cohort.subgroups` (``age_band:80+``, ``ethnicity:black``, ...).

Rows are (patient, option) pairs, each with its own simulated observed outcome; the subgroups
are properties of the patient, so every interval resamples patients with all their rows
(:mod:`evaluation.bootstrap`). A subgroup with no patient is left out; one with few patients
is reported with its ``n`` and a wide interval, and the plan's ``min_n`` decides whether it can
be judged.

To add a metric (for example the coverage of another interval), compute its per-patient
numerator and denominator and declare it in :func:`subgroup_estimates` the same way; a plan
check then reads it with ``each = true`` and a ``bound``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from evaluation.bootstrap import METHOD, Batch, Bootstrap, Estimate, patient_sums
from evaluation.cohort import CaseSet, subgroups

F64 = npt.NDArray[np.float64]


def patient_masks(cases: CaseSet) -> dict[str, npt.NDArray[np.bool_]]:
    """``all`` and ``variable:level`` -> a mask over the patients (in row-group order) of the
    non-empty subgroups."""
    starts = cases.rows.group_starts()
    out: dict[str, npt.NDArray[np.bool_]] = {"all": np.ones(len(starts), dtype=np.bool_)}
    for var, levels in subgroups(cases).items():
        for level, rows in levels.items():
            mask = np.asarray(rows, dtype=np.bool_)[starts]
            if mask.any():
                out[f"{var}:{level}"] = mask
    return out


def subgroup_estimates(cases: CaseSet, predicted: F64, observed: F64, lower: F64,
                       upper: F64, boot: Bootstrap | None = None,
                       effect: tuple[F64, F64, F64] | None = None) -> dict[str, Any]:
    """``{"calibration_slope": {member: estimate}, "calibration_in_the_large": ...,
    "interval_coverage": ...}`` (estimates as dicts, see :class:`evaluation.bootstrap.Estimate`),
    with the method and what each metric is. ``effect`` = (effect_lower, effect_upper, the
    person's expected change) adds ``effect_interval_coverage``: the effect interval's coverage
    of the simulated truth."""
    starts = cases.rows.group_starts()
    n_rows = len(cases.rows)
    x = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(observed, dtype=np.float64)
    covered = ((y >= lower) & (y <= upper)).astype(np.float64)
    per = {name: patient_sums(v, starts, n_rows) for name, v in (
        ("count", np.ones(n_rows)), ("sx", x), ("sy", y), ("sxx", x * x), ("sxy", x * y),
        ("covered", covered), ("residual", y - x))}
    if effect is not None:
        e_lo, e_hi, truth = (np.asarray(v, dtype=np.float64) for v in effect)
        per["effect_covered"] = patient_sums(
            ((truth >= e_lo) & (truth <= e_hi)).astype(np.float64), starts, n_rows)
    boot = boot or Bootstrap(len(starts))
    batch = Batch(boot)
    masks = patient_masks(cases)
    for member, m in masks.items():
        w = m.astype(np.float64)
        batch.slope(f"calibration_slope/{member}", per["count"] * w, per["sx"] * w,
                    per["sy"] * w, per["sxx"] * w, per["sxy"] * w)
        batch.ratio(f"calibration_in_the_large/{member}", per["residual"] * w,
                    per["count"] * w)
        batch.ratio(f"interval_coverage/{member}", per["covered"] * w, per["count"] * w)
        if effect is not None:
            batch.ratio(f"effect_interval_coverage/{member}", per["effect_covered"] * w,
                        per["count"] * w)
    found = batch.run()
    out: dict[str, Any] = {
        "method": METHOD,
        "unit": "patient (all of a patient's option rows resampled together)",
        "definitions": {
            "calibration_slope": "least-squares slope of the observed on the predicted 12-week "
                                 "systolic change over every (patient, option) row",
            "calibration_in_the_large": "mean observed minus predicted change (mmHg)",
            "interval_coverage": "share of rows whose observed change lies in the shown "
                                 "interval",
            "effect_interval_coverage": "share of rows whose expected change (simulated "
                                        "person-level truth) lies in the effect interval",
        },
    }
    metrics = ("calibration_slope", "calibration_in_the_large", "interval_coverage",
               *(("effect_interval_coverage",) if effect is not None else ()))
    for metric in metrics:
        out[metric] = {member: _dict(found[f"{metric}/{member}"]) for member in masks}
    return out


def _dict(e: Estimate) -> dict[str, Any]:
    return e.to_dict()

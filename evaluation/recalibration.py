"""Recalibrating the model's intervals from a site's own outcomes: split conformal by subgroup.

The model ships two 80% intervals (:class:`models.scorer.ScoreBatch`), both calibrated on the
simulated internal site: the *reading interval* (``lower``/``upper``) for one observed 12-week
change in the recorded clinic SBP, and the *effect interval* (``effect_lower``/
``effect_upper``) for the expected change of a patient like this one. At another site the
readings, the adherence or the case-mix differ and the coverage drifts (issue 14: 0.72-0.73 at
the simulated external site in every subgroup). A site can recalibrate from its own
(predicted interval, observed outcome, subgroup) pairs:

1. **Pairs.** For each assessed option that was taken and followed up: the interval the model
   gave, the outcome it was meant to cover (for the reading interval, the 12-week recorded
   clinic SBP minus the reading the decision was made on; for the effect interval only a
   simulation knows the expected change), and the patient's subgroups (sex, age band, family
   origin, as :func:`evaluation.cohort.subgroups` defines them).
2. **Hold out.** Fit on one part of the site's pairs (by patient), check on the other.
3. **Fit** (:func:`fit_recalibration`): within each cell of the subgroup variables crossed
   (e.g. female x 60-79 x Black), the nonconformity score of a pair is
   ``max(lower - y, y - upper)`` (negative inside the interval), and the cell's adjustment is
   the split-conformal quantile of its scores at ``ceil((n + 1) x nominal) / n`` (Romano et al.
   2019; Mondrian/"group-conditional" conformal, Vovk 2005). The recalibrated interval is
   ``[lower - q_cell, upper + q_cell]``: wider where the site's outcomes fell outside more often
   than nominal, narrower (``q_cell < 0``) where they fell inside more often. Because every
   cell is calibrated, every subgroup of the crossed variables (a union of cells) is too.
   Cells with fewer than ``min_pairs`` pairs are pooled into one remainder cell (and that, if
   still too small, uses the site-wide adjustment).
4. **Apply** (:meth:`Recalibration.apply`) to new scores of the same site, and re-check with
   the site's next outcomes; :func:`recommend_recalibration` reads the monitoring job's
   realised coverage and says when to do this again.

Exchangeability is the guarantee's assumption: the pairs must come from the population and
practice the adjusted intervals will be used in. Rows of one patient (several options) share
the decision reading, so coverage checks count patients, not rows, when judging sample size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.stats import binomtest

F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
Groups = Mapping[str, Mapping[str, Bool]]

#: The subgroup variables recalibrated by default (evaluation/cohort.py's definitions).
VARIABLES: Final[tuple[str, ...]] = ("sex", "age_band", "ethnicity")
#: Fewest pairs for a cell to get its own adjustment.
MIN_PAIRS: Final[int] = 200
#: Coverage within this many points of nominal counts as calibrated (the project's goal).
TOLERANCE: Final[float] = 0.02
REMAINDER: Final[str] = "(pooled small cells)"


def conformal_quantile(scores: F64, nominal: float) -> float:
    """The split-conformal quantile of nonconformity ``scores`` for coverage ``nominal``: the
    ``ceil((n + 1) x nominal)``-th smallest score (the largest when that exceeds n)."""
    n = len(scores)
    if n == 0:
        raise ValueError("no scores")
    k = min(math.ceil((n + 1) * nominal), n)
    return float(np.partition(np.asarray(scores, dtype=np.float64), k - 1)[k - 1])


def nonconformity(lower: F64, upper: F64, observed: F64) -> F64:
    """``max(lower - y, y - upper)``: how far outside the interval (negative = inside)."""
    out: F64 = np.maximum(np.asarray(lower) - observed, observed - np.asarray(upper))
    return out


def cells(groups: Groups, variables: Sequence[str] = VARIABLES) -> npt.NDArray[np.str_]:
    """The crossed cell label of every row (``"sex=female|age_band=60-79|..."``); a row in no
    level of a variable gets ``variable=?``."""
    n = len(next(iter(groups[variables[0]].values())))
    labels = np.full(n, "", dtype=object)
    for k, var in enumerate(variables):
        part = np.full(n, f"{var}=?", dtype=object)
        for level, mask in groups[var].items():
            part[np.asarray(mask, dtype=bool)] = f"{var}={level}"
        labels = part if k == 0 else labels + "|" + part
    out: npt.NDArray[np.str_] = labels.astype(str)
    return out


@dataclass(frozen=True)
class Recalibration:
    """Per-cell additive adjustments (mmHg) of an interval, fitted on a site's pairs."""

    nominal: float
    variables: tuple[str, ...]
    adjustments: Mapping[str, float]
    """Cell label -> adjustment q (the interval becomes [lower - q, upper + q])."""
    pairs: Mapping[str, int]
    """Cell label -> number of fitting pairs (cells pooled into the remainder included)."""
    remainder: float
    """Adjustment of the pooled small cells, and of any cell not seen when fitting."""
    overall: float
    """The single site-wide adjustment (for reference)."""
    coverage_before: Mapping[str, float] = field(default_factory=dict)
    """Cell label -> coverage of the unadjusted interval among the fitting pairs."""

    def adjustment(self, groups: Groups) -> F64:
        """The adjustment of every row of ``groups``."""
        labels = cells(groups, self.variables)
        out: F64 = np.array([self.adjustments.get(c, self.remainder) for c in labels],
                            dtype=np.float64)
        return out

    def apply(self, lower: F64, upper: F64, groups: Groups) -> tuple[F64, F64]:
        """The recalibrated interval of each row; never inverted (lower <= upper)."""
        q = self.adjustment(groups)
        lo = np.asarray(lower, dtype=np.float64) - q
        hi = np.asarray(upper, dtype=np.float64) + q
        mid = (lo + hi) / 2.0
        inverted = lo > hi
        return np.where(inverted, mid, lo), np.where(inverted, mid, hi)

    def to_json(self) -> dict[str, Any]:
        return {"method": "split conformal by subgroup cell (Mondrian)",
                "nominal": self.nominal, "variables": list(self.variables),
                "adjustments": dict(self.adjustments), "pairs": dict(self.pairs),
                "remainder": self.remainder, "overall": self.overall,
                "coverage_before": dict(self.coverage_before)}


def fit_recalibration(lower: F64, upper: F64, observed: F64, groups: Groups,
                      nominal: float = 0.80, variables: Sequence[str] = VARIABLES,
                      min_pairs: int = MIN_PAIRS) -> Recalibration:
    """Fit per-cell adjustments from a site's (interval, outcome, subgroup) pairs (see the
    module docstring)."""
    if not 0.0 < nominal < 1.0:
        raise ValueError("nominal must be in (0, 1)")
    observed = np.asarray(observed, dtype=np.float64)
    if not len(observed) == len(lower) == len(upper):
        raise ValueError("lower, upper and observed must have the same length")
    scores = nonconformity(np.asarray(lower, dtype=np.float64),
                           np.asarray(upper, dtype=np.float64), observed)
    labels = cells(groups, tuple(variables))
    overall = conformal_quantile(scores, nominal)
    adjustments: dict[str, float] = {}
    pairs: dict[str, int] = {}
    before: dict[str, float] = {}
    small = np.zeros(len(scores), dtype=bool)
    for label in np.unique(labels):
        mask = labels == label
        n = int(mask.sum())
        pairs[str(label)] = n
        before[str(label)] = float(np.mean(scores[mask] <= 0.0))
        if n >= min_pairs:
            adjustments[str(label)] = conformal_quantile(scores[mask], nominal)
        else:
            small |= mask
    remainder = (conformal_quantile(scores[small], nominal) if small.sum() >= min_pairs
                 else overall)
    return Recalibration(nominal, tuple(variables), adjustments, pairs, remainder, overall,
                         before)


def coverage_by_subgroup(lower: F64, upper: F64, observed: F64, groups: Groups,
                         patient: npt.NDArray[np.intp] | None = None,
                         variables: Sequence[str] = VARIABLES) -> dict[str, dict[str, Any]]:
    """Coverage of ``observed`` by ``[lower, upper]`` in every level of each variable, with the
    number of rows and (when ``patient`` ids are given) of patients."""
    inside = (observed >= lower) & (observed <= upper)
    out: dict[str, dict[str, Any]] = {}
    for var in variables:
        levels: dict[str, Any] = {}
        for level, mask in groups[var].items():
            m = np.asarray(mask, dtype=bool)
            n = int(m.sum())
            if n == 0:
                continue
            levels[level] = {"coverage": float(inside[m].mean()), "n_rows": n,
                             "n_patients": (len(np.unique(patient[m]))
                                            if patient is not None else None)}
        out[var] = levels
    return out


def worst_gap(table: Mapping[str, Mapping[str, Mapping[str, Any]]], nominal: float,
              min_patients: int = 0) -> dict[str, Any]:
    """The subgroup level farthest from nominal among those with at least ``min_patients``
    patients (or rows, where patients are not counted)."""
    worst: dict[str, Any] = {"gap": 0.0, "variable": None, "level": None, "coverage": None}
    for var, levels in table.items():
        for level, row in levels.items():
            size = row["n_patients"] if row.get("n_patients") is not None else row["n_rows"]
            if size < min_patients:
                continue
            gap = abs(float(row["coverage"]) - nominal)
            if worst["variable"] is None or gap > worst["gap"]:
                worst = {"gap": gap, "variable": var, "level": level,
                         "coverage": float(row["coverage"])}
    return worst


def recommend_recalibration(calibration: Mapping[str, Any], tolerance: float = TOLERANCE,
                            min_pairs: int = MIN_PAIRS) -> dict[str, Any]:
    """Whether the monitoring job should recommend recalibrating the reading interval, from its
    realised-calibration section (:func:`evaluation.monitor.calibration`: ``n``, ``coverage``,
    ``coverage_ci99``, ``nominal_coverage``).

    ``recommended`` is True when the 99% interval of the realised coverage lies wholly outside
    nominal +- ``tolerance`` (the intervals are too narrow or too wide), False when it does
    not, and None (cannot judge) with fewer than ``min_pairs`` outcomes or no interval.
    """
    n = int(calibration.get("n") or 0)
    nominal = calibration.get("nominal_coverage")
    ci = calibration.get("coverage_ci99")
    coverage = calibration.get("coverage")
    how = ("evaluation.recalibration.fit_recalibration on the site's own (interval, observed "
           "change, subgroup) pairs: split conformal by sex x age band x ethnicity; fit on "
           "half the patients, check coverage on the other half")
    base: dict[str, Any] = {"recommended": None, "tolerance": tolerance, "n": n,
                            "coverage": coverage, "nominal": nominal, "how": how}
    if nominal is None or coverage is None or n < min_pairs:
        return {**base, "reason": f"cannot judge: {n} followed-up outcomes (need {min_pairs})"}
    if ci is None:
        ci = _wilson99(round(float(coverage) * n), n)
    low, high = float(ci[0]), float(ci[1])
    if high < nominal - tolerance:
        return {**base, "recommended": True, "reason": (
            f"realised coverage {coverage:.3f} (99% CI {low:.3f}-{high:.3f}) is below "
            f"{nominal:.2f} - {tolerance:.2f}: the intervals are too narrow at this site")}
    if low > nominal + tolerance:
        return {**base, "recommended": True, "reason": (
            f"realised coverage {coverage:.3f} (99% CI {low:.3f}-{high:.3f}) is above "
            f"{nominal:.2f} + {tolerance:.2f}: the intervals are wider than they need be")}
    return {**base, "recommended": False, "reason": (
        f"realised coverage {coverage:.3f} (99% CI {low:.3f}-{high:.3f}) is compatible with "
        f"{nominal:.2f} +- {tolerance:.2f}")}


def _wilson99(covered: int, n: int) -> tuple[float, float]:
    ci = binomtest(covered, n).proportion_ci(confidence_level=0.99, method="wilson")
    return float(ci.low), float(ci.high)

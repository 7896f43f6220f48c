"""The metrics of the treatment-response model, one module for training and evaluation.

Training writes its held-out figures into the manifest and the model card with the
``heldout_*`` functions (:mod:`models.training.train`); ``hypermarker evaluate`` and the
monitoring job report with the others (:mod:`evaluation.suites`, :mod:`evaluation.monitor`).
Both are built on the same primitives (:func:`mae`, :func:`brier`, :func:`coverage_and_width`)
so a figure has one definition and one name in the code, whatever the report's key.

Two held-out figures keep the arithmetic they were published with, so that a re-run of
``hypermarker train`` reproduces the committed manifest to the bit (``train.compare_with``):
the manifest's calibration slope and intercept are :func:`numpy.polyfit`'s least-squares fit
(the same estimator as :func:`linear_calibration`, which differs in the last digits), and its
AUROC is scikit-learn's trapezoidal one (equal to :func:`auroc`'s Mann-Whitney form up to
rounding). Moving them onto the evaluation forms changes the manifest's last digits and so
waits for the next retrain.

Definitions (all on arrays of (patient, option) rows unless said otherwise):

* Calibration of a continuous prediction: ``observed = intercept + slope * predicted`` by
  ordinary least squares (ideal: slope 1, intercept 0); calibration-in-the-large is
  ``mean(observed - predicted)`` (ideal 0, mmHg).
* Calibration of a probability: logistic recalibration ``logit P(y) = a + b * logit(p)``
  (ideal b = 1, a = 0) fitted by Newton's method; calibration-in-the-large is
  ``mean(y) - mean(p)``.
* Baselines: the population-mean predictor (the mean observed change of the rows evaluated,
  which flatters the baseline) for the systolic change, the prevalence for target attainment
  (Brier), AUROC 0.5.
* Captured fraction of a decision: ``(random - model) / (random - best)`` in mean true
  systolic change, where ``random`` is a uniformly random safe option; 1 means the model
  always chose the truly best safe option, 0 means no better than chance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

#: Fewest rows for a subgroup to enter the largest-gap comparison.
MIN_SUBGROUP_ROWS = 200


def _f(x: float | np.floating[Any]) -> float:
    return float(x)


def mae(pred: F64, reference: F64) -> float:
    """Mean absolute error of ``pred`` against ``reference`` (observed or true change)."""
    return _f(np.mean(np.abs(reference - pred)))


def brier(p: F64, y: Bool | F64) -> float:
    """Mean squared error of a probability against the 0/1 outcome."""
    return _f(np.mean((p - np.asarray(y, dtype=np.float64)) ** 2))


def coverage_and_width(lower: F64, upper: F64, observed: F64) -> tuple[float, float]:
    """Share of ``observed`` inside ``[lower, upper]`` and the mean interval width (NaN for
    no rows)."""
    inside = (observed >= lower) & (observed <= upper)
    if not len(inside):
        return float("nan"), float("nan")
    return _f(np.mean(inside)), _f(np.mean(upper - lower))


def linear_calibration(pred: F64, observed: F64) -> dict[str, float]:
    """Slope and intercept of observed on predicted (least squares), calibration-in-the-large."""
    pred = np.asarray(pred, dtype=np.float64)
    observed = np.asarray(observed, dtype=np.float64)
    var = float(np.var(pred))
    if len(pred) < 2 or var == 0.0:
        slope, intercept = float("nan"), float("nan")
    else:
        slope = float(np.mean((pred - pred.mean()) * (observed - observed.mean())) / var)
        intercept = float(observed.mean() - slope * pred.mean())
    return {"slope": slope, "intercept": intercept,
            "in_the_large": _f(np.mean(observed - pred))}


def calibration_curve(pred: F64, observed: F64, bins: int = 10) -> dict[str, list[float]]:
    """Mean predicted vs mean observed in quantile bins of the prediction."""
    if len(pred) == 0:
        return {"predicted": [], "observed": [], "n": []}
    order = np.argsort(pred, kind="stable")
    parts = [p for p in np.array_split(order, min(bins, len(pred))) if len(p)]
    return {"predicted": [_f(np.mean(pred[p])) for p in parts],
            "observed": [_f(np.mean(observed[p])) for p in parts],
            "n": [float(len(p)) for p in parts]}


def regression_metrics(pred: F64, observed: F64, truth: F64 | None = None) -> dict[str, Any]:
    """MAE against the observed (noisy) and the true change, calibration, and the
    population-mean baseline with the model's skill ``1 - MAE / MAE_baseline``."""
    error = mae(pred, observed)
    baseline = _f(np.mean(np.abs(observed - np.mean(observed))))
    out: dict[str, Any] = {
        "n": len(pred),
        "mae_observed": error,
        "calibration": linear_calibration(pred, observed),
        "baseline_population_mean": {"mae_observed": baseline},
        "mae_skill_vs_population_mean": (1.0 - error / baseline if baseline > 0
                                         else float("nan")),
        "curve": calibration_curve(pred, observed),
    }
    if truth is not None:
        out["mae_true"] = mae(pred, truth)
        out["baseline_population_mean"]["mae_true"] = _f(np.mean(np.abs(truth - np.mean(truth))))
    return out


def interval_coverage(lower: F64, upper: F64, observed: F64, nominal: float) -> dict[str, float]:
    """Interval coverage beside its nominal level, the shortfall and the mean width."""
    cov, width = coverage_and_width(lower, upper, observed)
    return {"coverage": cov, "nominal": nominal, "shortfall": nominal - cov,
            "mean_width": width}


def auroc(p: F64, y: Bool) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN with one class."""
    y = np.asarray(y, dtype=bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = np.asarray(rankdata(p), dtype=np.float64)  # average ranks over ties
    return (float(ranks[y].sum()) - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def logistic_calibration(p: F64, y: Bool, iterations: int = 25) -> dict[str, float]:
    """Fit ``logit P(y) = a + b logit(p)`` by Newton's method; returns slope b, intercept a."""
    eps = 1e-6
    x = np.log(np.clip(p, eps, 1 - eps) / (1 - np.clip(p, eps, 1 - eps)))
    yy = np.asarray(y, dtype=np.float64)
    if len(x) < 2 or yy.min() == yy.max():
        return {"slope": float("nan"), "intercept": float("nan")}
    X = np.column_stack([np.ones_like(x), x])
    beta = np.array([0.0, 1.0])
    for _ in range(iterations):
        mu = 1.0 / (1.0 + np.exp(-(X @ beta)))
        w = np.clip(mu * (1 - mu), 1e-9, None)
        grad = X.T @ (yy - mu)
        hess = (X * w[:, None]).T @ X
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        beta = beta + step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return {"slope": float(beta[1]), "intercept": float(beta[0])}


def binary_metrics(p: F64, y: Bool) -> dict[str, Any]:
    """Discrimination and calibration of a probability, beside the prevalence baseline."""
    yy = np.asarray(y, dtype=np.float64)
    rate = _f(np.mean(yy)) if len(yy) else float("nan")
    score = brier(p, yy) if len(yy) else float("nan")
    base_brier = _f(np.mean((rate - yy) ** 2)) if len(yy) else float("nan")
    cal = logistic_calibration(p, y)
    return {
        "n": len(yy),
        "auroc": auroc(p, y),
        "brier": score,
        "observed_rate": rate,
        "mean_predicted": _f(np.mean(p)) if len(yy) else float("nan"),
        "calibration": {**cal, "in_the_large": rate - _f(np.mean(p)) if len(yy) else 0.0},
        "baseline_prevalence": {"auroc": 0.5, "brier": base_brier},
        "brier_skill_vs_prevalence": 1.0 - score / base_brier if base_brier > 0
        else float("nan"),
        "curve": calibration_curve(p, yy),
    }


def subgroup_table(groups: Mapping[str, Mapping[str, Bool]], pred: F64, observed: F64,
                   truth: F64, lower: F64, upper: F64, p: F64, y: Bool,
                   min_rows: int = MIN_SUBGROUP_ROWS) -> dict[str, Any]:
    """Per subgroup (variable -> level -> row mask): MAE, calibration slope and
    calibration-in-the-large, interval
    coverage, AUROC and Brier of target attainment; for each variable and metric the largest
    gap between levels with at least ``min_rows`` rows, and the overall largest gap."""
    metrics = ("mae_true", "mae_observed", "calibration_slope", "calibration_in_the_large",
               "coverage", "auroc", "brier")
    table: dict[str, Any] = {}
    largest: dict[str, dict[str, Any]] = {}
    for var, levels in groups.items():
        rows: dict[str, dict[str, float]] = {}
        for level, mask in levels.items():
            n = int(mask.sum())
            if n == 0:
                continue
            yy = y[mask].astype(np.float64)
            rows[level] = {
                "n": float(n),
                "mae_true": mae(pred[mask], truth[mask]),
                "mae_observed": mae(pred[mask], observed[mask]),
                "calibration_slope": linear_calibration(pred[mask], observed[mask])["slope"],
                "calibration_in_the_large": _f(np.mean(observed[mask] - pred[mask])),
                "coverage": _f(np.mean((observed[mask] >= lower[mask])
                                       & (observed[mask] <= upper[mask]))),
                "auroc": auroc(p[mask], y[mask]),
                "brier": brier(p[mask], yy),
            }
        gaps: dict[str, dict[str, Any]] = {}
        for m in metrics:
            vals = {lv: r[m] for lv, r in rows.items()
                    if r["n"] >= min_rows and not np.isnan(r[m])}
            if len(vals) < 2:
                continue
            hi = max(vals, key=lambda k: vals[k])
            lo = min(vals, key=lambda k: vals[k])
            gaps[m] = {"gap": vals[hi] - vals[lo], "highest": hi, "lowest": lo}
            if m not in largest or gaps[m]["gap"] > largest[m]["gap"]:
                largest[m] = {"variable": var, **gaps[m]}
        table[var] = {"levels": rows, "gaps": gaps}
    return {"table": table, "largest_gap": largest}


def captured_fraction(model: float, random: float, best: float) -> float:
    """``(random - model) / (random - best)``: share of the achievable benefit over a random
    choice that the model's choice captures (lower change is better)."""
    denom = random - best
    return (random - model) / denom if denom != 0 else float("nan")


def percentiles(values: list[float] | F64, qs: tuple[float, ...] = (50, 90, 95, 99)
                ) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    if len(arr) == 0:
        return {f"p{int(q)}": float("nan") for q in qs}
    return {f"p{int(q)}": _f(np.percentile(arr, q)) for q in qs}


# -- held-out figures of the manifest and the model card (models/training/train.py) ----------

def group_argmin(values: F64, starts: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Row index of the minimum of ``values`` within each contiguous group (first on ties)."""
    n = len(values)
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    order = np.lexsort((np.arange(n), values, group))
    first = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
    out: npt.NDArray[np.intp] = order[first].astype(np.intp)
    return out


def heldout_regression(pred: F64, observed: F64, truth: F64) -> dict[str, float]:
    """Error against the noisy observed outcome and against the simulated truth (manifest
    keys; the slope and intercept by :func:`numpy.polyfit`, see the module docstring)."""
    slope, intercept = np.polyfit(pred, observed, 1)
    resid = truth - pred
    return {
        "mae_observed": mae(pred, observed),
        "mae_true": mae(pred, truth),
        "rmse_true": float(np.sqrt(np.mean(resid**2))),
        "r2_true": float(1.0 - np.var(resid) / np.var(truth)),
        "calibration_slope": float(slope),
        "calibration_intercept": float(intercept),
        "mean_bias": float(np.mean(pred - observed)),
    }


def heldout_interval(lo: F64, hi: F64, observed: F64) -> dict[str, float]:
    """Coverage and mean width of the interval (manifest keys)."""
    coverage, width = coverage_and_width(lo, hi, observed)
    return {"coverage": coverage, "mean_width": width}


def heldout_classification(p: F64, y: Bool, p_true: F64) -> dict[str, float]:
    """Target attainment (manifest keys; AUROC by scikit-learn, see the module docstring)."""
    from sklearn.metrics import roc_auc_score

    return {
        "auroc": float(roc_auc_score(y, p)),
        "brier": brier(p, y),
        "mean_predicted": float(np.mean(p)),
        "observed_rate": float(np.mean(y)),
        "mae_vs_true_probability": mae(p, p_true),
    }


def heldout_decision(pred: F64, truth: F64, starts: npt.NDArray[np.intp]) -> dict[str, float]:
    """Mean true SBP change of the model's first option vs the best and a random option
    (all catalogue options, before any guideline rule)."""
    n = len(pred)
    sizes = np.diff(np.append(starts, n))
    first = group_argmin(pred, starts)
    best = group_argmin(truth, starts)
    mean_all = np.add.reduceat(truth, starts) / sizes
    return {
        "true_change_model_first": float(np.mean(truth[first])),
        "true_change_best": float(np.mean(truth[best])),
        "true_change_random": float(np.mean(mean_all)),
        "share_model_first_is_best": float(np.mean(first == best)),
    }

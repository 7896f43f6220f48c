"""Held-out metrics reported in the manifest and the model card."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

F64 = npt.NDArray[np.float64]


def group_argmin(values: F64, starts: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Row index of the minimum of ``values`` within each contiguous group (first on ties)."""
    n = len(values)
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    order = np.lexsort((np.arange(n), values, group))
    first = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
    out: npt.NDArray[np.intp] = order[first].astype(np.intp)
    return out


def regression_metrics(pred: F64, observed: F64, truth: F64) -> dict[str, float]:
    """Error against the noisy observed outcome and against the simulated truth."""
    slope, intercept = np.polyfit(pred, observed, 1)
    resid = truth - pred
    return {
        "mae_observed": float(np.mean(np.abs(observed - pred))),
        "mae_true": float(np.mean(np.abs(resid))),
        "rmse_true": float(np.sqrt(np.mean(resid**2))),
        "r2_true": float(1.0 - np.var(resid) / np.var(truth)),
        "calibration_slope": float(slope),
        "calibration_intercept": float(intercept),
        "mean_bias": float(np.mean(pred - observed)),
    }


def interval_metrics(lo: F64, hi: F64, observed: F64) -> dict[str, float]:
    return {
        "coverage": float(np.mean((observed >= lo) & (observed <= hi))),
        "mean_width": float(np.mean(hi - lo)),
    }


def classification_metrics(p: F64, y: npt.NDArray[np.bool_], p_true: F64) -> dict[str, float]:
    return {
        "auroc": float(roc_auc_score(y, p)),
        "brier": float(np.mean((p - y) ** 2)),
        "mean_predicted": float(np.mean(p)),
        "observed_rate": float(np.mean(y)),
        "mae_vs_true_probability": float(np.mean(np.abs(p - p_true))),
    }


def decision_metrics(pred: F64, truth: F64, starts: npt.NDArray[np.intp]) -> dict[str, float]:
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

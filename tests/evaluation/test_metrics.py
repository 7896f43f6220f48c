"""Evaluation metrics on tiny hand-made data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.training.metrics import (
    auroc,
    binary_metrics,
    calibration_curve,
    captured_fraction,
    interval_coverage,
    linear_calibration,
    logistic_calibration,
    percentiles,
    regression_metrics,
    subgroup_table,
)

A = np.array


@pytest.mark.parametrize(("pred", "obs", "slope", "intercept", "citl"), [
    ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 1.0, 0.0, 0.0),           # perfect
    ([1.0, 2.0, 3.0], [3.0, 4.0, 5.0], 1.0, 2.0, 2.0),           # shifted by +2
    ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 2.0, 0.0, 2.0),           # predictions too flat
    ([-10.0, 0.0, 10.0], [-5.0, 0.0, 5.0], 0.5, 0.0, 0.0),       # predictions too extreme
])
def test_linear_calibration(pred: list[float], obs: list[float], slope: float,
                            intercept: float, citl: float) -> None:
    c = linear_calibration(A(pred), A(obs))
    assert c["slope"] == pytest.approx(slope)
    assert c["intercept"] == pytest.approx(intercept)
    assert c["in_the_large"] == pytest.approx(citl)


def test_constant_prediction_has_no_slope() -> None:
    assert math.isnan(linear_calibration(A([1.0, 1.0]), A([0.0, 2.0]))["slope"])


@pytest.mark.parametrize(("p", "y", "expected"), [
    ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0),
    ([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 0.0),
    ([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5),                  # ties count half
    ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),                 # sklearn's textbook example
    ([0.2, 0.3], [1, 1], float("nan")),                          # one class only
])
def test_auroc(p: list[float], y: list[int], expected: float) -> None:
    got = auroc(A(p), A(y, dtype=bool))
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_logistic_calibration_recovers_a_known_recalibration() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1.5, 200_000)
    p = 1 / (1 + np.exp(-x))
    y = rng.random(len(x)) < 1 / (1 + np.exp(-(0.3 + 0.6 * x)))  # truth: a = 0.3, b = 0.6
    c = logistic_calibration(p, y)
    assert c["slope"] == pytest.approx(0.6, abs=0.02)
    assert c["intercept"] == pytest.approx(0.3, abs=0.02)


def test_binary_metrics_against_the_prevalence_baseline() -> None:
    p, y = A([0.0, 0.0, 1.0, 1.0]), A([False, False, True, True])
    m = binary_metrics(p, y)
    assert (m["auroc"], m["brier"], m["observed_rate"]) == (1.0, 0.0, 0.5)
    assert m["baseline_prevalence"]["brier"] == pytest.approx(0.25)
    assert m["brier_skill_vs_prevalence"] == pytest.approx(1.0)
    assert m["calibration"]["in_the_large"] == pytest.approx(0.0)


def test_regression_metrics_and_population_mean_baseline() -> None:
    obs = A([-10.0, 0.0, 10.0, 20.0])
    m = regression_metrics(A([-9.0, 1.0, 9.0, 19.0]), obs, truth=obs)
    assert m["mae_observed"] == pytest.approx(1.0)
    assert m["mae_true"] == pytest.approx(1.0)
    assert m["baseline_population_mean"]["mae_observed"] == pytest.approx(10.0)  # mean 5
    assert m["mae_skill_vs_population_mean"] == pytest.approx(0.9)


@pytest.mark.parametrize(("lo", "hi", "obs", "coverage", "width"), [
    ([0, 0, 0, 0], [1, 1, 1, 1], [0.5, 1.0, 0.0, 2.0], 0.75, 1.0),  # bounds inclusive
    ([-5, -5], [5, 5], [10, -10], 0.0, 10.0),
])
def test_interval_coverage(lo: list[float], hi: list[float], obs: list[float],
                           coverage: float, width: float) -> None:
    m = interval_coverage(A(lo, dtype=float), A(hi, dtype=float), A(obs), 0.8)
    assert (m["coverage"], m["mean_width"]) == (pytest.approx(coverage), pytest.approx(width))
    assert m["shortfall"] == pytest.approx(0.8 - coverage)


@pytest.mark.parametrize(("model", "random", "best", "expected"), [
    (-14.0, -5.0, -14.0, 1.0), (-5.0, -5.0, -14.0, 0.0), (-9.5, -5.0, -14.0, 0.5),
    (-3.0, -5.0, -14.0, -2 / 9),
])
def test_captured_fraction(model: float, random: float, best: float, expected: float) -> None:
    assert captured_fraction(model, random, best) == pytest.approx(expected)


def test_subgroup_table_reports_the_largest_gap() -> None:
    n = 400
    pred = np.zeros(n)
    truth = np.r_[np.full(200, 1.0), np.full(200, 3.0)]  # group a: error 1, group b: error 3
    groups = {"sex": {"a": np.arange(n) < 200, "b": np.arange(n) >= 200},
              "tiny": {"x": np.arange(n) < 5, "y": np.arange(n) >= 5}}
    y = np.arange(n) % 2 == 0
    t = subgroup_table(groups, pred, truth, truth, pred - 2, pred + 2, np.full(n, 0.5), y)
    assert t["table"]["sex"]["levels"]["a"]["mae_true"] == pytest.approx(1.0)
    assert t["table"]["sex"]["gaps"]["mae_true"] == {"gap": pytest.approx(2.0),
                                                     "highest": "b", "lowest": "a"}
    assert t["largest_gap"]["mae_true"]["variable"] == "sex"
    assert t["largest_gap"]["coverage"]["gap"] == pytest.approx(1.0)  # a covered, b not
    assert "mae_true" not in t["table"]["tiny"]["gaps"]  # level x has too few rows


def test_calibration_curve_and_percentiles() -> None:
    c = calibration_curve(np.arange(10.0), np.arange(10.0) * 2, bins=5)
    assert c["predicted"] == [0.5, 2.5, 4.5, 6.5, 8.5]
    assert c["observed"] == [1.0, 5.0, 9.0, 13.0, 17.0]
    assert percentiles([1.0, 2.0, 3.0, 4.0, 5.0])["p50"] == 3.0

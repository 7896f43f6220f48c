"""Drift statistics on toy data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation import drift as D

UNIFORM = D.FeatureReference(0.0, 50.0, tuple(float(v) for v in range(0, 101, 10)))


def test_psi_known_value_and_zero() -> None:
    assert D.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    # (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5)
    assert D.psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * math.log(2)
                                                            + 0.25 * math.log(1.5))
    assert D.psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(D.psi([0.25, 0.75], [0.5, 0.5]))


def test_decile_bins_of_the_reference_itself_have_no_drift() -> None:
    x = np.linspace(0.05, 99.95, 1000)  # uniform on [0, 100], like the reference
    expected, actual = D.decile_bins(x, UNIFORM)
    assert expected == pytest.approx([0.1] * 10 + [0.0])
    assert actual == pytest.approx([0.1] * 10 + [0.0])
    assert D.psi(expected, actual) == pytest.approx(0.0, abs=1e-9)


def test_trimmed_wasserstein_of_a_shift_is_the_shift() -> None:
    x = np.linspace(0.05, 99.95, 2000)
    assert D.trimmed_wasserstein(x, UNIFORM.deciles) == pytest.approx(0.0, abs=0.1)
    assert D.trimmed_wasserstein(x + 5.0, UNIFORM.deciles) == pytest.approx(5.0, abs=0.1)
    assert D.reference_scale(UNIFORM.deciles) == pytest.approx(50.0 / 1.349)


def test_continuous_feature_status_follows_the_clinical_tolerance() -> None:
    threshold = D.FeatureThreshold("continuous", 8.0, "units", "toy")
    x = np.linspace(0.05, 99.95, 500)
    assert D.feature_drift("toy", x, UNIFORM, threshold).status == "ok"
    shifted = D.feature_drift("toy", x + 4.5, UNIFORM, threshold)
    assert shifted.status == "warning"  # half the tolerance, PSI still below 0.25
    assert shifted.distance == pytest.approx(4.5, abs=0.1)
    assert shifted.distance_normalised == pytest.approx(4.5 / (50 / 1.349), abs=0.01)
    assert D.feature_drift("toy", x + 9.0, UNIFORM, threshold).status == "alarm"
    assert D.feature_drift("toy", x[:50] + 30, UNIFORM, threshold).status == "insufficient"


def test_missing_values_are_their_own_bin() -> None:
    ref = D.FeatureReference(0.1, 50.0, UNIFORM.deciles)
    x = np.linspace(0.05, 99.95, 700).tolist() + [None] * 300  # 30% missing instead of 10%
    d = D.feature_drift("toy", x, ref, D.FeatureThreshold("continuous", 100, "u", "toy"))
    assert d.missing_rate == pytest.approx(0.3)
    assert d.distance == pytest.approx(0.0, abs=0.2)  # the known values did not move
    expected = 0.2 * math.log(3) + 9 * 0 + 10 * (0.07 - 0.09) * math.log(0.07 / 0.09)
    assert d.psi == pytest.approx(expected, rel=0.02)
    assert d.status == "alarm"  # a 20-point change in missing rate


def test_binary_feature_uses_the_share_difference() -> None:
    ref = D.FeatureReference(0.0, 0.2, (0.0,) * 8 + (1.0,) * 3)
    assert ref.binary
    x = [1.0] * 30 + [0.0] * 70
    d = D.feature_drift("diabetes_t2", x * 3, ref)
    assert d.kind == "binary"
    assert d.distance == pytest.approx(0.10)
    # (the empty missing bin is floored at 1e-4, hence rel=1e-3)
    assert d.psi == pytest.approx(0.1 * math.log(0.3 / 0.2) - 0.1 * math.log(0.7 / 0.8),
                                  rel=1e-3)
    assert d.status == "alarm"  # 10 points > the 8-point tolerance for diabetes


def test_prediction_drift_against_reference_deciles() -> None:
    deciles = tuple(float(v) for v in np.linspace(-20, 10, 11))
    preds = np.linspace(-19.99, 9.99, 3000)
    same = D.prediction_drift(preds, preds[:300], deciles)
    assert same.status == "ok"
    assert same.psi < 0.01
    moved = D.prediction_drift(preds + 3.0, preds[:300], deciles)
    assert moved.wasserstein_mmhg == pytest.approx(3.0, abs=0.1)
    assert moved.status == "alarm"


def test_driver_drift_js_distance() -> None:
    ref = {"option": 0.5, "age": 0.5}
    same = D.driver_drift({"option": 200, "age": 200}, ref, 200)
    assert same.js_distance == pytest.approx(0.0, abs=1e-9)
    assert same.status == "ok"
    other = D.driver_drift({"egfr": 400}, ref, 200)
    assert other.js_distance == pytest.approx(1.0)
    assert other.status == "alarm"
    assert other.largest_changes[0]["feature"] == "egfr"


def test_every_tolerance_has_a_rationale_and_matches_the_profile() -> None:
    profile = D.load_reference_profile()
    assert set(D.FEATURE_THRESHOLDS) == set(profile.features)
    for name, t in D.FEATURE_THRESHOLDS.items():
        assert t.rationale
        assert t.tolerance > 0
        assert (t.kind == "binary") == profile.features[name].binary, name

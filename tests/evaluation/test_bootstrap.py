"""The patient-level bootstrap behind every interval the gates read."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.bootstrap import Batch, Bootstrap, patient_sums


def test_a_ratio_of_sums_and_its_interval() -> None:
    rng = np.random.default_rng(1)
    num = rng.normal(2.0, 1.0, 4000)
    den = np.ones(4000)
    e = Bootstrap(4000).ratio(num, den)
    assert e.estimate == pytest.approx(num.mean())
    assert e.lower < e.estimate < e.upper
    # the percentile interval of a mean is about +-1.96 standard errors
    se = num.std() / np.sqrt(4000)
    assert (e.upper - e.lower) / (2 * 1.96 * se) == pytest.approx(1.0, abs=0.15)
    assert e.n == 4000


def test_the_same_seed_gives_the_same_interval_and_another_seed_another() -> None:
    x = np.random.default_rng(2).normal(size=500)
    one, two = Bootstrap(500).ratio(x, np.ones(500)), Bootstrap(500).ratio(x, np.ones(500))
    assert one == two
    other = Bootstrap(500, seed=99).ratio(x, np.ones(500))
    assert (other.lower, other.upper) != (one.lower, one.upper)


def test_slope_from_patient_sums_is_least_squares_over_the_rows() -> None:
    rng = np.random.default_rng(3)
    patients = np.repeat(np.arange(300), 5)
    x = rng.normal(-10, 3, len(patients))
    y = 0.8 * x + rng.normal(0, 4, len(patients))
    starts = np.flatnonzero(np.r_[True, np.diff(patients) != 0])
    sums = [patient_sums(v, starts, len(x)) for v in (np.ones_like(x), x, y, x * x, x * y)]
    e = Bootstrap(300).slope(*sums)
    assert e.estimate == pytest.approx(np.polyfit(x, y, 1)[0])
    assert e.lower < 0.8 < e.upper
    assert e.n == 300


def test_a_batch_gives_what_each_estimate_gives_alone() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=800), rng.uniform(1, 2, 800)
    boot = Bootstrap(800)
    batch = Batch(boot)
    batch.ratio("a", a, np.ones(800))
    batch.ratio("ab", a, b)
    found = batch.run()
    assert found["a"] == boot.ratio(a, np.ones(800))
    assert found["ab"] == boot.ratio(a, b)


def test_a_zero_denominator_has_no_figure() -> None:
    e = Bootstrap(10).ratio(np.zeros(10), np.zeros(10))
    assert e.to_dict()["estimate"] is None
    assert e.to_dict()["lower"] is None
    assert e.n == 0

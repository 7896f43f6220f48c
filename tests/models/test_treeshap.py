"""Our numpy TreeSHAP equals LightGBM's pred_contrib on the committed model and on edge cases."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from models.manifest import OUTPUTS, ROLE_LGB_PREFIX, Manifest
from models.training.verify import parity_set
from models.treeshap import ModelFormatError, TreeShap


@pytest.mark.parametrize("output", OUTPUTS)
def test_matches_lightgbm_pred_contrib_exactly(manifest: Manifest, output: str) -> None:
    """Threshold-exact, NaN, infinite and extreme rows: |difference| < 1e-9 per feature."""
    path = manifest.file(ROLE_LGB_PREFIX + output)
    booster = lgb.Booster(model_file=str(path))
    x = parity_set([booster], len(manifest.feature_names))[:6000]
    ref = booster.predict(x, pred_contrib=True)

    phi, out = TreeShap.from_file(path).shap_values(x)

    assert np.max(np.abs(phi - ref[:, :-1])) < 1e-9
    assert np.max(np.abs(out - booster.predict(x, raw_score=True))) < 1e-9


def test_small_models_with_constant_trees_and_missing_values(tmp_path: object) -> None:
    """A model trained on data with NaNs (missing types NaN and None) and a constant first
    tree is explained exactly too."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 5))
    x[rng.random(3000) < 0.2, 1] = np.nan
    y = 2 * x[:, 0] + np.nan_to_num(x[:, 1]) * (x[:, 2] > 0) + rng.normal(size=3000)
    booster = lgb.train({"num_leaves": 7, "verbose": -1, "deterministic": True,
                         "num_threads": 1, "min_data_in_leaf": 1000}, lgb.Dataset(x, y), 30)
    ts = TreeShap(*_parse(booster))
    test = np.vstack([x[:500], np.full((1, 5), np.nan), np.full((1, 5), np.inf)])

    phi, _ = ts.shap_values(test)

    ref = booster.predict(test.astype(np.float32).astype(np.float64), pred_contrib=True)
    assert np.max(np.abs(phi - ref[:, :-1])) < 1e-9


def _parse(booster: lgb.Booster) -> tuple[list[str], list[object]]:
    from models.treeshap import parse_lightgbm_text

    names, trees = parse_lightgbm_text(booster.model_to_string())
    return names, trees  # type: ignore[return-value]


def test_categorical_models_are_refused() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, size=(2000, 2)).astype(float)
    y = (x[:, 0] == 3).astype(float)
    booster = lgb.train({"verbose": -1, "num_leaves": 4}, lgb.Dataset(
        x, y, categorical_feature=[0]), 3)

    with pytest.raises(ModelFormatError, match="categorical"):
        TreeShap(*_parse(booster))  # type: ignore[arg-type]


@pytest.mark.parametrize("depth", [1, 3, 8])
def test_path_lengths_from_one_to_eight_splits(depth: int) -> None:
    """Every path length the packed node-agreement index supports (1 to 8 splits per path,
    repeated features on a path included) is explained exactly, row by row and in a batch."""
    rng = np.random.default_rng(depth)
    x = rng.normal(size=(4000, 4))
    y = np.sin(3 * x[:, 0]) * x[:, 1] + (x[:, 2] > 0.3) * x[:, 3] + rng.normal(size=4000) * 0.1
    booster = lgb.train({"num_leaves": 2 ** depth, "max_depth": depth, "verbose": -1,
                         "deterministic": True, "num_threads": 1, "min_data_in_leaf": 5},
                        lgb.Dataset(x, y), 20)
    ts = TreeShap(*_parse(booster))
    assert ts._k == depth  # the longest path really has `depth` splits
    test = x[:300]

    phi, _ = ts.shap_values(test)
    one, _ = ts.shap_values(test[:1])

    ref = booster.predict(test.astype(np.float32).astype(np.float64), pred_contrib=True)
    assert np.max(np.abs(phi - ref[:, :-1])) < 1e-9
    assert np.max(np.abs(one - ref[:1, :-1])) < 1e-9

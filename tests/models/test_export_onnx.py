"""LightGBM -> ONNX exporter: exact parity with ``booster.predict(raw_score=True)``.

Small models are trained here on synthetic data that makes LightGBM emit every kind of split
the exporter must reproduce: NaN-aware splits (``missing_type`` "NaN"), splits on features
without NaNs in training (``missing_type`` "None", where a NaN is scored as 0.0), splits
between zero and non-zero values (thresholds ``±1e-35``, inside LightGBM's zero band),
thresholds that ``np.float32`` rounds up, and the ``1e300`` "NaN versus everything" split.
Both ONNX forms are serialized, reloaded and run with onnxruntime, then compared with
LightGBM on random rows plus rows sitting exactly on, and one float32 step either side of,
every threshold, and on NaN, ±inf, ±3e38, ±0.0 and tiny values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.training.export_onnx import (
    CUDA_OPS,
    INPUT_NAME,
    K_ZERO_THRESHOLD,
    MISSING_NAN,
    MISSING_NONE,
    OUTPUT_NAME,
    ParsedEnsemble,
    float32_floor,
    lightgbm_compare_threshold,
    max_abs_diff,
    parse_boosters,
    reference_margins,
    to_tensorised_onnx,
    to_tree_ensemble_onnx,
)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Builder = Callable[[ParsedEnsemble, int], onnx.ModelProto]

N_FEATURES = 8
TOLERANCE = 1e-4
FORMS: dict[str, Builder] = {
    "tree_ensemble": to_tree_ensemble_onnx,
    "tensorised": to_tensorised_onnx,
}
BASE_PARAMS: dict[str, Any] = {
    "num_leaves": 15,
    "learning_rate": 0.1,
    "min_data_in_leaf": 20,
    "deterministic": True,
    "force_col_wise": True,
    "num_threads": 2,
    "seed": 11,
    "verbose": -1,
}
SPECIAL_VALUES = (
    np.nan,
    np.inf,
    -np.inf,
    3e38,
    -3e38,
    0.0,
    -0.0,
    K_ZERO_THRESHOLD,
    -K_ZERO_THRESHOLD,
    1e-36,
    -1e-36,
    1e-30,
    -1e-30,
    float(np.finfo(np.float32).smallest_subnormal),
)


def _synthetic(n: int, seed: int) -> tuple[F64, F64]:
    """Features with NaNs (f2, f4), exact zeros of both signs (f1), integers (f3)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    x[rng.random(n) < 0.45, 1] = 0.0
    x[rng.random(n) < 0.25, 2] = np.nan
    x[:, 3] = rng.integers(0, 6, n)
    x[rng.random(n) < 0.12, 4] = np.nan
    x[:, 5] *= 1e4
    x[:, 6] *= 1e-3
    y = (
        4.0 * x[:, 0]
        + np.where(x[:, 1] > 0, 3.0, np.where(x[:, 1] < 0, -2.0, 0.5))
        + np.where(np.isnan(x[:, 2]), 2.5, np.sin(3 * np.nan_to_num(x[:, 2])))
        + 0.8 * x[:, 3]
        + np.where(np.isnan(x[:, 4]), -3.0, x[:, 4])
        + 2e-4 * x[:, 5]
        + 500.0 * x[:, 6]
        + rng.normal(size=n)
        - 12.0
    )
    return x, y


def _train(params: dict[str, Any], x: F64, y: F64, rounds: int) -> lgb.Booster:
    return lgb.train({**BASE_PARAMS, **params}, lgb.Dataset(x, y), num_boost_round=rounds)


@pytest.fixture(scope="module")
def boosters() -> list[lgb.Booster]:
    """Regression, 10% quantile and binary models on the same features (M = 3)."""
    x, y = _synthetic(4000, seed=1)
    return [
        _train({"objective": "regression"}, x, y, 90),
        _train({"objective": "quantile", "alpha": 0.1}, x, y, 90),
        _train({"objective": "binary"}, x, (y > -12.0).astype(np.float64), 90),
    ]


@pytest.fixture(scope="module")
def ensemble(boosters: list[lgb.Booster]) -> ParsedEnsemble:
    return parse_boosters(boosters)


def _boundary_values(threshold: float) -> list[float]:
    """Float32 values on and next to a double threshold (and next to its adjusted form)."""
    values: set[float] = set()
    with np.errstate(over="ignore"):
        for t32 in {float32_floor(threshold), lightgbm_compare_threshold(threshold)}:
            for v in (
                t32,
                np.nextafter(t32, np.float32(np.inf)),
                np.nextafter(t32, np.float32(-np.inf)),
            ):
                values.add(float(v))
        values.add(float(np.float32(threshold)))  # round-to-nearest, may be above threshold
    return sorted(values)


def parity_rows(ens: ParsedEnsemble, seed: int = 7) -> F32:
    """Random rows + boundary rows for every split + special values in every column."""
    rng = np.random.default_rng(seed)
    x, _ = _synthetic(600, seed=seed)
    x[rng.random(x.shape) < 0.05] = np.nan  # NaNs in every column, incl. "None" ones
    base = x.astype(np.float32)
    rows: list[F32] = [base]
    for feature, threshold in sorted(set(ens.split_thresholds())):
        values = _boundary_values(threshold)
        block = base[rng.integers(0, len(base), len(values))].copy()
        block[:, feature] = values
        rows.append(block)
    for value in SPECIAL_VALUES:
        block = base[rng.integers(0, len(base), N_FEATURES)].copy()
        block[np.arange(N_FEATURES), np.arange(N_FEATURES)] = value
        rows.append(block)
    rows.append(np.full((1, N_FEATURES), np.nan, dtype=np.float32))
    rows.append(np.zeros((1, N_FEATURES), dtype=np.float32))
    return np.ascontiguousarray(np.vstack(rows), dtype=np.float32)


def lightgbm_margins(boosters: Sequence[lgb.Booster], x: F32) -> F64:
    return np.column_stack([b.predict(x, raw_score=True) for b in boosters])


def run_serialized(
    model: onnx.ModelProto,
    x: F32,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    options: ort.SessionOptions | None = None,
) -> F32:
    """Serialize, reload, check and run: parity is of the bytes we would deploy."""
    blob = model.SerializeToString()
    onnx.checker.check_model(onnx.load_from_string(blob), full_check=True)
    sess = ort.InferenceSession(blob, sess_options=options, providers=list(providers))
    out = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    return np.asarray(out)


# ---------------------------------------------------------------------------------------------
# The training data really exercise what the exporter must get right
# ---------------------------------------------------------------------------------------------


def test_the_models_contain_every_kind_of_split_the_exporter_handles(
    ensemble: ParsedEnsemble,
) -> None:
    internal = ~ensemble.is_leaf
    missing = set(ensemble.missing_type[internal].tolist())
    assert missing == {MISSING_NONE, MISSING_NAN}
    t = ensemble.threshold[internal]
    assert np.any(t == K_ZERO_THRESHOLD)
    assert np.any(t == -K_ZERO_THRESHOLD)
    assert np.any(np.isposinf(t))  # "any number versus NaN", 1e300 in the JSON dump
    with np.errstate(over="ignore"):
        rounded_up = t.astype(np.float32).astype(np.float64) > t
    assert rounded_up.sum() > 10
    assert np.all(ensemble.threshold_f32[internal].astype(np.float64) <= t)
    # None-type nodes on both sides of zero, so NaN -> 0.0 goes left and right.
    none_nodes = internal & (ensemble.missing_type == MISSING_NONE)
    assert np.any(ensemble.missing_left[none_nodes])
    assert not np.all(ensemble.missing_left[none_nodes])


def test_parse_matches_lightgbm_exactly_in_double(
    boosters: list[lgb.Booster], ensemble: ParsedEnsemble
) -> None:
    """The node tables alone reproduce LightGBM (float32 thresholds, double sums)."""
    x = parity_rows(ensemble)
    assert max_abs_diff(reference_margins(ensemble, x), lightgbm_margins(boosters, x)) < 1e-9


def test_round_to_nearest_thresholds_would_fail_the_boundary_rows(
    boosters: list[lgb.Booster], ensemble: ParsedEnsemble
) -> None:
    """The boundary rows have teeth: the onnxmltools-1.16 rounding is caught by them."""
    with np.errstate(over="ignore"):
        nearest = ensemble.threshold.astype(np.float32)
    naive = dataclasses.replace(ensemble, threshold_cmp=nearest)
    x = parity_rows(ensemble)
    assert max_abs_diff(reference_margins(naive, x), lightgbm_margins(boosters, x)) > 1e-3


# ---------------------------------------------------------------------------------------------
# Threshold arithmetic
# ---------------------------------------------------------------------------------------------

float32s = st.floats(width=32, allow_nan=False)
doubles = st.floats(allow_nan=False)
near_float32 = float32s.filter(lambda v: np.isfinite(v)).flatmap(
    lambda v: st.sampled_from(
        [v, float(np.nextafter(v, np.inf)), float(np.nextafter(v, -np.inf)), v * (1 + 1e-12)]
    )
)
tiny = st.sampled_from(
    [
        K_ZERO_THRESHOLD,
        -K_ZERO_THRESHOLD,
        float(np.nextafter(K_ZERO_THRESHOLD, 1.0)),
        float(np.nextafter(-K_ZERO_THRESHOLD, -1.0)),
        float(np.nextafter(K_ZERO_THRESHOLD, 0.0)),
        float(np.nextafter(-K_ZERO_THRESHOLD, 0.0)),
        float(np.nextafter(np.float32(K_ZERO_THRESHOLD), np.float32(1.0))),
        float(np.nextafter(np.float32(-K_ZERO_THRESHOLD), np.float32(-1.0))),
        1e-36,
        -1e-36,
        0.0,
        -0.0,
    ]
)


@given(x=float32s | tiny.map(lambda v: float(np.float32(v))), t=doubles | near_float32 | tiny)
def test_float32_floor_preserves_every_float32_comparison(x: float, t: float) -> None:
    x32 = np.float32(x)
    assert bool(x32 <= float32_floor(t)) == (float(x32) <= t)


@given(x=float32s | tiny.map(lambda v: float(np.float32(v))), t=doubles | near_float32 | tiny)
def test_compare_threshold_reproduces_lightgbm_zero_band(x: float, t: float) -> None:
    """LightGBM scores |x| <= kZeroThreshold as 0.0 before comparing ``x <= t`` in double."""
    x32 = np.float32(x)
    lightgbm_x = 0.0 if abs(float(x32)) <= K_ZERO_THRESHOLD else float(x32)
    assert bool(x32 <= lightgbm_compare_threshold(t)) == (lightgbm_x <= t)


def test_float32_floor_saturates_outside_the_float32_range() -> None:
    assert float32_floor(1e300) == np.finfo(np.float32).max
    assert float32_floor(-1e300) == -np.inf
    # just below -FLT_MAX in double: -inf without an overflow warning (hypothesis found it)
    assert float32_floor(-3.402823466385289e38) == -np.inf
    assert lightgbm_compare_threshold(-3.402823466385289e38) == -np.inf
    with pytest.raises(ValueError, match="NaN"):
        float32_floor(float("nan"))


# ---------------------------------------------------------------------------------------------
# ONNX parity (CPU provider)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(FORMS))
def test_onnx_matches_lightgbm_raw_scores(
    form: str, boosters: list[lgb.Booster], ensemble: ParsedEnsemble
) -> None:
    x = parity_rows(ensemble)
    expected = lightgbm_margins(boosters, x)
    out = run_serialized(FORMS[form](ensemble, N_FEATURES), x)
    assert out.dtype == np.float32
    assert out.shape == (len(x), 3)
    per_column = [max_abs_diff(out[:, m], expected[:, m]) for m in range(3)]
    print(f"\n{form}: {len(x)} rows, max abs diff per output {per_column}")
    assert max(per_column) < TOLERANCE, per_column


@pytest.mark.parametrize("form", sorted(FORMS))
def test_single_row_and_io_signature(form: str, ensemble: ParsedEnsemble) -> None:
    model = FORMS[form](ensemble, N_FEATURES)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    (outp,) = sess.get_outputs()
    assert (inp.name, inp.type, inp.shape[1]) == (INPUT_NAME, "tensor(float)", N_FEATURES)
    assert (outp.name, outp.type, outp.shape[1]) == (OUTPUT_NAME, "tensor(float)", 3)
    assert isinstance(inp.shape[0], str)  # dynamic batch
    row = np.zeros((1, N_FEATURES), dtype=np.float32)
    expected = reference_margins(ensemble, row)
    out = sess.run(None, {INPUT_NAME: row})[0]
    assert max_abs_diff(out, expected) < TOLERANCE


def test_tensorised_graph_uses_only_cuda_ops(ensemble: ParsedEnsemble) -> None:
    model = to_tensorised_onnx(ensemble, N_FEATURES)
    ops = {n.op_type for n in model.graph.node}
    assert ops <= CUDA_OPS, sorted(ops - CUDA_OPS)
    assert not any("TreeEnsemble" in op for op in ops)
    assert {"Shape", "Reshape", "Size", "NonZero"}.isdisjoint(ops)
    assert {n.domain for n in model.graph.node} <= {""}
    assert [o.domain for o in model.opset_import] == [""]
    # Constants only: every non-input edge is an initializer or produced by a node.
    produced = {o for n in model.graph.node for o in n.output}
    known = produced | {i.name for i in model.graph.initializer} | {INPUT_NAME}
    assert all(i in known for n in model.graph.node for i in n.input)
    # Padded per tree, not block-diagonal over all trees: well under 10 MB for 270 trees.
    assert model.ByteSize() < 10_000_000


def test_tree_ensemble_graph_is_one_node(ensemble: ParsedEnsemble) -> None:
    model = to_tree_ensemble_onnx(ensemble, N_FEATURES)
    assert [(n.op_type, n.domain) for n in model.graph.node] == [
        ("TreeEnsembleRegressor", "ai.onnx.ml")
    ]
    assert {o.domain: o.version for o in model.opset_import}["ai.onnx.ml"] == 3


@pytest.mark.parametrize("form", sorted(FORMS))
def test_constant_first_tree_and_uneven_tree_counts(form: str) -> None:
    """A first iteration that is a single leaf holds the whole init score."""
    x, y = _synthetic(1500, seed=3)
    stump_params = {"objective": "regression", "min_data_in_leaf": 10_000}
    constant = lgb.train(
        {**BASE_PARAMS, **stump_params},
        lgb.Dataset(x, y, params={"min_data_in_leaf": 10_000}),
        num_boost_round=1,
    )
    first = constant.dump_model()["tree_info"][0]
    assert first["num_leaves"] == 1
    continued = lgb.train(
        {**BASE_PARAMS, "objective": "regression"},
        lgb.Dataset(x, y),
        num_boost_round=25,
        init_model=constant,
    )
    trees = continued.dump_model()["tree_info"]
    assert trees[0]["num_leaves"] == 1
    assert trees[1]["num_leaves"] > 1
    small = _train({"objective": "quantile", "alpha": 0.1}, x, y, 4)
    models = [continued, constant, small]  # 26, 1 and 4 trees: exercises padding trees
    ens = parse_boosters(models)
    rows = parity_rows(ens)
    expected = lightgbm_margins(models, rows)
    out = run_serialized(FORMS[form](ens, N_FEATURES), rows)
    assert max_abs_diff(out, expected) < TOLERANCE
    # The constant-only booster is exact: one float32 leaf value plus nothing.
    assert max_abs_diff(out[:, 1], expected[:, 1]) < 1e-6


# ---------------------------------------------------------------------------------------------
# Rejections
# ---------------------------------------------------------------------------------------------


def test_zero_as_missing_models_are_rejected() -> None:
    x, y = _synthetic(1000, seed=5)
    model = _train({"objective": "regression", "zero_as_missing": True}, x, y, 3)
    with pytest.raises(NotImplementedError, match="Zero"):
        parse_boosters([model])


def test_categorical_linear_and_rf_models_are_rejected() -> None:
    x, y = _synthetic(1000, seed=5)
    x = np.nan_to_num(x)
    cat = lgb.train(
        {**BASE_PARAMS, "objective": "regression"},
        lgb.Dataset(x, y + 3 * (x[:, 3] % 2), categorical_feature=[3]),
        num_boost_round=3,
    )
    with pytest.raises(NotImplementedError, match="categorical"):
        parse_boosters([cat])
    linear = _train({"objective": "regression", "linear_tree": True}, x, y, 2)
    with pytest.raises(NotImplementedError, match="linear"):
        parse_boosters([linear])
    rf = _train(
        {"objective": "regression", "boosting": "rf", "bagging_fraction": 0.5, "bagging_freq": 1},
        x,
        y,
        2,
    )
    with pytest.raises(NotImplementedError, match="average_output"):
        parse_boosters([rf])
    multiclass = _train(
        {"objective": "multiclass", "num_class": 3}, x, (np.abs(y) % 3).astype(int), 2
    )
    with pytest.raises(NotImplementedError, match="multiclass"):
        parse_boosters([multiclass])


def test_feature_count_mismatches_are_rejected(boosters: list[lgb.Booster]) -> None:
    x, y = _synthetic(500, seed=9)
    narrow = _train({"objective": "regression"}, x[:, :5], y, 2)
    with pytest.raises(ValueError, match="number of features"):
        parse_boosters([boosters[0], narrow])
    ens = parse_boosters(boosters)
    for builder in FORMS.values():
        with pytest.raises(ValueError, match="n_features"):
            builder(ens, N_FEATURES - 1)


def test_max_abs_diff() -> None:
    a = np.array([[1.0, np.nan], [3.0, 4.0]])
    assert max_abs_diff(a, a + np.array([[0.5, 0.0], [0.0, -0.25]])) == 0.5
    assert max_abs_diff(a, np.zeros((2, 3))) == float("inf")
    assert max_abs_diff(a, np.nan_to_num(a)) == float("inf")


# ---------------------------------------------------------------------------------------------
# CUDA provider (only where onnxruntime-gpu and a device are present)
# ---------------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_tensorised_runs_entirely_on_cuda(
    boosters: list[lgb.Booster], ensemble: ParsedEnsemble
) -> None:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(
            "CUDAExecutionProvider not available in this onnxruntime build "
            f"(providers: {ort.get_available_providers()}); install onnxruntime-gpu on a "
            "machine with a CUDA device to run this test"
        )
    options = ort.SessionOptions()
    # Session creation fails if any node would have to fall back to the CPU provider.
    options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    x = parity_rows(ensemble)
    out = run_serialized(
        to_tensorised_onnx(ensemble, N_FEATURES), x, ["CUDAExecutionProvider"], options
    )
    diff = max_abs_diff(out, lightgbm_margins(boosters, x))
    print(f"\ntensorised on CUDA: max abs diff {diff}")
    assert diff < TOLERANCE

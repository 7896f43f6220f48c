"""Export LightGBM boosters to ONNX without onnxmltools or Hummingbird.

Two graphs with the same interface are built from ``booster.dump_model()``:

* :func:`to_tree_ensemble_onnx`: one ``ai.onnx.ml`` ``TreeEnsembleRegressor`` node (opset 3).
  onnxruntime only has a CPU kernel for it.
* :func:`to_tensorised_onnx`: plain tensor ops (the "GEMM" strategy of the Hummingbird
  paper, built directly with :mod:`onnx.helper`). Every op has a CUDA kernel in onnxruntime,
  so the CUDA provider can run the whole graph with CPU fallback disabled.

Both graphs take input ``"features"`` (float32 ``[N, F]``) and return ``"margins"``
(float32 ``[N, M]``). Column ``m`` is the raw score of booster ``m``, i.e. what
``boosters[m].predict(X, raw_score=True)`` returns: log-odds for a binary model, the
prediction for regression and quantile models. The ``boost_from_average`` init score is
already part of the leaf values of LightGBM's first tree, so nothing is added on top.

Exactness. LightGBM evaluates ``double(x) <= threshold`` with a double threshold, and our
input ``x`` is float32. Every comparison threshold is therefore stored as the largest float32
that is ``<= threshold`` (``np.float32`` rounds to nearest, which can round up; onnxmltools
1.16 had exactly that bug). Then, for every float32 ``x``: ``x <= t32`` in float32 holds iff
``x <= threshold`` holds in double. On top of that, these LightGBM details are reproduced:

* Missing values, per node, as in LightGBM's ``Tree::NumericalDecision``: for
  ``missing_type == "NaN"`` a NaN goes to the ``default_left`` side; for
  ``missing_type == "None"`` a NaN is replaced by 0.0, so it goes left iff
  ``0.0 <= threshold``. ``missing_type == "Zero"`` (``zero_as_missing=True``) is rejected.
* LightGBM's dense-row prediction path drops every value with ``|x| <= kZeroThreshold``
  (``1e-35f``) and uses 0.0 in its place. Thresholds that lie inside that band (LightGBM emits
  ``±1.0000000180025095e-35`` when it splits zeros from non-zeros) get an adjusted float32
  comparison threshold so that tiny inputs take the same branch as 0.0.
* The JSON dump writes LightGBM's ``+inf`` thresholds ("any number versus NaN" splits) as
  ``1e300``; they are read back as ``+inf`` so that an input of ``+inf`` goes left as in
  LightGBM.

Every row therefore reaches exactly the leaves LightGBM reaches; the only remaining
difference is float32 rounding of the leaf values and of the sum over trees (LightGBM sums in
double). To keep that small, the first tree's mean leaf value (which carries the init score)
is moved into a per-output offset added after the sum (:func:`output_offsets`), and the
tensorised graph sums trees in two stages. Measured: a few 1e-6 for 90-tree models and at
most ~1.5e-5 for 300-tree models with margins up to ~30, against a tolerance of 1e-4.

Not supported (``NotImplementedError``): categorical splits, linear trees, ``rf`` boosting
(``average_output``), multiclass models (more than one tree per iteration), and
``missing_type == "Zero"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import lightgbm
import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "CUDA_OPS",
    "INPUT_NAME",
    "K_ZERO_THRESHOLD",
    "MISSING_NAN",
    "MISSING_NONE",
    "MISSING_ZERO",
    "OUTPUT_NAME",
    "ParsedEnsemble",
    "TensorisedTables",
    "float32_floor",
    "lightgbm_compare_threshold",
    "max_abs_diff",
    "output_offsets",
    "parse_boosters",
    "reference_margins",
    "tensorised_tables",
    "to_tensorised_onnx",
    "to_tree_ensemble_onnx",
]

INPUT_NAME: Final = "features"
OUTPUT_NAME: Final = "margins"

#: ``ai.onnx`` opset of both graphs and ``ai.onnx.ml`` opset of the tree-ensemble graph.
ONNX_OPSET: Final = 17
ONNX_ML_OPSET: Final = 3
#: IR version 8 is the lowest that carries opset 17; old runtimes can still load the files.
IR_VERSION: Final = 8

#: LightGBM's ``MissingType`` enum values (``include/LightGBM/tree.h``).
MISSING_NONE: Final = 0
MISSING_ZERO: Final = 1
MISSING_NAN: Final = 2
_MISSING_TYPES: Final[Mapping[str, int]] = {
    "None": MISSING_NONE,
    "Zero": MISSING_ZERO,
    "NaN": MISSING_NAN,
}

#: ``Common::AvoidInf`` writes thresholds ``>= 1e300`` (in practice: +inf) as 1e300 in JSON.
_JSON_INF: Final = 1e300

#: LightGBM's ``kZeroThreshold`` (``const double kZeroThreshold = 1e-35f``): in the dense
#: prediction path values with ``|x| <= kZeroThreshold`` are treated as 0.0.
K_ZERO_THRESHOLD: Final = float(np.float32(1e-35))

#: Op types the tensorised graph may contain. Each has a CUDAExecutionProvider kernel for the
#: types used here (onnxruntime ``docs/OperatorKernels.md``; note that CUDA ``Where`` has no
#: ``bool`` kernel, so the graph selects between float tensors).
CUDA_OPS: Final[frozenset[str]] = frozenset(
    {
        "Add",
        "ArgMax",
        "Cast",
        "Concat",
        "Equal",
        "Gather",
        "GatherElements",
        "IsNaN",
        "LessOrEqual",
        "MatMul",
        "Mul",
        "ReduceSum",
        "Sigmoid",
        "Sub",
        "Transpose",
        "Where",
    }
)

_F32 = np.float32

FloatArray = npt.NDArray[np.float32]
DoubleArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


# ---------------------------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------------------------


def float32_floor(value: float) -> np.float32:
    """Largest float32 that is ``<= value`` (``-inf`` below the float32 range).

    For every float32 ``x``: ``x <= float32_floor(t)`` (in float32) iff ``x <= t`` (in double).
    """
    if np.isnan(value):
        raise ValueError("threshold is NaN")
    with np.errstate(over="ignore"):  # below -FLT_MAX the floor is -inf, not a warning
        t32 = _F32(value)
        if float(t32) > value:
            t32 = np.nextafter(t32, _F32(-np.inf))
    return _F32(t32)


def lightgbm_compare_threshold(value: float) -> np.float32:
    """Float32 threshold ``c`` such that ``x <= c`` reproduces LightGBM's branch for float32 x.

    LightGBM replaces ``x`` by 0.0 when ``|x| <= kZeroThreshold`` before comparing
    ``x <= value``. Outside that band this is :func:`float32_floor`; for thresholds inside
    ``[-kZeroThreshold, kZeroThreshold)`` the whole band must go the same way as 0.0.
    """
    z = K_ZERO_THRESHOLD  # exactly a float32 value
    if -z <= value < 0.0:
        # 0.0 goes right, so the band goes right: left iff x < -z.
        return _F32(np.nextafter(_F32(-z), _F32(-np.inf)))
    if 0.0 <= value < z:
        # 0.0 goes left, so the band goes left: left iff x <= z.
        return _F32(z)
    return float32_floor(value)


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ParsedEnsemble:
    """Flattened node tables of all trees of all boosters.

    Trees are stored booster by booster, in LightGBM's order. The nodes of tree ``t`` are
    entries ``tree_node_start[t]:tree_node_start[t + 1]`` of the per-node arrays, in pre-order
    (root first, then the left subtree, then the right subtree); child indices are local to
    the tree. A tree that is a single constant is one leaf node.

    ``threshold`` is LightGBM's double threshold (``+inf`` where the JSON dump says 1e300);
    ``threshold_f32`` is the largest float32 ``<= threshold``; ``threshold_cmp`` is the float32
    threshold the graphs actually compare against (equal to ``threshold_f32`` except for the
    thresholds inside LightGBM's zero band, see :func:`lightgbm_compare_threshold`).
    ``missing_left`` says where a NaN goes (derived from ``missing_type`` and
    ``default_left``). Leaf fields are NaN / -1 / False on internal nodes and vice versa.
    """

    n_outputs: int
    n_features: int
    tree_output: IntArray  # [T] output column (booster index) of each tree
    tree_node_start: IntArray  # [T + 1] offsets into the node arrays
    is_leaf: BoolArray  # [n_nodes]
    feature: IntArray  # [n_nodes] split feature, -1 on leaves
    threshold: DoubleArray  # [n_nodes] LightGBM's double threshold, NaN on leaves
    threshold_f32: FloatArray  # [n_nodes] largest float32 <= threshold, NaN on leaves
    threshold_cmp: FloatArray  # [n_nodes] float32 comparison threshold, NaN on leaves
    left: IntArray  # [n_nodes] tree-local index of the left child, -1 on leaves
    right: IntArray  # [n_nodes] tree-local index of the right child, -1 on leaves
    default_left: BoolArray  # [n_nodes]
    missing_type: npt.NDArray[np.int8]  # [n_nodes] MISSING_NONE or MISSING_NAN
    missing_left: BoolArray  # [n_nodes] True iff a NaN input goes to the left child
    leaf_value: DoubleArray  # [n_nodes] leaf output (shrinkage applied), NaN on internal nodes

    @property
    def n_trees(self) -> int:
        return int(self.tree_output.shape[0])

    @property
    def n_nodes(self) -> int:
        return int(self.is_leaf.shape[0])

    def tree_slice(self, tree: int) -> slice:
        return slice(int(self.tree_node_start[tree]), int(self.tree_node_start[tree + 1]))

    def split_thresholds(self) -> list[tuple[int, float]]:
        """``(feature, double threshold)`` of every internal node, for boundary tests."""
        internal = ~self.is_leaf
        return [
            (int(f), float(t))
            for f, t in zip(self.feature[internal], self.threshold[internal], strict=True)
        ]


class _NodeTable:
    """Growable columns of :class:`ParsedEnsemble`'s node arrays."""

    def __init__(self) -> None:
        self.is_leaf: list[bool] = []
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.left: list[int] = []
        self.right: list[int] = []
        self.default_left: list[bool] = []
        self.missing_type: list[int] = []
        self.leaf_value: list[float] = []

    def __len__(self) -> int:
        return len(self.is_leaf)

    def add(self) -> int:
        self.is_leaf.append(True)
        self.feature.append(-1)
        self.threshold.append(float("nan"))
        self.left.append(-1)
        self.right.append(-1)
        self.default_left.append(False)
        self.missing_type.append(MISSING_NONE)
        self.leaf_value.append(float("nan"))
        return len(self.is_leaf) - 1


def _parse_tree(
    root: Mapping[str, Any], table: _NodeTable, where: str, n_features: int
) -> None:
    """Append one tree in pre-order; child indices are relative to the tree's first node."""
    base = len(table)
    # Iterative pre-order walk (LightGBM trees can be deeper than Python's recursion limit
    # only in theory, but there is no reason to rely on that).
    stack: list[tuple[Mapping[str, Any], int, bool]] = [(root, -1, False)]
    while stack:
        node, parent, is_right = stack.pop()
        idx = table.add()
        local = idx - base
        if parent >= 0:
            if is_right:
                table.right[base + parent] = local
            else:
                table.left[base + parent] = local
        if "split_index" not in node:
            if "leaf_value" not in node:
                raise ValueError(f"{where}: node has neither split_index nor leaf_value")
            if "leaf_coeff" in node or "leaf_features" in node:
                raise NotImplementedError(
                    f"{where}: linear trees (linear_tree=True) are not supported by this "
                    "exporter; train with linear_tree=False"
                )
            table.leaf_value[idx] = float(node["leaf_value"])
            continue
        decision = node.get("decision_type", "<=")
        if decision != "<=":
            raise NotImplementedError(
                f"{where}: categorical split (decision_type {decision!r}) is not supported; "
                "integer-encode categories outside the model and train without "
                "categorical_feature"
            )
        missing_name = str(node.get("missing_type", "None"))
        if missing_name not in _MISSING_TYPES:
            raise ValueError(f"{where}: unknown missing_type {missing_name!r}")
        missing = _MISSING_TYPES[missing_name]
        if missing == MISSING_ZERO:
            raise NotImplementedError(
                f"{where}: missing_type 'Zero' (zero_as_missing=True) is not supported; "
                "train with zero_as_missing=False"
            )
        feature = int(node["split_feature"])
        if not 0 <= feature < n_features:
            raise ValueError(f"{where}: split_feature {feature} outside [0, {n_features})")
        threshold = float(node["threshold"])
        if np.isnan(threshold):
            raise ValueError(f"{where}: NaN threshold")
        if threshold >= _JSON_INF:
            # The JSON dump writes +inf (the upper bound of the last numeric bin, LightGBM's
            # "any number versus NaN" split) as 1e300 (Common::AvoidInf). The model itself
            # compares with +inf, so an input of +inf goes left. (For -1e300 the difference
            # between -1e300 and -inf cannot be seen with float32 inputs.)
            threshold = float("inf")
        table.is_leaf[idx] = False
        table.feature[idx] = feature
        table.threshold[idx] = threshold
        table.default_left[idx] = bool(node.get("default_left", False))
        table.missing_type[idx] = missing
        # Push right first so that the left subtree is numbered first (pre-order).
        stack.append((node["right_child"], local, True))
        stack.append((node["left_child"], local, False))
    for local in range(len(table) - base):
        idx = base + local
        if not table.is_leaf[idx] and (table.left[idx] < 0 or table.right[idx] < 0):
            raise ValueError(f"{where}: internal node without two children")


def _booster_dump(booster: lightgbm.Booster) -> dict[str, Any]:
    return dict(booster.dump_model())


def parse_boosters(boosters: Sequence[lightgbm.Booster]) -> ParsedEnsemble:
    """Flatten the trees of ``boosters`` (output column ``m`` = booster ``m``).

    Uses ``booster.dump_model()`` with its defaults, i.e. the same iterations as
    ``booster.predict`` with its defaults (the best iteration when one is recorded).
    All boosters must have been trained on the same feature columns.
    """
    if len(boosters) == 0:
        raise ValueError("need at least one booster")
    dumps = [_booster_dump(b) for b in boosters]
    feature_counts = {int(d["max_feature_idx"]) + 1 for d in dumps}
    if len(feature_counts) != 1:
        raise ValueError(
            f"boosters disagree on the number of features: {sorted(feature_counts)}"
        )
    n_features = feature_counts.pop()

    table = _NodeTable()
    tree_output: list[int] = []
    tree_start: list[int] = [0]
    for m, dump in enumerate(dumps):
        name = f"booster {m}"
        per_iter = int(dump.get("num_tree_per_iteration", 1))
        if per_iter != 1 or int(dump.get("num_class", 1)) != 1:
            raise NotImplementedError(
                f"{name}: {per_iter} trees per iteration (multiclass); only models with one "
                "output per booster are supported"
            )
        if bool(dump.get("average_output", False)):
            raise NotImplementedError(
                f"{name}: average_output=True (boosting='rf'): averaged forests are not "
                "supported, only summed boosting ensembles"
            )
        trees = dump.get("tree_info", [])
        if not trees:
            raise ValueError(f"{name}: the model has no trees")
        for tree in trees:
            where = f"{name}, tree {tree.get('tree_index', '?')}"
            if int(tree.get("num_cat", 0)) != 0:
                raise NotImplementedError(
                    f"{where}: categorical splits are not supported; integer-encode "
                    "categories outside the model"
                )
            _parse_tree(tree["tree_structure"], table, where, n_features)
            tree_output.append(m)
            tree_start.append(len(table))

    is_leaf = np.asarray(table.is_leaf, dtype=np.bool_)
    threshold = np.asarray(table.threshold, dtype=np.float64)
    threshold_f32 = np.full(threshold.shape, np.nan, dtype=np.float32)
    threshold_cmp = np.full(threshold.shape, np.nan, dtype=np.float32)
    for i in np.flatnonzero(~is_leaf):
        threshold_f32[i] = float32_floor(float(threshold[i]))
        threshold_cmp[i] = lightgbm_compare_threshold(float(threshold[i]))
    missing_type = np.asarray(table.missing_type, dtype=np.int8)
    default_left = np.asarray(table.default_left, dtype=np.bool_)
    # NaN handling of LightGBM's NumericalDecision: "NaN" -> default side; "None" -> NaN is
    # replaced by 0.0 and compared with the double threshold.
    with np.errstate(invalid="ignore"):
        zero_goes_left = np.asarray(threshold >= 0.0, dtype=np.bool_)
    missing_left = np.where(missing_type == MISSING_NAN, default_left, zero_goes_left)
    missing_left &= ~is_leaf
    return ParsedEnsemble(
        n_outputs=len(boosters),
        n_features=n_features,
        tree_output=np.asarray(tree_output, dtype=np.int64),
        tree_node_start=np.asarray(tree_start, dtype=np.int64),
        is_leaf=is_leaf,
        feature=np.asarray(table.feature, dtype=np.int64),
        threshold=threshold,
        threshold_f32=threshold_f32,
        threshold_cmp=threshold_cmp,
        left=np.asarray(table.left, dtype=np.int64),
        right=np.asarray(table.right, dtype=np.int64),
        default_left=default_left,
        missing_type=missing_type,
        missing_left=missing_left,
        leaf_value=np.asarray(table.leaf_value, dtype=np.float64),
    )


def _check_n_features(ens: ParsedEnsemble, n_features: int) -> None:
    if n_features < ens.n_features:
        raise ValueError(
            f"n_features={n_features} but the boosters were trained on {ens.n_features} "
            "features"
        )


def output_offsets(ens: ParsedEnsemble) -> FloatArray:
    """Per-output float32 constant moved out of the first tree's leaves, ``[M]``.

    LightGBM folds the init score (``boost_from_average``) into the first tree, so the running
    float32 sum over trees sits near that value from the first tree on. Both graphs subtract
    this offset (the mean leaf value of the booster's first tree, rounded to float32) from the
    first tree's leaves and add it back once at the end, so the float32 partial sums only carry
    the deviation from it; this roughly halves the summation error of typical models.
    """
    offsets = np.zeros(ens.n_outputs, dtype=np.float32)
    seen: set[int] = set()
    for t in range(ens.n_trees):
        m = int(ens.tree_output[t])
        if m in seen:
            continue
        seen.add(m)
        sl = ens.tree_slice(t)
        offsets[m] = _F32(np.mean(ens.leaf_value[sl][ens.is_leaf[sl]]))
    return offsets


def _first_trees(ens: ParsedEnsemble) -> set[int]:
    first: dict[int, int] = {}
    for t in range(ens.n_trees):
        first.setdefault(int(ens.tree_output[t]), t)
    return set(first.values())


def _leaf_values_f32(ens: ParsedEnsemble) -> FloatArray:
    """Leaf values as stored in the graphs: float32, first trees shifted by the offsets."""
    values = ens.leaf_value.copy()
    offsets = output_offsets(ens)
    for t in _first_trees(ens):
        values[ens.tree_slice(t)] -= float(offsets[int(ens.tree_output[t])])
    return values.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Reference evaluator (NumPy) and parity helper
# ---------------------------------------------------------------------------------------------


def reference_margins(ens: ParsedEnsemble, features: npt.ArrayLike) -> DoubleArray:
    """Evaluate the parsed ensemble in NumPy: float32 comparisons, float64 sums.

    Follows the same branch rules as the ONNX graphs, so it should match
    ``booster.predict(X, raw_score=True)`` to double rounding; used to debug and test the
    parser separately from onnxruntime.
    """
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] < ens.n_features:
        raise ValueError(f"expected float32 [N, >={ens.n_features}], got shape {x.shape}")
    n = x.shape[0]
    out = np.zeros((n, ens.n_outputs), dtype=np.float64)
    rows = np.arange(n)
    for t in range(ens.n_trees):
        start = int(ens.tree_node_start[t])
        node = np.zeros(n, dtype=np.int64)
        while True:
            glob = start + node
            active = ~ens.is_leaf[glob]
            if not active.any():
                break
            g = glob[active]
            xv = x[rows[active], ens.feature[g]]
            with np.errstate(invalid="ignore"):
                go_left = np.where(np.isnan(xv), ens.missing_left[g], xv <= ens.threshold_cmp[g])
            node[active] = np.where(go_left, ens.left[g], ens.right[g])
        out[:, int(ens.tree_output[t])] += ens.leaf_value[start + node]
    return out


def max_abs_diff(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Largest ``|a - b|`` in float64; ``inf`` if shapes differ or NaNs do not line up."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        return float("inf")
    nan_x, nan_y = np.isnan(x), np.isnan(y)
    if not np.array_equal(nan_x, nan_y):
        return float("inf")
    if x.size == 0 or nan_x.all():
        return 0.0
    with np.errstate(invalid="ignore"):
        diff = np.abs(x - y)
    return float(np.max(diff[~nan_x]))


# ---------------------------------------------------------------------------------------------
# ONNX: TreeEnsembleRegressor (CPU provider)
# ---------------------------------------------------------------------------------------------


def _io(n_features: int, n_outputs: int) -> tuple[onnx.ValueInfoProto, onnx.ValueInfoProto]:
    x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", n_features])
    y = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", n_outputs])
    return x, y


def _model(graph: onnx.GraphProto, opsets: list[onnx.OperatorSetIdProto]) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="hypermarker.models.training.export_onnx",
        producer_version="1",
    )
    model.ir_version = IR_VERSION
    return model


def to_tree_ensemble_onnx(ens: ParsedEnsemble, n_features: int) -> onnx.ModelProto:
    """One ``ai.onnx.ml.TreeEnsembleRegressor`` node (``n_targets = M``) for the CPU provider.

    Thresholds are the float32 comparison thresholds of :class:`ParsedEnsemble` with mode
    ``BRANCH_LEQ`` (true branch = LightGBM's left child); ``nodes_missing_value_tracks_true``
    sends NaNs left exactly where LightGBM does. Leaf weights are float32;
    ``base_values`` carries :func:`output_offsets` (onnxruntime adds it after the tree sum).
    """
    _check_n_features(ens, n_features)
    leaf_f32 = _leaf_values_f32(ens)
    node_tree: list[int] = []
    node_id: list[int] = []
    node_feature: list[int] = []
    node_mode: list[str] = []
    node_value: list[float] = []
    node_true: list[int] = []
    node_false: list[int] = []
    node_missing_true: list[int] = []
    target_tree: list[int] = []
    target_node: list[int] = []
    target_id: list[int] = []
    target_weight: list[float] = []
    for t in range(ens.n_trees):
        sl = ens.tree_slice(t)
        column = int(ens.tree_output[t])
        for local, glob in enumerate(range(sl.start, sl.stop)):
            node_tree.append(t)
            node_id.append(local)
            if ens.is_leaf[glob]:
                node_feature.append(0)
                node_mode.append("LEAF")
                node_value.append(0.0)
                node_true.append(0)
                node_false.append(0)
                node_missing_true.append(0)
                target_tree.append(t)
                target_node.append(local)
                target_id.append(column)
                target_weight.append(float(leaf_f32[glob]))
            else:
                node_feature.append(int(ens.feature[glob]))
                node_mode.append("BRANCH_LEQ")
                node_value.append(float(ens.threshold_cmp[glob]))
                node_true.append(int(ens.left[glob]))
                node_false.append(int(ens.right[glob]))
                node_missing_true.append(int(ens.missing_left[glob]))
    node = helper.make_node(
        "TreeEnsembleRegressor",
        inputs=[INPUT_NAME],
        outputs=[OUTPUT_NAME],
        domain="ai.onnx.ml",
        name="lightgbm_trees",
        n_targets=ens.n_outputs,
        aggregate_function="SUM",
        post_transform="NONE",
        nodes_treeids=node_tree,
        nodes_nodeids=node_id,
        nodes_featureids=node_feature,
        nodes_modes=node_mode,
        nodes_values=node_value,
        nodes_truenodeids=node_true,
        nodes_falsenodeids=node_false,
        nodes_missing_value_tracks_true=node_missing_true,
        target_treeids=target_tree,
        target_nodeids=target_node,
        target_ids=target_id,
        target_weights=target_weight,
        base_values=[float(v) for v in output_offsets(ens)],
    )
    x, y = _io(n_features, ens.n_outputs)
    graph = helper.make_graph([node], "lightgbm_tree_ensemble", [x], [y])
    return _model(
        graph,
        [helper.make_opsetid("", ONNX_OPSET), helper.make_opsetid("ai.onnx.ml", ONNX_ML_OPSET)],
    )


# ---------------------------------------------------------------------------------------------
# ONNX: tensorised form (CUDA provider)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TensorisedTables:
    """Constant tensors of the tensorised graph; trees laid out as ``[M, K1, K2]``.

    Booster ``m``'s tree ``k`` sits at ``[m, k // K2, k % K2]``; boosters with fewer than
    ``K1 * K2`` trees are padded with constant-zero trees. The sum over trees is done in two
    float32 stages (over ``K2``, then over ``K1``, with ``K2 ~ sqrt(K)``), which keeps the
    rounding error of ~300-tree sums well below that of one sequential float32 sum.

    ``I`` is one more than the largest number of internal nodes of one tree, ``L`` the
    largest number of leaves. ``path[..., l, i]`` is +1 if internal node ``i`` is an ancestor
    of leaf ``l`` whose left subtree holds ``l``, -1 if its right subtree does, 0 otherwise.
    The last node column ``I - 1`` of every tree is a bias node that always goes left
    (threshold ``+inf``, reading a row without NaNs) with ``path = -(number of left edges on
    the path to l)``. For a row with decisions ``d`` (1 = left), ``path @ d`` is then 0 for the
    leaf the row reaches and at most -1 for every other leaf (each wrong turn costs 1).
    Padding leaves get a bias of ``-I``, padding nodes a zero path column; padding trees are
    one leaf of value 0.

    ``column`` indexes the ``[2F, N]`` stack of the transposed input with NaN replaced by
    ``-inf`` (rows ``0..F-1``) above the untouched input (rows ``F..2F-1``): a node whose NaNs
    go left reads row ``f`` (``-inf <= t`` holds for every threshold), one whose NaNs go right
    reads row ``F + f`` (``NaN <= t`` is false). So the plain comparison routes NaNs per node
    without any per-node select on the big tensor.
    """

    column: IntArray  # [M, K1, K2, I] row of the [2F, N] input stack read by each node
    threshold: FloatArray  # [M, K1, K2, I, 1] float32 comparison thresholds
    path: FloatArray  # [M, K1, K2, L, I] path signs, last column = -(left-edge count)
    leaf_value: FloatArray  # [M, K1, K2, L] (first trees shifted by ``offset``)
    offset: FloatArray  # [M, 1] added after the tree sum, see output_offsets()


def tensorised_tables(ens: ParsedEnsemble, n_features: int) -> TensorisedTables:
    """Build the padded constant tensors of :func:`to_tensorised_onnx`."""
    _check_n_features(ens, n_features)
    m_out = ens.n_outputs
    k_max = int(np.bincount(ens.tree_output, minlength=m_out).max())
    k2 = max(1, int(np.ceil(np.sqrt(k_max))))
    k1 = -(-k_max // k2)
    internal_counts: list[int] = []
    leaf_counts: list[int] = []
    for t in range(ens.n_trees):
        sl = ens.tree_slice(t)
        leaves = int(ens.is_leaf[sl].sum())
        leaf_counts.append(leaves)
        internal_counts.append(sl.stop - sl.start - leaves)
    i_max = max(internal_counts) + 1  # + the bias node
    bias = i_max - 1
    l_max = max(leaf_counts)

    column = np.zeros((m_out, k1, k2, i_max), dtype=np.int64)
    threshold = np.zeros((m_out, k1, k2, i_max, 1), dtype=np.float32)
    path = np.zeros((m_out, k1, k2, l_max, i_max), dtype=np.float32)
    leaf_value = np.zeros((m_out, k1, k2, l_max), dtype=np.float32)
    # Bias node: row 0 of the stack has NaN -> -inf, so `x <= +inf` always holds.
    threshold[..., bias, 0] = np.inf
    # Padding leaves can never win; padding trees are one leaf 0 (value 0) reached by all.
    path[..., bias] = -float(i_max)
    path[..., 0, bias] = 0.0

    leaf_f32 = _leaf_values_f32(ens)
    slot = np.zeros(m_out, dtype=np.int64)
    for t in range(ens.n_trees):
        m = int(ens.tree_output[t])
        at = (m, int(slot[m]) // k2, int(slot[m]) % k2)
        slot[m] += 1
        sl = ens.tree_slice(t)
        n_local = sl.stop - sl.start
        is_leaf = ens.is_leaf[sl]
        # Tree-local node index -> internal-node column or leaf column.
        col = np.full(n_local, -1, dtype=np.int64)
        col[~is_leaf] = np.arange(int((~is_leaf).sum()))
        col[is_leaf] = np.arange(int(is_leaf.sum()))
        t_column, t_threshold = column[at], threshold[at]
        t_path, t_value = path[at], leaf_value[at]
        # Depth-first walk carrying the path as (internal column, +1 left / -1 right).
        stack: list[tuple[int, list[tuple[int, float]]]] = [(0, [])]
        while stack:
            local, anc = stack.pop()
            glob = sl.start + local
            if is_leaf[local]:
                leaf = int(col[local])
                for i, sign in anc:
                    t_path[leaf, i] = sign
                t_path[leaf, bias] = -float(sum(1 for _, s in anc if s > 0))
                t_value[leaf] = leaf_f32[glob]
                continue
            i = int(col[local])
            feature = int(ens.feature[glob])
            t_column[i] = feature if ens.missing_left[glob] else n_features + feature
            t_threshold[i, 0] = ens.threshold_cmp[glob]
            stack.append((int(ens.right[glob]), [*anc, (i, -1.0)]))
            stack.append((int(ens.left[glob]), [*anc, (i, 1.0)]))
    return TensorisedTables(
        column=column,
        threshold=threshold,
        path=path,
        leaf_value=leaf_value,
        offset=output_offsets(ens).reshape(m_out, 1),
    )


def to_tensorised_onnx(ens: ParsedEnsemble, n_features: int) -> onnx.ModelProto:
    """Plain-tensor-op graph (Hummingbird "GEMM" strategy) that the CUDA provider runs whole.

    With trees laid out as ``[M, K1, K2]`` (output column x tree slot), ``I`` internal nodes
    and ``L`` leaves per tree (padded; see :class:`TensorisedTables`), the graph is::

        XT  = Transpose(features)                                 [F, N]
        XA  = Concat(Where(IsNaN(XT), -inf, XT),
                     XT, axis=0)                                  [2F, N]
        G   = Gather(XA, column[M,K1,K2,I], axis=0)               [M, K1, K2, I, N]
        D   = Cast(LessOrEqual(G, threshold[M,K1,K2,I,1]), float) 1.0 = go left
        S   = MatMul(path[M,K1,K2,L,I], D)                        [M, K1, K2, L, N]
        idx = ArgMax(S, axis=3)                                   reached leaf (S = 0 there)
        V   = GatherElements(leaf_value[M,K1,K2,L], idx, axis=3)  [M, K1, K2, N]
        out = Transpose(ReduceSum(ReduceSum(V, [2]), [1]) + offset[M,1])  [N, M]

    Gather (not a one-hot MatMul, where NaN * 0 = NaN would poison every node) selects the
    feature of every node. Only constant initializers are used (no Shape or dynamic Reshape,
    whose shape subgraphs onnxruntime would place on the CPU). Leaf values are selected with
    ArgMax + GatherElements rather than a MatMul, so the CUDA provider's TF32 matmul mode
    cannot round them; the path MatMul only sees 0, +1, -1 and small integer sums, which
    TF32 represents exactly. Everything is float32.
    """
    tab = tensorised_tables(ens, n_features)
    inits = [
        numpy_helper.from_array(tab.column, "node_column"),
        numpy_helper.from_array(tab.threshold, "node_threshold"),
        numpy_helper.from_array(tab.path, "leaf_path"),
        numpy_helper.from_array(tab.leaf_value, "leaf_value"),
        numpy_helper.from_array(tab.offset, "output_offset"),
        numpy_helper.from_array(np.asarray([2], dtype=np.int64), "inner_tree_axis"),
        numpy_helper.from_array(np.asarray([1], dtype=np.int64), "outer_tree_axis"),
        numpy_helper.from_array(np.asarray(-np.inf, dtype=np.float32), "neg_inf"),
    ]
    nodes = [
        helper.make_node("Transpose", [INPUT_NAME], ["xt"], perm=[1, 0], name="transpose_in"),
        helper.make_node("IsNaN", ["xt"], ["xt_nan"], name="is_nan"),
        helper.make_node("Where", ["xt_nan", "neg_inf", "xt"], ["xt_nan_left"], name="nan_lo"),
        helper.make_node("Concat", ["xt_nan_left", "xt"], ["xa"], axis=0, name="stack_nan"),
        helper.make_node("Gather", ["xa", "node_column"], ["x_node"], axis=0, name="gather"),
        helper.make_node("LessOrEqual", ["x_node", "node_threshold"], ["le"], name="compare"),
        helper.make_node("Cast", ["le"], ["go_left"], to=TensorProto.FLOAT, name="cast_le"),
        helper.make_node("MatMul", ["leaf_path", "go_left"], ["path_score"], name="path"),
        helper.make_node(
            "ArgMax", ["path_score"], ["leaf_index"], axis=3, keepdims=0, name="leaf_index"
        ),
        helper.make_node(
            "GatherElements",
            ["leaf_value", "leaf_index"],
            ["tree_value"],
            axis=3,
            name="leaf_value_lookup",
        ),
        helper.make_node(
            "ReduceSum",
            ["tree_value", "inner_tree_axis"],
            ["chunk_sum"],
            keepdims=0,
            name="sum_trees_inner",
        ),
        helper.make_node(
            "ReduceSum",
            ["chunk_sum", "outer_tree_axis"],
            ["tree_sum"],
            keepdims=0,
            name="sum_trees_outer",
        ),
        helper.make_node("Add", ["tree_sum", "output_offset"], ["sum_mn"], name="add_offset"),
        helper.make_node("Transpose", ["sum_mn"], [OUTPUT_NAME], perm=[1, 0], name="transpose"),
    ]
    x, y = _io(n_features, ens.n_outputs)
    graph = helper.make_graph(nodes, "lightgbm_tensorised", [x], [y], initializer=inits)
    model = _model(graph, [helper.make_opsetid("", ONNX_OPSET)])
    used = {n.op_type for n in model.graph.node}
    if not used <= CUDA_OPS:  # pragma: no cover - guards edits of this function
        raise AssertionError(f"ops outside CUDA_OPS: {sorted(used - CUDA_OPS)}")
    return model

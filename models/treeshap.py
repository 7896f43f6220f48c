"""Exact path-dependent TreeSHAP for LightGBM text models, in numpy, without LightGBM.

The service explains with this (no LightGBM import: faster start, less memory); its equality
with LightGBM's own ``pred_contrib`` (the TreeSHAP of Lundberg et al. 2020, also used by
``shap.TreeExplainer``) is checked by ``hypermarker model verify`` and the tests.

Method. For one tree, the path-dependent value function is
``v(S) = sum_leaves value * prod_{j in P} (o_j if j in S else z_j)``, where ``P`` are the
distinct features on the leaf's path, ``o_j`` is 1 if the row follows the path at every split
on ``j`` and ``z_j`` the product of the path's cover fractions at those splits. Each leaf term
is a product game, whose Shapley values are, for ``i`` in ``P`` with ``m = |P|``:
``phi_i = value * (o_i - z_i) * sum_{S subset P-i} |S|!(m-|S|-1)!/m! prod_S o prod_{P-i-S} z``.
Since every ``o_j`` is 0 or 1 this depends on the row only through which path features agree,
a bit mask of at most ``D`` bits (``D`` = the most distinct features on a path). So the
per-slot values for every leaf and every mask are tabulated once at load, and explaining a row
is: evaluate each path split, pack the agreement mask, look the slot values up and add them to
their features. Leaves with fewer than ``D`` features are padded with null players
(``o = z = 1``), which leaves the Shapley values unchanged.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import sparse

F64 = npt.NDArray[np.float64]
ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM kZeroThreshold (1e-35f): |x| <= it is 0
INF_THRESHOLD = 1e300  # LightGBM writes +inf thresholds as 1e300


class ModelFormatError(ValueError):
    """The LightGBM text model uses something this explainer does not support."""


@dataclass(frozen=True)
class _Tree:
    split_feature: list[int]
    threshold: list[float]
    decision_type: list[int]
    left: list[int]
    right: list[int]
    leaf_value: list[float]
    leaf_count: list[float]
    internal_count: list[float]


def _floats(v: str) -> list[float]:
    return [float(t) for t in v.split()]


def _ints(v: str) -> list[int]:
    return [int(t) for t in v.split()]


def parse_lightgbm_text(text: str) -> tuple[list[str], list[_Tree]]:
    """Feature names and trees of a LightGBM text model (``Booster.save_model``)."""
    head, _, body = text.partition("\nTree=")
    fields = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
    if int(fields.get("num_tree_per_iteration", "1")) != 1:
        raise ModelFormatError("multiclass models are not supported")
    names = fields.get("feature_names", "").split()
    trees = []
    for block in ("Tree=" + body).split("\nTree=")[0:]:
        block = block.split("end of trees")[0]
        kv = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "num_leaves" not in kv:
            continue
        if int(kv.get("num_cat", "0")) or kv.get("is_linear", "0") != "0":
            raise ModelFormatError("categorical splits and linear trees are not supported")
        n_leaves = int(kv["num_leaves"])
        if n_leaves == 1:
            trees.append(_Tree([], [], [], [], [], _floats(kv["leaf_value"]), [1.0], []))
            continue
        trees.append(_Tree(_ints(kv["split_feature"]), _floats(kv["threshold"]),
                           _ints(kv["decision_type"]), _ints(kv["left_child"]),
                           _ints(kv["right_child"]), _floats(kv["leaf_value"]),
                           _floats(kv["leaf_count"]), _floats(kv["internal_count"])))
    return names, trees


def _shapley_weights(m: int) -> F64:
    return np.array([math.factorial(k) * math.factorial(m - k - 1) / math.factorial(m)
                     for k in range(m)])


def _pack_bytes(b: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """[..., 8] bytes of 0/1 -> [...] integers with bit k = byte k (``np.packbits`` along
    the last axis, little bit order, without its per-element loop): the eight bytes read as
    one little-endian uint64 and times 0x0102040810204080 carry byte k's bit to bit 56 + k."""
    if sys.byteorder != "little":
        return np.packbits(b, axis=-1, bitorder="little")[..., 0].astype(np.int64)
    words = np.ascontiguousarray(b).view(np.uint64)[..., 0]
    return ((words * np.uint64(0x0102040810204080)) >> np.uint64(56)).astype(np.int64)


class TreeShap:
    """Tabulated exact TreeSHAP of one LightGBM model (see the module docstring)."""

    def __init__(self, names: list[str], trees: list[_Tree]) -> None:
        self.n_features = len(names)
        self.feature_names = tuple(names)
        paths: list[list[tuple[int, float, int, bool, int]]] = []  # (feat, thr, dtype, left?, n)
        values: list[float] = []
        counts: list[tuple[list[float], float]] = []
        base = 0.0
        for t in trees:
            if not t.split_feature:
                base += t.leaf_value[0]
                continue
            root = t.internal_count[0]
            stack: list[tuple[int, list[tuple[int, float, int, bool, int]], list[float]]] = [
                (0, [], [])]
            while stack:
                node, path, fracs = stack.pop()
                if node < 0:
                    leaf = ~node
                    paths.append(path)
                    counts.append((fracs, 0.0))
                    values.append(t.leaf_value[leaf])
                    base += t.leaf_value[leaf] * t.leaf_count[leaf] / root
                    continue
                dt = t.decision_type[node]
                if dt & 1:
                    raise ModelFormatError("categorical split")
                if (dt >> 2) & 3 == 1:
                    raise ModelFormatError("zero-as-missing splits are not supported")
                for child, is_left in ((t.left[node], True), (t.right[node], False)):
                    c = (t.internal_count[child] if child >= 0 else t.leaf_count[~child])
                    stack.append((child, [*path, (t.split_feature[node], t.threshold[node], dt,
                                                  is_left, node)],
                                  [*fracs, c / t.internal_count[node]]))
        self.expected_value = base
        n_leaves = len(paths)
        k_max = max((len(p) for p in paths), default=1)
        slots_per_leaf = [list(dict.fromkeys(f for f, *_ in p)) for p in paths]
        d = max((len(s) for s in slots_per_leaf), default=1)
        self.depth = d
        feat = np.zeros((n_leaves, k_max), dtype=np.intp)
        thr = np.full((n_leaves, k_max), np.inf)  # padding nodes: always "left" = agree
        nan_left = np.ones((n_leaves, k_max), dtype=bool)
        went_left = np.ones((n_leaves, k_max), dtype=bool)
        bit = np.zeros((n_leaves, k_max), dtype=np.int64)
        z = np.ones((n_leaves, d))
        slot_feature = np.zeros((n_leaves, d), dtype=np.intp)
        slot_used = np.zeros((n_leaves, d), dtype=bool)
        for li, (path, (fracs, _), slots) in enumerate(zip(paths, counts, slots_per_leaf,
                                                            strict=True)):
            for k, ((f, th, dt, is_left, _), frac) in enumerate(zip(path, fracs, strict=True)):
                s = slots.index(f)
                feat[li, k] = f
                thr[li, k] = np.inf if th >= INF_THRESHOLD else th
                missing_nan = (dt >> 2) & 3 == 2
                nan_left[li, k] = bool(dt & 2) if missing_nan else (thr[li, k] >= 0.0)
                went_left[li, k] = is_left
                bit[li, k] = 1 << s
                z[li, s] *= frac
            for s, f in enumerate(slots):
                slot_feature[li, s] = f
                slot_used[li, s] = True
        valid = np.zeros((n_leaves, k_max), dtype=bool)
        for li, p in enumerate(paths):
            valid[li, : len(p)] = True
        if k_max > 8:
            raise ModelFormatError(f"paths of {k_max} splits: at most 8 are supported")
        self._k = k_max
        # A node "agrees" when the row takes the path's branch. The rows are stacked twice,
        # [x with NaN -> -inf ; x with NaN kept], and each node reads the copy that sends NaN
        # its way: -inf is <= any threshold (left), NaN compares false (right). Right branches
        # flip the comparison; padding nodes always agree.
        n_feat = len(names)
        # Leaf-major [L*K] so that each row's K node bits of a leaf are adjacent (packbits
        # along the last axis) and the gather runs along contiguous rows.
        # Each leaf gets 8 node slots (a row's 8 agreement bytes read as one uint64); the
        # slots past k_max never agree (first copy, x <= +inf, flipped), so their bits are 0.
        fill = ((0, 8 - k_max),)
        col = feat + np.where(nan_left, 0, n_feat)
        self._col = np.pad(col, ((0, 0), *fill)).reshape(-1)
        self._thr = np.pad(thr, ((0, 0), *fill), constant_values=np.inf).reshape(-1)
        self._flip = np.pad(~went_left, ((0, 0), *fill), constant_values=True).reshape(-1)
        self._pad = np.pad(~valid, ((0, 0), *fill), constant_values=False).reshape(-1)
        # Table of per-slot contributions for every leaf and node-agreement mask:
        # [L, 2^K, D]; a slot agrees when all its nodes agree.
        masks = np.arange(1 << k_max)
        node_ok = ((masks[:, None] >> np.arange(k_max)[None, :]) & 1).astype(bool)  # [M, K]
        slot_of = np.where(valid, np.log2(np.maximum(bit, 1)).astype(np.intp), -1)  # [L, K]
        o = np.ones((n_leaves, 1 << k_max, d))
        for k in range(k_max):
            s_k = slot_of[:, k]
            has = s_k >= 0
            fail = ~node_ok[:, k]  # [M]
            rows = np.flatnonzero(has)
            o[rows[:, None], np.flatnonzero(fail)[None, :], s_k[rows][:, None]] = 0.0
        o = np.where(slot_used[:, None, :], o, 1.0)  # pads are null players
        zz = np.broadcast_to(z[:, None, :], o.shape)
        w = _shapley_weights(d)
        table = np.zeros(o.shape)
        for i in range(d):
            # coefficients of prod_{j != i} (z_j + o_j t), degree <= d - 1
            coef = np.zeros((*o.shape[:2], d))
            coef[..., 0] = 1.0
            for j in range(d):
                if j == i:
                    continue
                shifted = np.concatenate([np.zeros((*o.shape[:2], 1)), coef[..., :-1]], axis=2)
                coef = coef * zz[..., j:j + 1] + shifted * o[..., j:j + 1]
            table[..., i] = (o[..., i] - zz[..., i]) * (coef @ w)
        table *= np.asarray(values)[:, None, None]
        table[~np.broadcast_to(slot_used[:, None, :], table.shape)] = 0.0
        self._table = table.reshape(n_leaves * (1 << k_max), d)
        self._row_offset = np.arange(n_leaves, dtype=np.int64) * (1 << k_max)
        cols = slot_feature.ravel()
        rows = np.arange(n_leaves * d)
        self._scatter = sparse.csr_matrix(
            (slot_used.ravel().astype(np.float64), (rows, cols)),
            shape=(n_leaves * d, self.n_features))
        self._scatter_t = self._scatter.T.tocsr()

    @classmethod
    def from_file(cls, path: Path) -> TreeShap:
        names, trees = parse_lightgbm_text(path.read_text(encoding="utf-8"))
        return cls(names, trees)

    def shap_values(self, x: npt.ArrayLike, chunk: int = 256) -> tuple[F64, F64]:
        """(contributions [N, F], output [N]) for rows ``x`` (cast to float32 first, as the
        served model sees them); output = expected_value + contributions.sum(1). Large
        batches run in chunks of ``chunk`` rows to bound memory."""
        xa = np.asarray(x, dtype=np.float32)
        if xa.shape[0] > chunk:
            parts = [self.shap_values(xa[i:i + chunk], chunk) for i in range(0, len(xa), chunk)]
            return (np.vstack([p[0] for p in parts]),
                    np.concatenate([p[1] for p in parts]))
        xs = xa.astype(np.float64)
        xs = np.where(np.abs(xs) <= ZERO_THRESHOLD, 0.0, xs)  # [N, F]
        n = xs.shape[0]
        both = np.concatenate([np.where(np.isnan(xs), -np.inf, xs), xs], axis=1)  # [N, 2F]
        agree = ((both.take(self._col, axis=1) <= self._thr) ^ self._flip) | self._pad
        idx = _pack_bytes(agree.view(np.uint8).reshape(n, -1, 8)) + self._row_offset  # [N, L]
        contrib = self._table.take(idx, axis=0).reshape(n, -1)  # [N, L*D]
        # Row by row: each row is a contiguous vector for the sparse scatter (the [L*D, N]
        # transpose of the whole batch would be copied first, which cost more).
        phi = np.empty((n, self.n_features))
        for i in range(n):
            phi[i] = self._scatter_t @ contrib[i]
        return phi, phi.sum(axis=1) + self.expected_value

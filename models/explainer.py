"""SHAP explanations of the served point prediction, from the LightGBM model beside the ONNX.

The ONNX forms are converted from these very LightGBM models and their parity is checked by
``hypermarker model verify``; exact path-dependent TreeSHAP of the LightGBM text model
(:mod:`models.treeshap`, equal to LightGBM's ``pred_contrib`` / ``shap.TreeExplainer`` to
1e-12 in the tests) therefore explains the served output: base value + contributions equals
the served ``sbp_change`` margin to within the float32 rounding of the ONNX runtime (checked to
1e-4). LightGBM itself is not imported at serving time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.manifest import ROLE_LGB_PREFIX, Manifest
from models.treeshap import TreeShap

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Explanation:
    """SHAP values for N rows: ``output = base_value + contributions.sum(axis=1)``."""

    feature_names: tuple[str, ...]
    base_value: float
    contributions: F64
    output: F64


class Explainer:
    """Exact TreeSHAP of one output (default: the point SBP change)."""

    def __init__(self, shap: TreeShap, feature_names: tuple[str, ...]) -> None:
        if shap.feature_names != feature_names:
            raise ValueError("the LightGBM model's features differ from the manifest's")
        self._shap = shap
        self.feature_names = feature_names

    @classmethod
    def load(cls, manifest: Manifest, output: str = "sbp_change") -> Explainer:
        path: Path = manifest.file(ROLE_LGB_PREFIX + output)
        return cls(TreeShap.from_file(path), manifest.feature_names)

    def explain(self, features: npt.ArrayLike) -> Explanation:
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(f"expected [N, {len(self.feature_names)}] features, got {x.shape}")
        phi, out = self._shap.shap_values(x)
        return Explanation(self.feature_names, self._shap.expected_value, phi, out)

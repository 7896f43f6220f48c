"""SHAP explanations of the served point prediction, from the LightGBM model beside the ONNX.

The ONNX forms are converted from these very boosters and their parity is checked by
``hypermarker model verify``, so exact TreeSHAP on the booster (LightGBM's ``pred_contrib``,
the same computation as ``shap.TreeExplainer`` with path-dependent perturbation) explains the
served output: base value + contributions equals the served ``sbp_change`` margin to within the
float32 rounding of the ONNX runtime (checked to 1e-4 in the tests and by ``model verify``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from models.manifest import ROLE_LGB_PREFIX, Manifest

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

    def __init__(self, booster: lgb.Booster, feature_names: tuple[str, ...],
                 threads: int = 0) -> None:
        self._booster = booster
        self.feature_names = feature_names
        self._threads = threads  # 0 = LightGBM's default (all cores)

    @classmethod
    def load(cls, manifest: Manifest, output: str = "sbp_change", threads: int = 0) -> Explainer:
        path: Path = manifest.file(ROLE_LGB_PREFIX + output)
        booster = lgb.Booster(model_file=str(path))
        return cls(booster, manifest.feature_names, threads)

    def explain(self, features: npt.ArrayLike) -> Explanation:
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(f"expected [N, {len(self.feature_names)}] features, got {x.shape}")
        contrib = np.asarray(
            self._booster.predict(x, pred_contrib=True, num_threads=self._threads), dtype=np.float64
        )
        phi = contrib[:, :-1]
        base = contrib[:, -1]
        return Explanation(self.feature_names, float(base[0]) if len(base) else 0.0, phi,
                           phi.sum(axis=1) + base)

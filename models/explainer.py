"""SHAP explanations of the served expected effect, from the LightGBM model beside the ONNX.

What is explained is ``effect_change`` (:data:`EXPLAINED_OUTPUT`): the option's own expected
effect, what the ranking compares (issue 15). The point prediction of one clinic reading
(``sbp_change``) also carries the regression to the mean of the decision reading, the same for
every option of a patient, so its drivers would explain that rather than the choice.

The ONNX forms are converted from these very LightGBM models and their parity is checked by
``hypermarker model verify``; exact path-dependent TreeSHAP of the LightGBM text model
(:mod:`models.treeshap`, equal to LightGBM's ``pred_contrib`` / ``shap.TreeExplainer`` to
1e-12 in the tests) therefore explains the served output: base value + contributions equals
the served ``effect_change`` margin (ONNX output column :attr:`Explainer.column`) to within the
float32 rounding of the ONNX runtime (checked to 1e-4). LightGBM itself is not imported at
serving time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.manifest import OUTPUTS, ROLE_LGB_PREFIX, Manifest
from models.treeshap import TreeShap

F64 = npt.NDArray[np.float64]

#: The served output the drivers explain (module docstring).
EXPLAINED_OUTPUT = "effect_change"


@dataclass(frozen=True, slots=True)
class Explanation:
    """SHAP values for N rows: ``output = base_value + contributions.sum(axis=1)``."""

    feature_names: tuple[str, ...]
    base_value: float
    contributions: F64
    output: F64


class Explainer:
    """Exact TreeSHAP of one output (default: the expected effect, ``effect_change``)."""

    def __init__(self, shap: TreeShap, feature_names: tuple[str, ...],
                 output: str = EXPLAINED_OUTPUT) -> None:
        if shap.feature_names != feature_names:
            raise ValueError("the LightGBM model's features differ from the manifest's")
        if output not in OUTPUTS:
            raise ValueError(f"unknown model output {output!r}; one of {OUTPUTS}")
        self._shap = shap
        self.feature_names = feature_names
        self.output = output
        self.column = OUTPUTS.index(output)
        """The column of the served ONNX output (``margins``) this explainer explains."""

    @classmethod
    def load(cls, manifest: Manifest, output: str = EXPLAINED_OUTPUT) -> Explainer:
        path: Path = manifest.file(ROLE_LGB_PREFIX + output)
        return cls(TreeShap.from_file(path), manifest.feature_names, output)

    def explain(self, features: npt.ArrayLike) -> Explanation:
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(f"expected [N, {len(self.feature_names)}] features, got {x.shape}")
        phi, out = self._shap.shap_values(x)
        return Explanation(self.feature_names, self._shap.expected_value, phi, out)

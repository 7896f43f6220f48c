"""``hypermarker model verify``: checksums, ONNX-vs-LightGBM parity and SHAP additivity.

The parity set mixes simulated patient-option rows with adversarial rows: every split
threshold of every tree exactly (the float32 value the node compares with) and one float32 step
either side of it, NaN in every column, +-inf, +-3e38, signed zeros and a subnormal-range value
that LightGBM rounds to zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from models.errors import ModelError
from models.explainer import Explainer
from models.manifest import (
    DEFAULT_ARTIFACTS,
    OUTPUTS,
    ROLE_LGB_PREFIX,
    ROLE_ONNX_TENSOR,
    ROLE_ONNX_TREE,
    load_manifest,
)
from models.scorer import CPU, CUDA, Scorer, open_session
from models.training.dataset import option_rows
from models.training.export_onnx import parse_boosters
from models.training.simulator import simulate_cohort

TOLERANCE = 1e-4
F32 = npt.NDArray[np.float32]


def parity_set(boosters: list[lgb.Booster], n_features: int, seed: int = 99) -> F32:
    """Simulated rows plus threshold-boundary, NaN, infinite and extreme rows."""
    rng = np.random.default_rng(seed)
    base = option_rows(simulate_cohort(400, "internal", seed)).features
    ens = parse_boosters(boosters)
    internal = ~ens.is_leaf & np.isfinite(ens.threshold_cmp)
    pairs = np.unique(np.column_stack([ens.feature[internal],
                                       ens.threshold_cmp[internal].astype(np.float64)]), axis=0)
    feat = pairs[:, 0].astype(np.intp)
    t32 = pairs[:, 1].astype(np.float32)  # the exact float32 each node compares with
    values = np.concatenate([t32, np.nextafter(t32, np.float32(np.inf)),
                             np.nextafter(t32, np.float32(-np.inf))])
    cols = np.tile(feat, 3)
    boundary = base[rng.integers(0, len(base), len(values))].copy()
    boundary[np.arange(len(values)), cols] = values
    specials = []
    for v in (np.nan, np.inf, -np.inf, 3e38, -3e38, 0.0, -0.0, 1e-36):
        block = base[rng.integers(0, len(base), n_features)].copy()
        block[np.arange(n_features), np.arange(n_features)] = v
        specials.append(block)
    all_nan = np.full((1, n_features), np.nan, dtype=np.float32)
    return np.ascontiguousarray(np.vstack([base, boundary, *specials, all_nan]), dtype=np.float32)


def _max_abs(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def verify(directory: Path = DEFAULT_ARTIFACTS) -> dict[str, Any]:
    """Run every check; ``report["passed"]`` is the overall verdict."""
    manifest = load_manifest(directory)
    checksums = manifest.checksum_report()
    report: dict[str, Any] = {
        "model_id": manifest.model_id,
        "version": manifest.version,
        "artifacts": str(directory),
        "checksums": {"passed": all(checksums.values()), "files": checksums},
        "tolerance": TOLERANCE,
    }
    try:
        manifest.verify()
        report["feature_schema"] = {"passed": True}
    except ModelError as e:
        report["feature_schema"] = {"passed": False, "error": str(e)}
        report["passed"] = False
        return report

    boosters = [lgb.Booster(model_file=str(manifest.file(ROLE_LGB_PREFIX + o))) for o in OUTPUTS]
    x = parity_set(boosters, len(manifest.feature_names))
    reference = np.column_stack([b.predict(x, raw_score=True) for b in boosters])
    report["parity_rows"] = len(x)

    forms: dict[str, Any] = {}
    targets = [(ROLE_ONNX_TREE, CPU), (ROLE_ONNX_TENSOR, CPU)]
    if CUDA in ort.get_available_providers():
        targets.append((ROLE_ONNX_TENSOR, CUDA))
    for role, provider in targets:
        sess = open_session(manifest.file(role), provider, threads=0)
        out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        diffs = {o: _max_abs(out[:, i], reference[:, i]) for i, o in enumerate(OUTPUTS)}
        forms[f"{role}@{provider}"] = {
            "max_abs_diff": diffs, "passed": max(diffs.values()) < TOLERANCE,
        }
    if CUDA not in ort.get_available_providers():
        forms["cuda"] = "not checked: onnxruntime offers no CUDA provider on this machine"
    report["onnx_vs_lightgbm"] = forms

    scorer = Scorer.load(directory, manifest=manifest)
    explainer = Explainer.load(manifest)  # the output the drivers explain (effect_change)
    served = scorer.margins(x)[:, explainer.column]
    expl = explainer.explain(x)
    add_served = _max_abs(expl.output, served)
    add_lgb = _max_abs(expl.output, reference[:, explainer.column])
    report["shap_additivity"] = {
        "output": explainer.output,
        "served_form": f"{scorer.form}@{scorer.provider}",
        "max_abs_error_vs_served": add_served,
        "max_abs_error_vs_lightgbm": add_lgb,
        "passed": add_served < TOLERANCE,
    }
    report["passed"] = bool(
        report["checksums"]["passed"]
        and all(v["passed"] for v in forms.values() if isinstance(v, dict))
        and report["shap_additivity"]["passed"]
    )
    return report

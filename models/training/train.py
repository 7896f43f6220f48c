"""Train the treatment-response models on a simulated cohort and write the artifacts.

``hypermarker train [--seed N] [--out DIR]`` calls :func:`train`. For a given seed and
configuration the run is deterministic (LightGBM ``deterministic=True`` with a fixed thread
count), so re-running it reproduces the committed artifacts and their metrics.

Seven LightGBM models share one feature table (rows are (patient, option) pairs):

* ``sbp_change``: 12-week change in clinic systolic BP (L2 regression on the observed change:
  the 12-week reading minus the decision reading, so it includes regression to the mean);
* ``sbp_lower`` / ``sbp_upper``: the 10th and 90th percentiles (quantile regression), widened by
  split-conformal calibration (conformalised quantile regression, Romano et al. NeurIPS 2019)
  on a held-out calibration split so that the interval covers a single observed 12-week change
  with the stated probability (the *reading interval*: what the clinician will see);
* ``target_logit``: log-odds that the 12-week clinic systolic reading is below the patient's
  NICE target (binary cross-entropy);
* ``effect_change``: the person's expected change (the simulator's noise-free, person-level
  truth: drug effect at the person's adherence, stopping averaged out; no regression to the
  mean) given the features (L2 regression): what says whether an option lowers BP;
* ``effect_lower`` / ``effect_upper``: the 10th and 90th percentiles of that expected change,
  conformalised on the same calibration split against the truth (the *effect interval*: the
  spread of the expected effect among patients like this one, what ranking uses). Only a
  simulator can train it; a site can
  recalibrate both intervals from its own outcomes (:mod:`evaluation.recalibration`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import onnx

from models.guideline.targets import nice_clinic_systolic_target
from models.manifest import (
    MANIFEST_NAME,
    OUTPUTS,
    ROLE_LGB_PREFIX,
    ROLE_ONNX_TENSOR,
    ROLE_ONNX_TREE,
    sha256_file,
)
from models.model_rows import PATIENT_MODEL_COLUMNS
from models.training import metrics
from models.training.dataset import OptionRows, option_rows
from models.training.export_onnx import parse_boosters, to_tensorised_onnx, to_tree_ensemble_onnx
from models.training.model_card import render_model_card
from models.training.simulator import (
    Cohort,
    Outcomes,
    ResponseParameters,
    response_parameters,
    simulate_cohort,
    simulate_outcomes,
)
from vocabulary.feature_table import (
    MODEL_FEATURE_NAMES,
    PATIENT_MODEL_FEATURE_NAMES,
    model_feature_hash,
)

MODEL_ID = "hypermarker-sbp-response"
#: 2.0.0 (issue 14): retrained on the harder simulated world, seven outputs (the expected
#: effect and its interval added): the audit record and the cards must tell it from 1.0.0.
MODEL_VERSION = "2.0.0"
F64 = npt.NDArray[np.float64]

INTENDED_USE = (
    "Decision support for adults (18+) with diagnosed primary hypertension in primary care who "
    "are starting or stepping up antihypertensive treatment: ranks candidate next regimens by "
    "predicted 12-week change in clinic systolic BP. Trained ONLY on a simulated cohort "
    "calibrated to published trial summaries; NOT clinically validated; not for pregnancy, "
    "children, acute or secondary hypertension. A clinician makes every decision."
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the artifacts (recorded in the manifest)."""

    seed: int = 20261124
    n_patients: int = 60_000
    n_external: int = 20_000
    split: tuple[float, float, float] = (0.70, 0.15, 0.15)  # train / calibration / test
    coverage: float = 0.80
    quantiles: tuple[float, float] = (0.10, 0.90)
    rounds: int = 300
    effect_rounds: int = 100
    """Rounds of the three expected-effect models (a smooth, noise-free target needs fewer;
    keeps training time within about a quarter of the four-model run)."""
    response_table: str = "head_to_head"
    """Drug-response table of the simulator: ``head_to_head`` (ACEi = ARB) or
    ``law2003_cross_trial`` (the old table; the sensitivity run of issue 14)."""
    lgb_params: dict[str, Any] = field(
        default_factory=lambda: {
            "num_leaves": 15,
            "max_depth": 6,
            "learning_rate": 0.08,
            "min_data_in_leaf": 200,
            "lambda_l2": 1.0,
            "zero_as_missing": False,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": 2,
            "verbose": -1,
        }
    )


@dataclass(frozen=True)
class _Data:
    cohort: Cohort
    rows: OptionRows
    outcomes: Outcomes
    target: F64
    reached: npt.NDArray[np.bool_]
    p_reach_true: F64


def _prepare(n: int, site: str, seed: int, response: ResponseParameters) -> _Data:
    cohort = simulate_cohort(n, site, seed, response=response)
    rows = option_rows(cohort)
    out = simulate_outcomes(cohort, rows.patient_idx, rows.dose_after, seed + 1)
    names = list(PATIENT_MODEL_FEATURE_NAMES)
    patient = cohort.features[:, PATIENT_MODEL_COLUMNS]
    target = nice_clinic_systolic_target(
        patient[:, names.index("age")],
        patient[:, names.index("ckd")],
        patient[:, names.index("urine_acr")],
    )[rows.patient_idx]
    reached = out.followup_sbp_observed < target
    p_true = out.p_reading_below(target)
    return _Data(cohort, rows, out, target, reached, np.asarray(p_true, dtype=np.float64))


def _fit(x: npt.NDArray[np.float32], y: F64, params: dict[str, Any], rounds: int) -> lgb.Booster:
    ds = lgb.Dataset(
        x,
        label=y,
        feature_name=list(MODEL_FEATURE_NAMES),
        free_raw_data=True,
        params={"verbose": -1},
    )
    return lgb.train(params, ds, num_boost_round=rounds)


def _predict_all(boosters: list[lgb.Booster], x: npt.NDArray[np.float32]) -> F64:
    return np.column_stack([b.predict(x, raw_score=True, num_threads=2) for b in boosters])


def _interval(margins: F64, q: float) -> tuple[F64, F64]:
    point = margins[:, 0]
    lo = np.minimum(np.minimum(margins[:, 1], margins[:, 2]) - q, point)
    hi = np.maximum(np.maximum(margins[:, 1], margins[:, 2]) + q, point)
    return lo, hi


def _effect_interval(margins: F64, q: float) -> tuple[F64, F64]:
    """The served effect interval: the ordered effect quantiles widened by ``q``, always
    containing the expected effect (the same arithmetic as :meth:`models.scorer.Scorer.score`)."""
    effect = margins[:, 4]
    lo = np.minimum(np.minimum(margins[:, 5], margins[:, 6]) - q, effect)
    hi = np.maximum(np.maximum(margins[:, 5], margins[:, 6]) + q, effect)
    return lo, hi


def _conformal(scores: F64, coverage: float) -> float:
    """Split-conformal quantile of nonconformity ``scores`` for ``coverage``."""
    level = min(1.0, math.ceil((len(scores) + 1) * coverage) / len(scores))
    return float(np.quantile(scores, level, method="higher"))


def _evaluate(d: _Data, mask: npt.NDArray[np.bool_], margins: F64, q: float,
              q_effect: float) -> dict[str, Any]:
    rows = d.rows.take(mask)
    true = d.outcomes.true_change[mask]
    expected_obs = d.outcomes.expected_observed_change[mask]
    obs = d.outcomes.observed_change[mask]
    lo, hi = _interval(margins, q)
    elo, ehi = _effect_interval(margins, q_effect)
    p = 1.0 / (1.0 + np.exp(-margins[:, 3]))
    return {
        "n_patients": len(np.unique(rows.patient_idx)),
        "n_rows": len(rows),
        # the point predicts the change in the reading from the decision reading, so its
        # truth is the person's expected observed change (regression to the mean included)
        "sbp_change": metrics.heldout_regression(margins[:, 0], obs, expected_obs),
        "interval": metrics.heldout_interval(lo, hi, obs),
        "effect_interval": metrics.heldout_interval(elo, ehi, true),
        "effect_change": metrics.heldout_regression(margins[:, 4], true, true),
        "target": metrics.heldout_classification(p, d.reached[mask], d.p_reach_true[mask]),
        "decision_unconstrained": metrics.heldout_decision(
            margins[:, 0], true, rows.group_starts()
        ),
    }


def _reference_profile(d: _Data, mask: npt.NDArray[np.bool_], pred: F64) -> dict[str, Any]:
    """Training-time distribution of each patient feature and of the predictions (for drift)."""
    patient = d.cohort.features[:, PATIENT_MODEL_COLUMNS]
    qs = np.linspace(0.0, 1.0, 11)
    feats: dict[str, Any] = {}
    train_patients = np.unique(d.rows.patient_idx[mask])
    for j, name in enumerate(PATIENT_MODEL_FEATURE_NAMES):
        col = patient[train_patients, j]
        known = col[~np.isnan(col)]
        feats[name] = {
            "missing_rate": float(np.mean(np.isnan(col))),
            "mean": float(known.mean()) if len(known) else None,
            "deciles": [float(v) for v in np.quantile(known, qs)] if len(known) else [],
        }
    return {
        "n_patients": len(train_patients),
        "features": feats,
        "prediction_sbp_change_deciles": [float(v) for v in np.quantile(pred, qs)],
    }


def train(config: TrainConfig, out_dir: Path, log: Any = print) -> dict[str, Any]:
    """Simulate, train, calibrate, evaluate, export; returns the manifest written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    response = response_parameters(config.response_table)
    d = _prepare(config.n_patients, "internal", config.seed, response)
    log(f"simulated {len(d.cohort)} internal patients, {len(d.rows)} patient-option rows")
    rng = np.random.default_rng(config.seed)
    perm = rng.permutation(len(d.cohort))
    n_tr = int(config.split[0] * len(perm))
    n_cal = int(config.split[1] * len(perm))
    part = np.empty(len(perm), dtype=np.int8)
    part[perm[:n_tr]], part[perm[n_tr : n_tr + n_cal]], part[perm[n_tr + n_cal :]] = 0, 1, 2
    row_part = part[d.rows.patient_idx]
    tr, cal, te = row_part == 0, row_part == 1, row_part == 2

    x = d.rows.features
    base = dict(config.lgb_params, seed=config.seed)
    y_obs = d.outcomes.observed_change
    y_true = d.outcomes.true_change
    specs: list[tuple[str, dict[str, Any], F64, int]] = [
        ("sbp_change", {"objective": "regression"}, y_obs, config.rounds),
        ("sbp_lower", {"objective": "quantile", "alpha": config.quantiles[0]}, y_obs,
         config.rounds),
        ("sbp_upper", {"objective": "quantile", "alpha": config.quantiles[1]}, y_obs,
         config.rounds),
        ("target_logit", {"objective": "binary"}, d.reached.astype(np.float64), config.rounds),
        ("effect_change", {"objective": "regression"}, y_true, config.effect_rounds),
        ("effect_lower", {"objective": "quantile", "alpha": config.quantiles[0]}, y_true,
         config.effect_rounds),
        ("effect_upper", {"objective": "quantile", "alpha": config.quantiles[1]}, y_true,
         config.effect_rounds),
    ]
    if tuple(name for name, _, _, _ in specs) != OUTPUTS:
        raise RuntimeError(f"trained outputs differ from models.manifest.OUTPUTS {OUTPUTS}")
    boosters: list[lgb.Booster] = []
    for name, obj, y, rounds in specs:
        log(f"training {name} ({rounds} rounds)")
        boosters.append(_fit(x[tr], y[tr], dict(base, **obj), rounds))

    # Split-conformal widening of both quantile intervals (CQR) on the calibration split: the
    # reading interval against the observed change, the effect interval against the truth.
    m_cal = _predict_all(boosters, x[cal])
    lo_raw = np.minimum(m_cal[:, 1], m_cal[:, 2])
    hi_raw = np.maximum(m_cal[:, 1], m_cal[:, 2])
    q = _conformal(np.maximum(lo_raw - y_obs[cal], y_obs[cal] - hi_raw), config.coverage)
    log(f"conformal adjustment {q:+.3f} mmHg for {config.coverage:.0%} reading coverage")
    elo_raw = np.minimum(m_cal[:, 5], m_cal[:, 6])
    ehi_raw = np.maximum(m_cal[:, 5], m_cal[:, 6])
    q_effect = _conformal(np.maximum(elo_raw - y_true[cal], y_true[cal] - ehi_raw),
                          config.coverage)
    log(f"conformal adjustment {q_effect:+.3f} mmHg for {config.coverage:.0%} effect coverage")

    m_te = _predict_all(boosters, x[te])
    internal = _evaluate(d, te, m_te, q, q_effect)
    ext = _prepare(config.n_external, "external", config.seed + 7, response)
    m_ext = _predict_all(boosters, ext.rows.features)
    external = _evaluate(ext, np.ones(len(ext.rows), dtype=bool), m_ext, q, q_effect)

    files: list[dict[str, str]] = []

    def record(path: Path, role: str) -> None:
        files.append({"path": path.name, "role": role, "sha256": sha256_file(path)})

    for (name, _, _, _), booster in zip(specs, boosters, strict=True):
        p = out_dir / f"lgb_{name}.txt"
        booster.save_model(str(p))
        record(p, ROLE_LGB_PREFIX + name)
    ensemble = parse_boosters(boosters)
    for form, role, builder in (
        ("tree", ROLE_ONNX_TREE, to_tree_ensemble_onnx),
        ("tensor", ROLE_ONNX_TENSOR, to_tensorised_onnx),
    ):
        p = out_dir / f"model_{form}.onnx"
        onnx.save_model(builder(ensemble, len(MODEL_FEATURE_NAMES)), str(p))
        record(p, role)
    profile_path = out_dir / "reference_profile.json"
    profile_path.write_text(json.dumps(_reference_profile(d, tr, m_te[:, 0]), indent=2) + "\n")
    record(profile_path, "reference_profile")

    manifest: dict[str, Any] = {
        "model_id": MODEL_ID,
        "version": MODEL_VERSION,
        "intended_use": INTENDED_USE,
        "files": files,
        "feature_names": list(MODEL_FEATURE_NAMES),
        "feature_table_hash": model_feature_hash(),
        "outputs": list(OUTPUTS),
        "output_semantics": {
            "sbp_change": "predicted 12-week change in clinic systolic BP, mmHg (negative = lower)",
            "sbp_lower": "raw 10th-percentile model; serve min(lower, upper) - adjustment",
            "sbp_upper": "raw 90th-percentile model; serve max(lower, upper) + adjustment",
            "target_logit": "log-odds of a 12-week clinic systolic reading below the NICE target",
            "effect_change": "expected change in usual clinic systolic BP from the option "
            "(adherence and stopping averaged out, no regression to the mean), mmHg",
            "effect_lower": "raw 10th-percentile model of the expected effect; serve "
            "min(effect_lower, effect_upper, effect_change) - effect adjustment",
            "effect_upper": "raw 90th-percentile model of the expected effect; serve "
            "max(effect_lower, effect_upper, effect_change) + effect adjustment",
        },
        "interval": {
            "method": "conformalised quantile regression (split conformal)",
            "coverage": config.coverage,
            "conformal_adjustment": q,
            "calibration_rows": int(cal.sum()),
            "covers": "one observed 12-week change in the recorded clinic SBP (from the "
            "decision reading)",
        },
        "effect_interval": {
            "method": "conformalised quantile regression (split conformal) on the simulator's "
            "person-level expected change",
            "coverage": config.coverage,
            "conformal_adjustment": q_effect,
            "calibration_rows": int(cal.sum()),
            "covers": "the person's expected 12-week change (adherence and stopping averaged "
            "out; no measurement noise)",
        },
        "training": {
            "data": "simulated cohort (models/training/simulator.py), site 'internal'; "
            "no real patient data",
            "response_table": config.response_table,
            "seed": config.seed,
            "config": asdict(config),
            "n_patients": len(d.cohort),
            "n_rows": len(d.rows),
            "rows_by_split": {
                "train": int(tr.sum()),
                "calibration": int(cal.sum()),
                "test": int(te.sum()),
            },
            "lightgbm_version": lgb.__version__,
        },
        "metrics": {"internal_test": internal, "external": external},
    }
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    (out_dir / "MODEL_CARD.md").write_text(render_model_card(manifest))
    return manifest


def compare_with(manifest: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Whether ``manifest`` reproduces the artifacts in ``directory``: identical LightGBM
    models (sha256) and identical metrics."""
    other = json.loads((directory / MANIFEST_NAME).read_text())

    def lgb_hashes(m: dict[str, Any]) -> dict[str, str]:
        return {f["role"]: f["sha256"] for f in m["files"] if f["role"].startswith(ROLE_LGB_PREFIX)}

    same_models = lgb_hashes(manifest) == lgb_hashes(other)
    same_metrics = manifest["metrics"] == other["metrics"]
    return {
        "same_lightgbm_models": same_models,
        "same_metrics": same_metrics,
        "same_seed": manifest["training"]["seed"] == other["training"]["seed"],
    }

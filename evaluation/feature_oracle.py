"""The feature-explainable oracle: the best option *given the features*.

The person-level oracle picks each patient's best safe option under the simulated truth, which
depends on latent factors (the person's own drug responses, their usual blood pressure) that no
record shows. What any model reading the record could at best achieve is to rank the options
by the expected true change given the features, ``E[true change | features, option]``.

The simulator has no closed form for that expectation (the latent responses are selected on
the current regimen and linked to the features through the simulated renin, blood pressure and
selection of treated patients), so it is approximated here by regression on the *noise-free*
truth: a gradient-boosted model (LightGBM) fitted to the true change of every
(patient, option) row from the model's own input columns, cross-fitted over patients
(:data:`FOLDS` folds: each patient's rows are predicted by a model that never saw that
patient; each fit uses at most :data:`MAX_TRAIN_PATIENTS` patients of the other folds, drawn at
random, which bounds its time). It learns from the truth rather than from one noisy outcome,
so it approximates the best ranking the features allow; it is limited by the patients each fit
sees and by the regression's capacity, so the oracle is an estimate: on small case sets it
falls short of the true feature-explainable optimum, and the model (trained on 42,000
patients) can even beat it. The report says so beside the figures.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from evaluation.cohort import CaseSet

F64 = npt.NDArray[np.float64]

FOLDS: Final = 2
MAX_TRAIN_PATIENTS: Final = 10_000
SEED: Final = 7_919
ROUNDS: Final = 300
PARAMS: Final = {
    "objective": "regression",
    "num_leaves": 31,
    "learning_rate": 0.08,
    "min_data_in_leaf": 50,
    "lambda_l2": 1.0,
    "zero_as_missing": False,
    "deterministic": True,
    "force_col_wise": True,
    "verbose": -1,
}
METHOD: Final = (f"LightGBM regression of the noise-free true change on the model's input "
                 f"columns, cross-fitted over patients ({FOLDS} folds, each fit on at most "
                 f"{MAX_TRAIN_PATIENTS:,} patients, {ROUNDS} rounds, seed {SEED}); approximates "
                 f"E[true change | features, option]")


def feature_oracle_predictions(cases: CaseSet, threads: int = 1) -> F64:
    """Cross-fitted estimate of ``E[true change | features, option]`` for every row of
    ``cases`` (see the module docstring). One LightGBM thread by default: on a shared
    machine more threads were slower (OpenMP threads waiting on busy cores); the figures are
    the same whatever the number."""
    import lightgbm as lgb

    rows = cases.rows
    n_patients = cases.n_patients
    rng = np.random.default_rng(SEED)
    fold_of_patient = rng.permutation(n_patients) % FOLDS
    fold = fold_of_patient[rows.patient_idx]
    # a random subset of each fold's training patients, at most MAX_TRAIN_PATIENTS
    rank = np.empty(n_patients, dtype=np.intp)
    rank[rng.permutation(n_patients)] = np.arange(n_patients)
    out = np.full(len(rows), np.nan)
    params = {**PARAMS, "seed": SEED, "num_threads": max(1, threads)}
    for k in range(FOLDS):
        test = fold == k
        others = np.flatnonzero(fold_of_patient != k)
        chosen = np.zeros(n_patients, dtype=np.bool_)
        chosen[others[np.argsort(rank[others])][:MAX_TRAIN_PATIENTS]] = True
        train = chosen[rows.patient_idx]
        if not test.any() or not train.any():
            continue
        ds = lgb.Dataset(rows.features[train], label=cases.true_change[train],
                         params={"verbose": -1})
        booster = lgb.train(params, ds, num_boost_round=ROUNDS)
        out[test] = booster.predict(rows.features[test], num_threads=max(1, threads))
    return out

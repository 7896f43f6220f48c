"""What the drivers rest on (a script, not a test): SHAP shares of the expected effect, and how
far a predicted difference between two options of one patient can be trusted.

Over simulated internal-site patients (every option of the served catalogue for each), prints:

1. each model feature's share of the mean |SHAP| of ``effect_change`` (the output the drivers
   explain), measured two ways: against the model's overall average (raw SHAP) and against the
   patient's own mean over their options (what the per-option drivers and the comparison
   show); the features with no effect in the simulated truth
   (:data:`models.driver_words.NO_EFFECT_FEATURES`) summed;
2. for every pair of options of a patient, the predicted difference of expected effects
   against the simulated truth's difference (``true_sbp_change``): the 80% and 90% quantiles
   of the absolute error, and among pairs predicted to differ by at least the NICE profile's
   tie margin, the share whose true difference has the same sign.

    uv run python bench/bench_driver_shares.py [--patients 2000] [--seed 7]
"""

from __future__ import annotations

import argparse

import numpy as np

from models.driver_words import NO_EFFECT_FEATURES
from models.explainer import Explainer
from models.guideline.profiles import NICE
from models.model_rows import assemble
from models.options import dose_matrices, valid_options
from models.scorer import Scorer
from models.training.simulator import FEATURE_INDEX, simulate_cohort, true_sbp_change
from vocabulary.drug_classes import CLASS_ORDER
from vocabulary.feature_table import (
    CHG_SLICE,
    CUR_SLICE,
    MODEL_FEATURE_NAMES,
    PATIENT_MODEL_FEATURE_NAMES,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    scorer = Scorer.load(provider="cpu")
    explainer = Explainer.load(scorer.manifest)
    cohort = simulate_cohort(args.patients, "internal", args.seed)
    cols = [MODEL_FEATURE_NAMES.index(n) for n in PATIENT_MODEL_FEATURE_NAMES]
    patient_cols = [FEATURE_INDEX[n] for n in PATIENT_MODEL_FEATURE_NAMES]
    raw, centred, diff_err, diff_pred, diff_true = [], [], [], [], []
    for i in range(len(cohort)):
        doses = cohort.current_doses[i]
        regimen = {c: float(d) for c, d in zip(CLASS_ORDER, doses, strict=True) if d > 0}
        options = valid_options(regimen)
        before, after = dose_matrices(options)
        patient_row = cohort.features[i, patient_cols].astype(np.float32)
        x = assemble(patient_row, before, after)
        e = explainer.explain(x)
        raw.append(np.abs(e.contributions))
        centred.append(np.abs(e.contributions - e.contributions.mean(axis=0)))
        truth = true_sbp_change(cohort, np.full(len(options), i, dtype=np.intp),
                                np.asarray(after, dtype=np.float64))
        pred = scorer.score(x).effect_change
        a, b = np.triu_indices(len(options), 1)
        diff_pred.append(pred[a] - pred[b])
        diff_true.append(truth[a] - truth[b])
        diff_err.append(np.abs((pred[a] - pred[b]) - (truth[a] - truth[b])))
    for name, parts in (("against the model's average", raw),
                        ("against the patient's mean over options", centred)):
        m = np.concatenate(parts).mean(axis=0)
        total = m.sum()
        groups = {n: m[c] for n, c in zip(PATIENT_MODEL_FEATURE_NAMES, cols, strict=True)}
        groups["drug change (chg_*)"] = m[CHG_SLICE].sum()
        groups["drugs already taken (cur_*)"] = m[CUR_SLICE].sum()
        no_effect = sum(groups[n] for n in NO_EFFECT_FEATURES)
        print(f"mean |SHAP| share of effect_change, {name} "
              f"({len(cohort)} patients, {sum(len(p) for p in parts)} option rows):")
        for n, v in sorted(groups.items(), key=lambda kv: -kv[1]):
            mark = "  (no effect in the simulated truth)" if n in NO_EFFECT_FEATURES else ""
            print(f"  {n:32s} {v / total:7.2%}{mark}")
        print(f"  no-effect features together: {no_effect / total:.2%} "
              f"(largest single: {max(groups[n] for n in NO_EFFECT_FEATURES) / total:.2%})")
    err = np.concatenate(diff_err)
    dp, dt = np.concatenate(diff_pred), np.concatenate(diff_true)
    margin = NICE.tie_margin_mmhg
    big = np.abs(dp) >= margin
    print(f"predicted difference between two options of one patient ({err.size} pairs): "
          f"|error| 80% quantile {np.quantile(err, 0.8):.2f} mmHg, 90% "
          f"{np.quantile(err, 0.9):.2f} mmHg; pairs predicted to differ by >= {margin:g} mmHg: "
          f"{big.mean():.1%}, of which the true difference has the same sign: "
          f"{(np.sign(dp[big]) == np.sign(dt[big])).mean():.1%}; below the margin: "
          f"{(np.sign(dp[~big]) == np.sign(dt[~big])).mean():.1%}")


if __name__ == "__main__":
    main()

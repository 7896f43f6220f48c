"""Render MODEL_CARD.md from the manifest, so the card's figures are always the measured ones."""

from __future__ import annotations

from typing import Any


def _f(v: Any, nd: int = 2) -> str:
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def _metrics_table(m: dict[str, Any]) -> str:
    s, i, t, d = m["sbp_change"], m["interval"], m["target"], m["decision_unconstrained"]
    e = m["effect_interval"]
    rows = [
        ("patients / rows", f"{m['n_patients']} / {m['n_rows']}"),
        ("SBP change MAE vs the person's expected observed change (simulated truth, mmHg)",
         _f(s["mae_true"])),
        ("SBP change MAE vs one noisy observed outcome (mmHg)", _f(s["mae_observed"])),
        ("R² vs the person's expected observed change", _f(s["r2_true"])),
        ("calibration slope / intercept (observed on predicted)",
         f"{_f(s['calibration_slope'])} / {_f(s['calibration_intercept'])}"),
        ("reading interval: coverage of one observed change / mean width (mmHg)",
         f"{_f(i['coverage'], 3)} / {_f(i['mean_width'], 1)}"),
        ("expected effect: MAE vs the person's expected change (simulated truth, mmHg)",
         _f(m["effect_change"]["mae_true"])),
        ("effect interval: coverage of the expected change / mean width (mmHg)",
         f"{_f(e['coverage'], 3)} / {_f(e['mean_width'], 1)}"),
        ("target attainment AUROC / Brier", f"{_f(t['auroc'], 3)} / {_f(t['brier'], 3)}"),
        ("target attainment mean predicted / observed",
         f"{_f(t['mean_predicted'], 3)} / {_f(t['observed_rate'], 3)}"),
        ("true SBP change: model's first option / best / random option (mmHg)",
         f"{_f(d['true_change_model_first'])} / {_f(d['true_change_best'])} / "
         f"{_f(d['true_change_random'])}"),
    ]
    return "\n".join(f"| {k} | {v} |" for k, v in rows)


def render_model_card(manifest: dict[str, Any]) -> str:
    tr = manifest["training"]
    cfg = tr["config"]
    return f"""# Model card: {manifest['model_id']} {manifest['version']}

> **Simulated training data. Not clinically validated.** This model has never seen a real
> patient. It learned from a cohort simulated from published trial summaries
> (models/training/simulator.py, sources in research/clinical.md). Its figures below measure
> how well it recovers that simulation, not how it would perform in a clinic.

## Intended use
{manifest['intended_use']}

Out of scope: children, pregnancy (ACE inhibitors and ARBs are contraindicated; NICE NG133
applies), hypertensive emergencies, secondary hypertension, and any use without a clinician.

## What it predicts
For each (patient, candidate next regimen) row, from one feature table
(`vocabulary/feature_table.py`, hash `{manifest['feature_table_hash'][:16]}…`):

- `sbp_change`: 12-week change in the recorded clinic systolic BP from the reading the decision
  was made on (mmHg, negative = lowering). That reading was selected high, so the prediction
  includes the expected regression to the mean (the same for every option of a patient);
- a *reading interval* that covers one observed 12-week change with probability
  {manifest['interval']['coverage']:.0%} ({manifest['interval']['method']}, adjustment
  {manifest['interval']['conformal_adjustment']:+.2f} mmHg): what the clinician will see;
- `effect_change`: the expected change in usual clinic systolic BP from the option itself
  (drug effect at the person's adherence, stopping averaged out; no regression to the mean);
- an *effect interval* that covers the expected change of a patient like this one (drug effect
  at the person's adherence, stopping averaged out, no measurement noise, no regression to the
  mean) with probability {manifest['effect_interval']['coverage']:.0%}
  ({manifest['effect_interval']['method']}, adjustment
  {manifest['effect_interval']['conformal_adjustment']:+.2f} mmHg): what ranking compares;
- the probability that the 12-week clinic systolic reading is below the patient's NICE NG136
  target.

Explanations are exact TreeSHAP values of `effect_change` (the expected effect the ranking
compares) from the LightGBM model the ONNX files were converted from (`hypermarker model
verify` checks ONNX parity and SHAP additivity against the served `effect_change`). The
features that change no drug's effect in the simulated truth (BMI, HbA1c, South Asian family
origin, diabetes, CKD, heart failure, CVD, potassium, sodium, urine ACR:
`models/driver_words.NO_EFFECT_FEATURES`) are never shown as drivers; their share of the
attributions is measured by `uv run python bench/bench_driver_shares.py`.

## Training
- Data: {tr['data']}; response table `{tr.get('response_table', 'head_to_head')}`;
  seed {tr['seed']}; {tr['n_patients']} patients, {tr['n_rows']} rows
  (train / calibration / test by patient: {tr['rows_by_split']}).
- LightGBM {tr['lightgbm_version']}: {cfg['rounds']} rounds per model ({cfg.get('effect_rounds',
  cfg['rounds'])} for the three expected-effect models), params
  `{cfg['lgb_params']}`.
- Reproduce: `uv run hypermarker train --seed {tr['seed']} --out DIR` (deterministic).

## Held-out figures (simulated)
Internal site, held-out patients:

| metric | value |
|---|---|
{_metrics_table(manifest['metrics']['internal_test'])}

External site (different case-mix and ethnicity mix, a hidden East Asian share with its own
ACE-inhibitor cough rate, unattended automated clinic readings, poorer adherence):

| metric | value |
|---|---|
{_metrics_table(manifest['metrics']['external'])}

"Model's first option" here is before any guideline safety rule; the guideline layer removes
contraindicated options before ranking.

## What changed in this version of the simulated world (issue 14) and why
An independent review found the earlier world too easy and tilted. Changed, each with its
source in `models/training/simulator.py` / `site_parameters.py`:

- **Partial adherence and stopping.** Each person takes a share of their doses (execution,
  mean 0.90 internal; Vrijens BMJ 2008), 12% stop a new drug within 12 weeks for other reasons
  (derived from Vrijens' one-year persistence), and 22% of attributable adverse effects end
  the new drug (derived from Makani 2011 and Bangalore 2010 withdrawal/incidence ratios). The
  adverse effects therefore change the outcome; before, adherence was 100% and nothing was
  ever stopped.
- **Regression to the mean.** A person enters at the first visit whose recorded clinic SBP is
  at least 140 mmHg (NICE NG136), so the reading the model sees is selected high and the
  12-week reading regresses (Salam 2019). Before, the baseline reading was unbiased.
- **ACE inhibitor = ARB.** Both 9.4 mmHg at standard dose (head-to-head evidence, Matchar
  2008); the old 8.5 vs 10.3 cross-trial table built an ARB preference into every ranking. It
  remains as a sensitivity switch (`TrainConfig.response_table = "law2003_cross_trial"`).
- **Beta-blocker heterogeneity reduced** from an unanchored 4.53 to 2.5 mmHg own SD (the
  CCB/thiazide level); r(ACEi, beta-blocker) = 0.69, between Dickerson 1999 (0.5) and
  Deary 2002 (0.71).
- **No potassium-as-renin proxy** (it had no published basis).
- **An external site whose response in practice differs:** a hidden East Asian share with a
  higher ACE-inhibitor cough rate (RR 5.2), unattended automated office readings (no white-coat
  effect; Roerecke 2019), poorer adherence (an assumption), beside the earlier case-mix and
  measurement differences.
- **Two intervals**: the reading interval as before, and the new effect interval (above).

## Limits
- Every effect size, modifier and noise level is an assumption taken from trial summaries; real
  response heterogeneity may differ, and unmeasured modifiers are not represented.
- Adherence is simulated from a few published summary figures and the external site's poorer
  adherence is an assumption; dose titration history and drug interactions are simplified or
  absent.
- The effect interval is trained on the simulator's person-level truth, which no real data set
  has; at a real site only the reading interval can be checked directly, and
  `evaluation/recalibration.py` recalibrates both from a site's own outcomes by subgroup.
- Subgroups that are rare in the simulated cohort (very old, pregnant, severe CKD) carry the
  largest uncertainty.
"""

"""Render MODEL_CARD.md from the manifest, so the card's figures are always the measured ones."""

from __future__ import annotations

from typing import Any


def _f(v: Any, nd: int = 2) -> str:
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def _metrics_table(m: dict[str, Any]) -> str:
    s, i, t, d = m["sbp_change"], m["interval"], m["target"], m["decision_unconstrained"]
    rows = [
        ("patients / rows", f"{m['n_patients']} / {m['n_rows']}"),
        ("SBP change MAE vs simulated truth (mmHg)", _f(s["mae_true"])),
        ("SBP change MAE vs one noisy observed outcome (mmHg)", _f(s["mae_observed"])),
        ("R² vs simulated truth", _f(s["r2_true"])),
        ("calibration slope / intercept (observed on predicted)",
         f"{_f(s['calibration_slope'])} / {_f(s['calibration_intercept'])}"),
        ("interval coverage (nominal in manifest) / mean width (mmHg)",
         f"{_f(i['coverage'], 3)} / {_f(i['mean_width'], 1)}"),
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

- `sbp_change`: 12-week change in clinic systolic BP (mmHg, negative = lowering);
- an interval that covers one observed 12-week change with probability
  {manifest['interval']['coverage']:.0%} ({manifest['interval']['method']}, adjustment
  {manifest['interval']['conformal_adjustment']:+.2f} mmHg);
- the probability that the 12-week clinic systolic reading is below the patient's NICE NG136
  target.

Explanations are exact TreeSHAP values of `sbp_change` from the LightGBM model the ONNX files
were converted from (`hypermarker model verify` checks ONNX parity and SHAP additivity).

## Training
- Data: {tr['data']}; seed {tr['seed']}; {tr['n_patients']} patients, {tr['n_rows']} rows
  (train / calibration / test by patient: {tr['rows_by_split']}).
- LightGBM {tr['lightgbm_version']}: {cfg['rounds']} rounds per model, params
  `{cfg['lgb_params']}`.
- Reproduce: `uv run hypermarker train --seed {tr['seed']} --out DIR` (deterministic).

## Held-out figures (simulated)
Internal site, held-out patients:

| metric | value |
|---|---|
{_metrics_table(manifest['metrics']['internal_test'])}

External site (different case-mix, ethnicity mix and measurement practice):

| metric | value |
|---|---|
{_metrics_table(manifest['metrics']['external'])}

"Model's first option" here is before any guideline safety rule; the guideline layer removes
contraindicated options before ranking.

## Limits
- Every effect size, modifier and noise level is an assumption taken from trial summaries; real
  response heterogeneity may differ, and unmeasured modifiers are not represented.
- Adherence, dose titration history, drug interactions and adverse-effect-driven stopping are
  simplified or absent.
- Subgroups that are rare in the simulated cohort (very old, pregnant, severe CKD) carry the
  largest uncertainty.
"""

"""Drift of inputs, predictions and SHAP drivers against the reference saved with the model.

Effect sizes, not p-values
--------------------------
Every measure here is an effect size with a threshold set in clinical units, not a hypothesis
test: a two-sample test flags ever smaller, clinically irrelevant differences as the window
grows, and over-alerts on many features at once (research/mlops.md section 4.1: Evidently
issues #50, #238, #509; whylogs #800). Per feature we report

* **PSI** (population stability index) over the reference deciles, with the missing values as
  an eleventh bin of their own (a change in lab-ordering habits is drift too). Bands: < 0.10
  stable, 0.10-0.25 warning, >= 0.25 alarm (the industry convention; not an Evidently default).
  Binary features use three bins: 0, 1, missing.
* **Wasserstein-1 distance** (:func:`scipy.stats.wasserstein_distance`) in the feature's own
  unit, which reads as "how far, on average, the values moved", compared with a clinical
  tolerance per feature (:data:`FEATURE_THRESHOLDS`). The reference profile stores deciles
  only, so the distance is the *trimmed* W1 over the central 80% of both distributions
  (quantiles 0.10..0.90 on a fine grid; the reference quantile function is interpolated
  between its deciles; beyond the first and last decile only the minimum and maximum are
  known). Tail changes are still caught by PSI's outer bins. It is also reported normalised by
  the reference IQR / 1.349 (an SD for a normal distribution), comparable with Evidently's
  "normed Wasserstein" (default threshold 0.1).
* for binary features, the **difference in share** (percentage points among known values),
  and for every feature the **difference in missing rate**.

A feature is in *alarm* when PSI >= 0.25, W1 >= its clinical tolerance (binary: the share
difference), or the missing rate moved by >= :data:`MISSING_RATE_TOLERANCE`; in *warning* at
PSI >= 0.10 or half a tolerance. Below :data:`MIN_WINDOW` values nothing is judged
("insufficient"), since PSI and W1 are biased upwards at small n.

Prediction drift compares the predicted 12-week SBP change of *every scored option* of the
window's assessments with ``prediction_sbp_change_deciles`` of the reference profile, which the
trainer computed over all (patient, option) rows of its held-out test split; comparing only the
first-ranked options with it would report drift by construction (the first option is the most
negative one). The first option's mean prediction is reported beside it.

SHAP-driver drift compares the share of each feature among the top drivers (the three largest
|SHAP| contributions) of the first-ranked option with a reference share computed from
**simulated internal-site patients** run through the same pipeline
(:func:`reference_driver_shares`): unlike "the first window", that reference belongs to the
model version and is right even when a site drifts from day one. The distance is the
Jensen-Shannon distance (:func:`scipy.spatial.distance.jensenshannon`, base 2, in [0, 1]).

Why not Evidently
-----------------
Evidently was evaluated (0.7.23, the current PyPI release, in a throw-away environment) and
not adopted; ``bench/evidently_comparison.py`` reproduces the comparison:

1. **Alarm behaviour.** Its default per-column drift test (reference over 1,000 rows: normed
   Wasserstein for numbers, Jensen-Shannon for categories, one threshold of 0.1 for every
   column; p-value tests below 1,000 rows) flagged 1 to 6 of the 17 monitored features
   (3.5 on average) in every one of 20 internal-site windows of 250 patients against 5,000
   internal-site reference rows: a per-feature alarm in 20 of 20 windows of the population the
   model was trained on. The monitor's clinical tolerances raised none in the same windows
   (and 8 on an external-site window, where Evidently flags 12). Its dataset-level verdict
   (half of the columns) did separate the sites, but says nothing a clinician can act on.
2. **Reference data.** It needs the reference *rows*; the model ships a PHI-free decile
   profile (``reference_profile.json``), which is all the monitor needs.
3. **Footprint and fragility.** It installs 80 packages, about 700 MB (pandas, pyarrow,
   plotly, statsmodels, nltk, litestar and uvicorn for its UI, opentelemetry-proto and
   iterative-telemetry for usage telemetry), into a job that needs numpy and scipy, both
   already pinned; and 0.7.23 does not import with the pandas 3 that its own unbounded
   requirement resolves to.

PSI and the trimmed W1 are a few lines on top of scipy; statistics come from scipy
(``wasserstein_distance``, ``jensenshannon``, ``binomtest``, ``linregress``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from evaluation.report_io import clean

F64 = npt.NDArray[np.float64]
Status = Literal["ok", "warning", "alarm", "insufficient"]
Kind = Literal["continuous", "binary"]

PSI_WARNING: Final = 0.10
PSI_ALARM: Final = 0.25
#: Absolute change in a feature's missing rate that is an alarm on its own.
MISSING_RATE_TOLERANCE: Final = 0.10
#: Fewest values in a window before drift is judged.
MIN_WINDOW: Final = 200
#: Floor of a bin share in PSI (an empty bin would give an infinite PSI).
PSI_EPS: Final = 1e-4
#: Quantile grid of the trimmed Wasserstein distance.
TRIM_GRID: Final = np.linspace(0.10, 0.90, 161)


@dataclass(frozen=True, slots=True)
class FeatureThreshold:
    """Clinical tolerance of one feature: ``tolerance`` in ``unit`` (W1 for continuous
    features, share difference for binary ones), with the reason it was chosen."""

    kind: Kind
    tolerance: float
    unit: str
    rationale: str


#: Clinically set drift tolerances per patient feature. An alarm says "the case-mix moved by
#: this much", which a clinician can judge, and each is well above the sampling noise of a
#: window of MIN_WINDOW internal-site patients (see tests/evaluation/test_drift.py).
FEATURE_THRESHOLDS: Final[Mapping[str, FeatureThreshold]] = {
    "age": FeatureThreshold("continuous", 5.0, "years",
                            "NICE NG136 step 1 branches at 55 years; a 5-year average shift "
                            "moves a material share across it and changes renin-linked "
                            "response."),
    "sbp_clinic": FeatureThreshold("continuous", 5.0, "mmHg",
                                   "about half the standard-dose effect of one drug class "
                                   "(~9-10 mmHg); response scales with baseline SBP."),
    "dbp_clinic": FeatureThreshold("continuous", 3.0, "mmHg",
                                   "the diastolic counterpart of the 5 mmHg systolic shift."),
    "sbp_home": FeatureThreshold("continuous", 5.0, "mmHg",
                                 "as clinic SBP; home targets sit 5 mmHg below clinic ones."),
    "bmi": FeatureThreshold("continuous", 2.0, "kg/m2",
                            "two fifths of a WHO BMI category (5 kg/m2 wide)."),
    "egfr": FeatureThreshold("continuous", 7.5, "mL/min/1.73m2",
                             "half a KDIGO G3a/G3b band (15); eGFR gates ACEi/ARB and "
                             "spironolactone cautions."),
    "potassium": FeatureThreshold("continuous", 0.2, "mmol/L",
                                  "spironolactone is advised only at K+ <= 4.5 mmol/L (NICE "
                                  "NG136 step 4); 0.2 is about half the reference IQR."),
    "sodium": FeatureThreshold("continuous", 1.5, "mmol/L",
                               "thiazide-like diuretics are cautioned in hyponatraemia; 1.5 "
                               "mmol/L is about 60% of the reference IQR."),
    "urine_acr": FeatureThreshold("continuous", 1.0, "mg/mmol",
                                  "ACR >= 3 mg/mmol defines CKD A2 and the ACEi/ARB route; "
                                  "the central 80% of the reference lies below 5."),
    "hba1c": FeatureThreshold("continuous", 4.0, "mmol/mol",
                              "about 0.4 percentage points; 48 mmol/mol defines diabetes."),
    "sex_female": FeatureThreshold("binary", 0.10, "share",
                                   "sex changes little in the response model; 10 points."),
    "ethnicity_black": FeatureThreshold("binary", 0.05, "share",
                                        "NICE step 1 differs for Black patients (CCB, ARB "
                                        "over ACEi); 5 points."),
    "ethnicity_south_asian": FeatureThreshold("binary", 0.05, "share",
                                              "QRISK and diabetes risk differ; 5 points."),
    "diabetes_t2": FeatureThreshold("binary", 0.08, "share",
                                    "diabetes moves the guideline route (ACEi/ARB first); 8 "
                                    "points (5 would be 2 SE of a 250-patient window)."),
    "ckd": FeatureThreshold("binary", 0.08, "share",
                            "CKD moves the target and the ACEi/ARB route; 8 points."),
    "heart_failure": FeatureThreshold("binary", 0.04, "share",
                                      "rare (a few %) and changes several cautions; 4 points."),
    "cvd": FeatureThreshold("binary", 0.08, "share",
                            "established CVD changes the risk-benefit framing; 8 points."),
}

#: Prediction drift: W1 tolerance (mmHg) of the predicted change over all options.
PREDICTION_TOLERANCE_MMHG: Final = 2.0
#: SHAP-driver drift: Jensen-Shannon distance (base 2) bands.
DRIVER_JS_WARNING: Final = 0.10
DRIVER_JS_ALARM: Final = 0.20
#: How many top drivers of the first option are counted.
TOP_DRIVERS: Final = 3


@dataclass(frozen=True, slots=True)
class FeatureReference:
    missing_rate: float
    mean: float | None
    deciles: tuple[float, ...]

    @property
    def binary(self) -> bool:
        return bool(self.deciles) and set(self.deciles) <= {0.0, 1.0}


@dataclass(frozen=True, slots=True)
class ReferenceProfile:
    """``reference_profile.json`` of the model artifacts."""

    n_patients: int
    features: Mapping[str, FeatureReference]
    prediction_deciles: tuple[float, ...]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ReferenceProfile:
        feats = {name: FeatureReference(float(f["missing_rate"]),
                                        None if f.get("mean") is None else float(f["mean"]),
                                        tuple(float(v) for v in f["deciles"]))
                 for name, f in raw["features"].items()}
        return cls(int(raw["n_patients"]), feats,
                   tuple(float(v) for v in raw["prediction_sbp_change_deciles"]))


def load_reference_profile(path: Path | None = None) -> ReferenceProfile:
    """The reference profile listed in the model manifest (role ``reference_profile``)."""
    if path is None:
        from models.manifest import load_manifest

        path = load_manifest().file("reference_profile")
    return ReferenceProfile.from_dict(json.loads(path.read_text(encoding="utf-8")))


# -- statistics -------------------------------------------------------------------------------

def psi(expected: Sequence[float] | F64, actual: Sequence[float] | F64,
        eps: float = PSI_EPS) -> float:
    """Population stability index sum((a - e) ln(a / e)) of two share vectors (floored at eps
    and renormalised). Symmetric, >= 0, 0 only for equal shares."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), eps)
    a = np.maximum(np.asarray(actual, dtype=np.float64), eps)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def decile_bins(values: F64, ref: FeatureReference) -> tuple[F64, F64]:
    """(expected, actual) shares over the reference bins plus a missing bin (last)."""
    known = values[~np.isnan(values)]
    n = max(len(values), 1)
    m = ref.missing_rate
    if ref.binary:
        p1 = ref.mean if ref.mean is not None else 0.0
        expected = np.array([(1 - m) * (1 - p1), (1 - m) * p1, m])
        actual = np.array([np.sum(known < 0.5), np.sum(known >= 0.5), len(values) - len(known)],
                          dtype=np.float64) / n
        return expected, actual
    edges = np.asarray(ref.deciles[1:-1], dtype=np.float64)
    k = len(edges) + 1
    expected = np.append(np.full(k, (1 - m) / k), m)
    counts = np.bincount(np.searchsorted(edges, known, side="right"), minlength=k)
    actual = np.append(counts, len(values) - len(known)).astype(np.float64) / n
    return expected, actual


def reference_quantiles(deciles: Sequence[float], grid: F64 = TRIM_GRID) -> F64:
    """The reference quantile function at ``grid``, interpolated linearly between deciles."""
    d = np.asarray(deciles, dtype=np.float64)
    return np.interp(grid, np.linspace(0.0, 1.0, len(d)), d)


def trimmed_wasserstein(values: F64, deciles: Sequence[float], grid: F64 = TRIM_GRID) -> float:
    """W1 between the central parts (quantiles in ``grid``) of ``values`` and the reference:
    :func:`scipy.stats.wasserstein_distance` of the two equally weighted quantile grids."""
    known = values[~np.isnan(values)]
    if len(known) == 0 or len(deciles) < 2:
        return math.nan
    return float(wasserstein_distance(np.quantile(known, grid),
                                      reference_quantiles(deciles, grid)))


def reference_scale(deciles: Sequence[float]) -> float:
    """Robust SD of the reference: IQR / 1.349 from the interpolated quartiles."""
    q1, q3 = reference_quantiles(deciles, np.array([0.25, 0.75]))
    return float(q3 - q1) / 1.349


# -- per feature ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FeatureDrift:
    feature: str
    kind: Kind
    n: int
    psi: float
    #: W1 (continuous) or share difference (binary), in ``unit``
    distance: float
    distance_normalised: float | None
    tolerance: float
    unit: str
    missing_rate_reference: float
    missing_rate: float
    status: Status

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = clean(asdict(self))
        return out


def _status(n: int, psi_value: float, distance: float, tolerance: float,
            missing_delta: float) -> Status:
    if n < MIN_WINDOW:
        return "insufficient"
    d = abs(distance) if math.isfinite(distance) else 0.0
    if psi_value >= PSI_ALARM or d >= tolerance or missing_delta >= MISSING_RATE_TOLERANCE:
        return "alarm"
    if psi_value >= PSI_WARNING or d >= tolerance / 2:
        return "warning"
    return "ok"


def feature_drift(name: str, values: Sequence[float | None] | F64, ref: FeatureReference,
                  threshold: FeatureThreshold | None = None) -> FeatureDrift:
    """Drift of one feature's window ``values`` (None/NaN = missing) against ``ref``."""
    x = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    kind: Kind = "binary" if ref.binary else "continuous"
    threshold = threshold or FEATURE_THRESHOLDS.get(name) or FeatureThreshold(
        kind, math.inf, "", "no clinical tolerance set: PSI and missing rate only")
    expected, actual = decile_bins(x, ref)
    p = psi(expected, actual) if len(x) else math.nan
    known = x[~np.isnan(x)]
    normalised: float | None
    if kind == "binary":
        p1 = ref.mean if ref.mean is not None else 0.0
        distance = float(known.mean() - p1) if len(known) else math.nan
        normalised = None
    else:
        distance = trimmed_wasserstein(x, ref.deciles)
        scale = reference_scale(ref.deciles)
        normalised = distance / scale if scale > 0 else None
    missing = float(np.mean(np.isnan(x))) if len(x) else math.nan
    delta = abs(missing - ref.missing_rate) if len(x) else 0.0
    return FeatureDrift(name, kind, len(x), p, distance, normalised, threshold.tolerance,
                        threshold.unit, ref.missing_rate, missing,
                        _status(len(x), p, distance, threshold.tolerance, delta))


def input_drift(rows: Iterable[Mapping[str, float | None]], profile: ReferenceProfile
                ) -> list[FeatureDrift]:
    """Drift of every patient feature of the profile over the feature dicts ``rows``."""
    rows = list(rows)
    return [feature_drift(name, [r.get(name) for r in rows], ref)
            for name, ref in profile.features.items()]


# -- predictions ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PredictionDrift:
    n_assessments: int
    n_predictions: int
    psi: float
    wasserstein_mmhg: float
    wasserstein_normalised: float
    tolerance_mmhg: float
    mean_prediction: float
    mean_first_option_prediction: float
    status: Status

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = clean(asdict(self))
        return out


def prediction_drift(all_predictions: Sequence[float], first_predictions: Sequence[float],
                     deciles: Sequence[float]) -> PredictionDrift:
    """Predicted change of every scored option vs the reference prediction deciles."""
    x = np.asarray(all_predictions, dtype=np.float64)
    ref = FeatureReference(0.0, None, tuple(deciles))
    expected, actual = decile_bins(x, ref)
    p = psi(expected[:-1], actual[:-1]) if len(x) else math.nan
    w = trimmed_wasserstein(x, deciles)
    n = len(first_predictions)
    status = (_status(n, p, w, PREDICTION_TOLERANCE_MMHG, 0.0) if len(x) else "insufficient")
    return PredictionDrift(n, len(x), p, w, w / reference_scale(deciles),
                           PREDICTION_TOLERANCE_MMHG,
                           float(x.mean()) if len(x) else math.nan,
                           float(np.mean(first_predictions)) if n else math.nan, status)


# -- SHAP drivers -----------------------------------------------------------------------------

def driver_counts(first_option_drivers: Iterable[Sequence[Mapping[str, Any]]],
                  top: int = TOP_DRIVERS) -> Counter[str]:
    """How often each feature is among the ``top`` drivers of the first option."""
    counts: Counter[str] = Counter()
    for drivers in first_option_drivers:
        counts.update(str(d["feature"]) for d in list(drivers)[:top])
    return counts


def shares(counts: Mapping[str, int | float]) -> dict[str, float]:
    total = float(sum(counts.values()))
    return {k: v / total for k, v in sorted(counts.items())} if total else {}


@dataclass(frozen=True, slots=True)
class DriverDrift:
    n_assessments: int
    js_distance: float
    shares: dict[str, float]
    reference_shares: dict[str, float]
    largest_changes: list[dict[str, Any]]
    status: Status

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = clean(asdict(self))
        return out


def driver_drift(current: Mapping[str, int | float], reference: Mapping[str, float],
                 n_assessments: int) -> DriverDrift:
    """Jensen-Shannon distance between the current and the reference driver shares."""
    keys = sorted(set(current) | set(reference))
    cur, ref = shares(current), shares(reference)
    c = np.array([cur.get(k, 0.0) for k in keys])
    r = np.array([ref.get(k, 0.0) for k in keys])
    js = float(jensenshannon(c, r, base=2)) if c.sum() > 0 and r.sum() > 0 else math.nan
    diffs = {k: cur.get(k, 0.0) - ref.get(k, 0.0) for k in keys}
    changes: list[dict[str, Any]] = [
        {"feature": k, "share": cur.get(k, 0.0), "reference_share": ref.get(k, 0.0),
         "difference": diffs[k]} for k in sorted(keys, key=lambda k: -abs(diffs[k]))[:5]]
    status: Status
    if n_assessments < MIN_WINDOW or not math.isfinite(js):
        status = "insufficient"
    elif js >= DRIVER_JS_ALARM:
        status = "alarm"
    elif js >= DRIVER_JS_WARNING:
        status = "warning"
    else:
        status = "ok"
    return DriverDrift(n_assessments, js, cur, ref, changes, status)


#: Simulated internal-site patients behind the reference driver shares.
REFERENCE_DRIVER_PATIENTS: Final = 1500
REFERENCE_DRIVER_SEED: Final = 424242


@lru_cache(maxsize=4)
def reference_driver_shares(n: int = REFERENCE_DRIVER_PATIENTS,
                            seed: int = REFERENCE_DRIVER_SEED) -> dict[str, float]:
    """Top-driver shares of the first option over simulated internal-site patients, through
    the committed model (exact TreeSHAP, as served). Deterministic for (n, seed, model)."""
    from evaluation.cohort import feature_vector, simulated_case_set
    from models.pipeline import Pipeline

    pipeline = Pipeline.load(explain_top=1)  # the first option's drivers, as a card shows
    cohort = simulated_case_set("internal", n, seed).cohort
    drivers = []
    for i in range(n):
        a = pipeline.assess_features(feature_vector(cohort.features[i],
                                                    cohort.current_doses[i])).assessment
        if a.first is not None:
            drivers.append([{"feature": d.feature} for d in a.first.drivers])
    return shares(driver_counts(drivers))


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe of ``statuses`` (alarm > warning > ok > insufficient)."""
    order: dict[Status, int] = {"insufficient": 0, "ok": 1, "warning": 2, "alarm": 3}
    return max(statuses, key=lambda s: order[s], default="insufficient")

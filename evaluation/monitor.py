"""Post-deployment monitoring: read the audit store, compute the monitoring report, apply gates.

``hypermarker monitor --database URL`` calls :func:`run_monitor`. It reads a time window of the
audit store (SQLite or PostgreSQL, through :class:`audit_store.AuditStore`, read only: no
migration, no spool replay) and reports

* **input drift** of every patient feature, **prediction drift** and **SHAP-driver drift**
  against the reference saved with the model (:mod:`evaluation.drift`), for the whole period
  and per time window (drift over time);
* **override rate** by card indicator and by override reason: feedback is joined to the card it
  answers by the card uuid (``AssessmentRecord.cards[*].uuid`` = ``FeedbackRecord.card_uuid``);
* **alert rate**: the share of cards with indicator ``warning`` or ``critical``;
* **latency** p50/p95/p99 against the CDS Hooks SLO (p95 < 500 ms);
* **realised calibration** where observed follow-up BP exists, of the option actually taken
  where the audit shows it (see :func:`calibration` and :data:`BASIS_NOTE`).

Windows: assessments are those received in ``[since, until)``; feedback and outcomes are read
from ``since`` on *without* an upper bound, because they arrive after the assessment they
answer (feedback minutes later, follow-up BP about 12 weeks later), and so are the
assessments after the window (``follow_ups``), which say which regimen a patient was on at
follow-up. A job run soon after a window closes therefore sees few outcomes; calibration is
judged only from ``min_n`` joined outcomes on.

Gates: the ``[[monitor.gate]]`` tables of ``evaluation/plan.toml``, read by the one plan
loader (:mod:`evaluation.plan`, when first needed, not at import), the same versioned plan as
``hypermarker evaluate``'s checks: each has a threshold, a severity (``gate`` fails the run,
exit status 1; ``warn`` is reported only), the fewest observations it needs, and its
rationale. A gate is ``insufficient`` while its data are (a null metric, or fewer than
``min_n`` observations); a metric path absent from the report is a plan error.

The report's ``status`` is ``fail`` when a gate (severity ``gate``) fails, else
``insufficient`` when one cannot be judged, else ``pass``, and ``passed`` is true only for
``pass``: a window that cannot be judged is never reported as passed. The command exits with
:data:`EXIT_CODES` (0 pass, 1 fail, 3 cannot judge; 2 when the store or the plan cannot be
read).
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
from scipy.stats import binomtest, linregress
from scipy.stats import t as t_dist
from sqlalchemy.exc import SQLAlchemyError

from audit_store import AssessmentRecord, AuditStore, FeedbackRecord, OutcomeRecord
from evaluation import drift as D
from evaluation.plan import DEFAULT_PLAN, Gate, Plan, PlanError, compare, load_plan, resolve
from evaluation.recalibration import recommend_recalibration
from evaluation.report_io import clean
from models.options import regimen_vector, valid_options
from models.training.metrics import calibration_curve
from vocabulary.drug_classes import CLASS_ORDER, DrugClass

GateStatus = Literal["pass", "fail", "insufficient"]
#: Exit status of ``hypermarker monitor`` by the report's ``status``.
EXIT_CODES: Final[dict[str, int]] = {"pass": 0, "fail": 1, "insufficient": 3}

#: Version of the monitoring report layout and of the gate table below.
MONITOR_VERSION: Final = "1.1.0"
#: CDS Hooks services must answer fast enough not to hold up the EHR workflow.
LATENCY_SLO_P95_MS: Final = 500.0
#: Realised calibration joins an outcome observed this long after the assessment ...
FOLLOW_UP_MIN: Final = timedelta(weeks=6)
FOLLOW_UP_MAX: Final = timedelta(weeks=26)
#: ... preferring the one closest to the model's 12-week horizon.
FOLLOW_UP_TARGET: Final = timedelta(weeks=12)
ALERT_INDICATORS: Final = frozenset({"warning", "critical"})


@cache
def bundled_plan() -> Plan:
    """The bundled plan (``evaluation/plan.toml``), read on first use, not at import."""
    return load_plan(DEFAULT_PLAN, require=("monitor.gate",))


# -- records ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuditWindow:
    """What the monitor reads: assessments of the window, feedback and outcomes after it, and
    ``follow_ups``: assessments after the window's end (up to :data:`FOLLOW_UP_MAX`), used
    only to learn which option a patient of the window was treated with (their regimen at
    the next assessment) and where the patient's next decision starts; never for drift."""

    assessments: list[AssessmentRecord] = field(default_factory=list)
    feedback: list[FeedbackRecord] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    follow_ups: list[AssessmentRecord] = field(default_factory=list)


def read_window(store: AuditStore, since: datetime | None = None,
                until: datetime | None = None) -> AuditWindow:
    """Assessments received in [since, until); feedback and outcomes from ``since`` on; the
    assessments of [until, until + FOLLOW_UP_MAX) as follow-ups."""
    later = (list(store.assessments(until, until + FOLLOW_UP_MAX + REGIMEN_LAG))
             if until is not None else [])
    return AuditWindow(list(store.assessments(since, until)), list(store.feedback(since)),
                       list(store.outcomes(since)), since, until, later)


def first_option(rec: AssessmentRecord) -> dict[str, Any] | None:
    return next((o for o in rec.options if o.get("rank") == 1), None)


# -- sections ---------------------------------------------------------------------------------

def override_stats(assessments: Sequence[AssessmentRecord], feedback: Sequence[FeedbackRecord]
                   ) -> dict[str, Any]:
    """Override rate by card indicator and by reason, feedback joined to cards by uuid."""
    indicator = {str(c["uuid"]): str(c.get("indicator")) for a in assessments
                 for c in a.cards if c.get("uuid")}
    by_ind: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    unmatched = 0
    for f in feedback:
        ind = indicator.get(f.card_uuid)
        if ind is None:
            unmatched += 1
            continue
        by_ind[ind][f.outcome] += 1
        if f.outcome == "overridden":
            reasons[f.override_reason_code or "(no reason)"] += 1
    cards = Counter(indicator.values())
    n = sum(sum(c.values()) for c in by_ind.values())
    overridden = sum(c["overridden"] for c in by_ind.values())
    return {
        "n_cards": len(indicator),
        "n_feedback": n,
        "n_unmatched_feedback": unmatched,
        "feedback_rate": n / len(indicator) if indicator else None,
        "override_rate": overridden / n if n else None,
        "by_indicator": {
            ind: {"cards": cards.get(ind, 0), "feedback": sum(c.values()),
                  "accepted": c["accepted"], "overridden": c["overridden"],
                  "override_rate": c["overridden"] / sum(c.values())}
            for ind, c in sorted(by_ind.items())},
        "by_reason": {code: {"overridden": k, "share": k / overridden}
                      for code, k in reasons.most_common()},
    }


def alert_stats(assessments: Sequence[AssessmentRecord]) -> dict[str, Any]:
    """Cards by indicator and the share that are warning or critical."""
    counts = Counter(str(c.get("indicator")) for a in assessments for c in a.cards)
    n = sum(counts.values())
    alerts = sum(k for ind, k in counts.items() if ind in ALERT_INDICATORS)
    return {"n_assessments": len(assessments), "n_cards": n,
            "by_indicator": dict(sorted(counts.items())),
            "alert_rate": alerts / n if n else None,
            "critical_rate": counts.get("critical", 0) / n if n else None,
            "cannot_assess_rate": (sum(a.status == "cannot_assess" for a in assessments)
                                   / len(assessments)) if assessments else None}


def latency_stats(assessments: Sequence[AssessmentRecord],
                  slo_p95_ms: float = LATENCY_SLO_P95_MS) -> dict[str, Any]:
    ms = np.array([a.latency_ms for a in assessments], dtype=np.float64)
    if not len(ms):
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None,
                "slo_p95_ms": slo_p95_ms, "within_slo": None}
    p50, p95, p99 = (float(v) for v in np.percentile(ms, [50, 95, 99]))
    return {"n": len(ms), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
            "slo_p95_ms": slo_p95_ms, "within_slo": p95 < slo_p95_ms}


def join_outcomes(assessments: Sequence[AssessmentRecord], outcomes: Sequence[OutcomeRecord],
                  later: Sequence[AssessmentRecord] = ()
                  ) -> list[tuple[AssessmentRecord, OutcomeRecord]]:
    """Pairs (assessment, follow-up outcome) joined by ``patient_ref``.

    An assessment is paired with the *clinic* outcome of the same patient observed 6 to 26
    weeks after it, closest to 12 weeks, and before the patient's next assessment (which
    starts a new decision). Home readings are not paired: the model predicts clinic SBP.
    """
    by_patient: dict[str, list[OutcomeRecord]] = defaultdict(list)
    for o in outcomes:
        if o.setting == "clinic":
            by_patient[o.patient_ref].append(o)
    assessed = sorted((a for a in assessments if a.status == "assessed"),
                      key=lambda a: a.received_at)
    next_at: dict[str, datetime] = {}
    for a in later:  # assessments after the window (follow-ups) start new decisions too
        if a.patient_ref not in next_at or a.received_at < next_at[a.patient_ref]:
            next_at[a.patient_ref] = a.received_at
    pairs: list[tuple[AssessmentRecord, OutcomeRecord]] = []
    for a in reversed(assessed):
        limit = a.received_at + FOLLOW_UP_MAX
        if a.patient_ref in next_at:
            limit = min(limit, next_at[a.patient_ref])
        next_at[a.patient_ref] = a.received_at
        candidates = [o for o in by_patient.get(a.patient_ref, ())
                      if a.received_at + FOLLOW_UP_MIN <= o.observed_at < limit]
        if candidates:
            target = a.received_at + FOLLOW_UP_TARGET
            pairs.append((a, min(candidates, key=lambda o: abs(o.observed_at - target))))
    pairs.reverse()
    return pairs


#: The regimen recorded at an assessment within this long after the follow-up BP is the
#: regimen the patient was treated with during the follow-up.
REGIMEN_LAG: Final = timedelta(weeks=4)
#: How the option a patient was treated with is known, most direct first (:func:`taken_option`).
BASES: Final = ("follow-up-regimen", "accepted-suggestion", "accepted-card", "rank-1-fallback")
BASIS_NOTE: Final = (
    "Realised calibration pairs each follow-up with the prediction of the option actually "
    "taken, known from (1) the regimen recorded at the patient's assessment at the follow-up "
    "(from a day before to 4 weeks after the follow-up BP), matched to the option whose "
    "regimen it is; (2) feedback "
    "accepting a card suggestion whose option the card record names; (3) feedback accepting "
    "the card, whose recommendation is the first-ranked option. An overridden card with none "
    "of these, a follow-up regimen that matches no option (unchanged, or changed otherwise) "
    "and an assessment without a ranked option are left out (see 'excluded'). Otherwise the "
    "first-ranked option is assumed to have been taken (rank-1-fallback): those pairs measure "
    "the calibration of the recommendation.")


def suggestion_options(rec: AssessmentRecord) -> dict[str, str]:
    """Suggestion uuid -> option id, where the card record names each suggestion's option
    (entries ``{"uuid": ..., "option": ...}``; a bare uuid names none)."""
    out: dict[str, str] = {}
    for card in rec.cards:
        for sug in card.get("suggestions") or []:
            if isinstance(sug, dict) and sug.get("uuid") and sug.get("option"):
                out[str(sug["uuid"])] = str(sug["option"])
    return out


def _regimen(raw: Mapping[str, float]) -> tuple[float, ...] | None:
    try:
        return regimen_vector({DrugClass(k): float(v) for k, v in raw.items()})
    except ValueError:
        return None


def option_by_regimen(rec: AssessmentRecord, regimen: Mapping[str, float]) -> str | None:
    """The option of ``rec`` (from its catalogue) whose regimen after is ``regimen``."""
    before = _regimen(rec.regimen)
    after = _regimen(regimen)
    if before is None or after is None:
        return None
    catalogue = valid_options(dict(zip(CLASS_ORDER, before, strict=True)))
    return next((o.id for o in catalogue
                 if np.allclose(o.dose_after, after, rtol=0.0, atol=1e-6)), None)


def follow_up_assessment(outcome: OutcomeRecord, patient_assessments: Sequence[AssessmentRecord]
                         ) -> AssessmentRecord | None:
    """The patient's first assessment recorded from a day before the follow-up BP to
    :data:`REGIMEN_LAG` after it: its regimen is the one the patient was treated with."""
    lo, hi = outcome.observed_at - timedelta(days=1), outcome.observed_at + REGIMEN_LAG
    return min((a for a in patient_assessments if lo <= a.received_at <= hi),
               key=lambda a: a.received_at, default=None)


def taken_option(rec: AssessmentRecord, feedback: Mapping[str, Sequence[FeedbackRecord]],
                 following: AssessmentRecord | None) -> tuple[dict[str, Any] | None, str]:
    """(the option ``rec``'s patient was treated with, how that is known) or (None, why it
    is not); ``feedback`` is by card uuid, ``following`` the patient's assessment at the
    follow-up (:func:`follow_up_assessment`), if any."""
    options = {str(o["id"]): o for o in rec.options}
    if following is not None:
        oid = option_by_regimen(rec, following.regimen)
        if oid in options:
            return options[oid], "follow-up-regimen"
        same = _regimen(following.regimen) == _regimen(rec.regimen)
        return None, ("follow-up-regimen-unchanged" if same
                      else "follow-up-regimen-not-an-option")
    answers = [f for uuid in rec.card_uuids() for f in feedback.get(uuid, ())]
    named = suggestion_options(rec)
    for f in answers:
        if f.outcome == "accepted":
            for sug in f.accepted_suggestions:
                if named.get(sug) in options:
                    return options[named[sug]], "accepted-suggestion"
    if any(f.outcome == "overridden" for f in answers):
        return None, "overridden-option-unknown"
    first = first_option(rec)
    if first is None:
        return None, "no-ranked-option"
    if any(f.outcome == "accepted" for f in answers):
        return first, "accepted-card"
    return first, "rank-1-fallback"


def calibration(assessments: Sequence[AssessmentRecord], outcomes: Sequence[OutcomeRecord],
                nominal_coverage: float, feedback: Sequence[FeedbackRecord] = (),
                later: Sequence[AssessmentRecord] = ()) -> dict[str, Any]:
    """Realised calibration of the option taken (see :func:`join_outcomes`, :data:`BASIS_NOTE`).

    Observed change = follow-up clinic SBP - the assessment's ``sbp_clinic`` feature (the
    recorded baseline the model saw), against the taken option's predicted change and
    interval. Calibration-in-the-large with its 99% CI, the least-squares slope and intercept
    of observed on predicted with the slope's 99% CI, MAE, and interval coverage with its 99%
    Wilson interval; the gates read the one-sided bounds (``citl_abs_lower99``,
    ``slope_lower99``, ``slope_upper99``, ``coverage_shortfall_significant``).
    """
    by_card: dict[str, list[FeedbackRecord]] = defaultdict(list)
    for f in feedback:
        by_card[f.card_uuid].append(f)
    by_patient: dict[str, list[AssessmentRecord]] = defaultdict(list)
    for rec in [*assessments, *later]:
        by_patient[rec.patient_ref].append(rec)
    obs: list[float] = []
    pred: list[float] = []
    inside: list[bool] = []
    basis: Counter[str] = Counter()
    excluded: Counter[str] = Counter()
    for a, o in join_outcomes(assessments, outcomes, later):
        base = a.features.get("sbp_clinic")
        if base is None:
            excluded["no-baseline-sbp"] += 1
            continue
        option, how = taken_option(a, by_card,
                                   follow_up_assessment(o, by_patient[a.patient_ref]))
        if option is None:
            excluded[how] += 1
            continue
        basis[how] += 1
        change = o.sbp - base
        lo, hi = option["interval"]
        obs.append(change)
        pred.append(float(option["predicted_sbp_change"]))
        inside.append(lo <= change <= hi)
    n = len(obs)
    out: dict[str, Any] = {
        "n": n, "nominal_coverage": nominal_coverage,
        "basis": {b: basis[b] for b in BASES}, "excluded": dict(sorted(excluded.items())),
        "rank1_fallback_share": basis["rank-1-fallback"] / n if n else None,
        "basis_note": BASIS_NOTE,
        "citl": None, "citl_ci99": None, "citl_abs_lower99": None,
        "slope": None, "intercept": None, "slope_ci99": None, "slope_lower99": None,
        "slope_upper99": None, "mae": None, "coverage": None, "coverage_ci99": None,
        "coverage_shortfall_significant": None, "curve": None}
    if n == 0:
        return out
    y, p = np.array(obs), np.array(pred)
    resid = y - p
    citl = float(resid.mean())
    covered = int(sum(inside))
    coverage = covered / n
    out.update({"citl": citl, "mae": float(np.abs(resid).mean()), "coverage": coverage})
    if n < 3:
        return out
    half = float(t_dist.ppf(0.995, n - 1)) * float(resid.std(ddof=1)) / math.sqrt(n)
    ci = binomtest(covered, n).proportion_ci(confidence_level=0.99, method="wilson")
    shortfall = nominal_coverage - coverage
    out.update({
        "citl_ci99": [citl - half, citl + half],
        # the gate reads the smallest |CITL| the window is compatible with (99%)
        "citl_abs_lower99": max(abs(citl) - half, 0.0),
        "coverage_ci99": [float(ci.low), float(ci.high)],
        # the gate reads: the shortfall when the Wilson interval excludes nominal, else 0
        "coverage_shortfall_significant": (max(shortfall, 0.0)
                                           if float(ci.high) < nominal_coverage else 0.0),
    })
    out["curve"] = calibration_curve(p, y)
    if float(np.ptp(p)) > 0:
        fit = linregress(p, y)
        slope_half = float(t_dist.ppf(0.995, n - 2)) * float(fit.stderr)
        out.update({"slope": float(fit.slope), "intercept": float(fit.intercept),
                    "slope_ci99": [float(fit.slope) - slope_half,
                                   float(fit.slope) + slope_half],
                    "slope_lower99": float(fit.slope) - slope_half,
                    "slope_upper99": float(fit.slope) + slope_half})
    return out


#: Statuses whose records carry the patient's features: input drift is over every patient
#: presented, whether ranked or answered by a stop condition's pathway (leaving out the
#: pathway answers, e.g. BP >= 180/120, would itself shift the inputs); prediction and driver
#: drift are over the ranked answers only (a pathway predicts nothing).
FEATURED: Final = frozenset({"assessed", "pathway"})


def drift_section(assessments: Sequence[AssessmentRecord], profile: D.ReferenceProfile,
                  driver_reference: Mapping[str, float]) -> dict[str, Any]:
    assessed = [a for a in assessments if a.status == "assessed"]
    presented = [a for a in assessments if a.status in FEATURED]
    features = D.input_drift((a.features for a in presented), profile)
    firsts = [f for a in assessed if (f := first_option(a)) is not None]
    pred = D.prediction_drift(
        [float(o["predicted_sbp_change"]) for a in assessed for o in a.options],
        [float(f["predicted_sbp_change"]) for f in firsts], profile.prediction_deciles)
    drivers = D.driver_drift(D.driver_counts(f.get("drivers", []) for f in firsts),
                             driver_reference, len(firsts))
    return {
        "input": {
            "n": len(presented),
            "alarms": sum(f.status == "alarm" for f in features),
            "warnings": sum(f.status == "warning" for f in features),
            "status": D.worst(f.status for f in features),
            "features": [f.to_dict() for f in features],
        },
        "prediction": {**pred.to_dict(), "alarm": int(pred.status == "alarm")},
        "drivers": drivers.to_dict(),
    }


def drift_over_time(assessments: Sequence[AssessmentRecord], profile: D.ReferenceProfile,
                    window: timedelta, start: datetime | None = None,
                    end: datetime | None = None) -> list[dict[str, Any]]:
    """Input and prediction drift per consecutive window of length ``window``."""
    if not assessments:
        return []
    t0 = start or min(a.received_at for a in assessments)
    t1 = end or max(a.received_at for a in assessments) + timedelta(microseconds=1)
    out = []
    lo = t0
    while lo < t1:
        hi = min(lo + window, t1)
        presented = [a for a in assessments
                     if lo <= a.received_at < hi and a.status in FEATURED]
        chunk = [a for a in presented if a.status == "assessed"]
        features = D.input_drift((a.features for a in presented), profile)
        pred = D.prediction_drift(
            [float(o["predicted_sbp_change"]) for a in chunk for o in a.options],
            [float(f["predicted_sbp_change"]) for a in chunk
             if (f := first_option(a)) is not None], profile.prediction_deciles)
        out.append({
            "start": lo.isoformat(), "end": hi.isoformat(), "n": len(presented),
            "psi": {f.feature: clean(f.psi) for f in features},
            "alarms": sorted(f.feature for f in features if f.status == "alarm"),
            "status": D.worst(f.status for f in features),
            "prediction_psi": clean(pred.psi),
            "prediction_wasserstein_mmhg": clean(pred.wasserstein_mmhg),
        })
        lo = hi
    return out


# -- gates ------------------------------------------------------------------------------------

def apply_gates(report: Mapping[str, Any], gates: Iterable[Gate]) -> list[dict[str, Any]]:
    """Judge each gate on ``report``: ``insufficient`` while its metric is null or its
    ``n_metric`` is null or below ``min_n`` (too little data), else ``pass`` or ``fail``.
    Raises :class:`~evaluation.plan.MetricPathError` when a gate's metric or ``n_metric`` is
    not in the report (a plan fault, never "insufficient")."""
    results = []
    for g in gates:
        where = f"monitor gate {g.id!r}"
        value = resolve(report, g.metric, where)
        n = resolve(report, g.n_metric, where)
        status: GateStatus
        if value is None or n is None or n < g.min_n:
            status = "insufficient"
        else:
            status = "pass" if compare(float(value), g.comparator, g.threshold) else "fail"
        results.append({"id": g.id, "metric": g.metric, "value": value,
                        "comparator": g.comparator, "threshold": g.threshold,
                        "severity": g.severity, "n": n, "min_n": g.min_n, "status": status,
                        "rationale": g.rationale})
    return results


# -- the report -------------------------------------------------------------------------------

def monitor(data: AuditWindow, profile: D.ReferenceProfile | None = None, *,
            driver_reference: Mapping[str, float] | None = None,
            window: timedelta | None = None, gates: Sequence[Gate] | None = None,
            nominal_coverage: float | None = None,
            model: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The monitoring report of ``data`` (a JSON-ready dict); ``status`` is ``fail`` when a
    gate of severity ``gate`` fails, else ``insufficient`` when one cannot be judged, else
    ``pass``; ``passed`` is true only for ``pass``."""
    profile = profile or D.load_reference_profile()
    if driver_reference is None:
        driver_reference = D.reference_driver_shares()
    if nominal_coverage is None or model is None:
        from models.manifest import load_manifest

        manifest = load_manifest()
        nominal_coverage = nominal_coverage or manifest.interval_coverage
        model = model or {"id": manifest.model_id, "version": manifest.version}
    a = data.assessments
    versions = Counter(f"{r.model_id} {r.model_version}" for r in a)
    report: dict[str, Any] = {
        "monitor_version": MONITOR_VERSION,
        "model": dict(model),
        "window": {"since": data.since.isoformat() if data.since else None,
                   "until": data.until.isoformat() if data.until else None,
                   "first": min(r.received_at for r in a).isoformat() if a else None,
                   "last": max(r.received_at for r in a).isoformat() if a else None},
        "counts": {"assessments": len(a), "feedback": len(data.feedback),
                   "outcomes": len(data.outcomes), "model_versions": dict(versions)},
        "drift": drift_section(a, profile, driver_reference),
        "overrides": override_stats(a, data.feedback),
        "alerts": alert_stats(a),
        "latency": latency_stats(a),
        "calibration": calibration(a, data.outcomes, nominal_coverage, data.feedback,
                                   data.follow_ups),
    }
    report["recalibration"] = recommend_recalibration(report["calibration"])
    if window is not None:
        report["drift_over_time"] = drift_over_time(a, profile, window, data.since, data.until)
    if gates is None:
        plan = bundled_plan()
        gates = plan.gates
        report["plan_version"] = plan.version
    results = apply_gates(report, gates)
    report["gates"] = results
    report["failed_gates"] = [r["id"] for r in results
                              if r["status"] == "fail" and r["severity"] == "gate"]
    report["warnings"] = [r["id"] for r in results
                          if r["status"] == "fail" and r["severity"] == "warn"]
    report["insufficient_gates"] = [r["id"] for r in results
                                    if r["status"] == "insufficient" and r["severity"] == "gate"]
    report["status"] = ("fail" if report["failed_gates"]
                        else "insufficient" if report["insufficient_gates"] else "pass")
    report["passed"] = report["status"] == "pass"
    return clean(report)  # type: ignore[no-any-return]


class MonitorError(Exception):
    """The audit store could not be read (unreachable, not migrated, bad URL)."""


def run_monitor(url: str, since: datetime | None = None, until: datetime | None = None,
                window: timedelta | None = None, plan: Path | None = None) -> dict[str, Any]:
    """Open the audit store at ``url`` read-only (no migration, no spool replay) and report.

    Raises :class:`MonitorError` when the store cannot be read: the job must then fail
    loudly, never report "no drift" from an empty read; and when the plan is malformed or a
    gate's metric path is not in the report (message ``plan: ...``).
    """
    try:
        the_plan = (bundled_plan() if plan is None
                    else load_plan(plan, require=("monitor.gate",)))
    except PlanError as e:
        raise MonitorError(f"plan: {e}") from e
    with tempfile.TemporaryDirectory(prefix="hm-monitor-spool-") as spool:
        try:
            store = AuditStore.open(url, Path(spool), migrate=False, replay_on_open=False,
                                    auto_replay=False)
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            raise MonitorError(f"cannot open the audit store: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:200]}") from exc
        try:
            data = read_window(store, since, until)
        except SQLAlchemyError as exc:
            raise MonitorError(f"cannot read the audit store ({type(exc).__name__}); is it "
                               "reachable and migrated?") from exc
        finally:
            store.close()
    try:
        if plan is None:  # the bundled plan: monitor() records its version
            return monitor(data, window=window)
        report = monitor(data, window=window, gates=the_plan.gates)
    except PlanError as e:
        raise MonitorError(f"plan: {e}") from e
    report["plan_version"] = the_plan.version
    return report


def summary_text(report: Mapping[str, Any]) -> str:
    """A few lines for a terminal or a CronJob log."""
    d = report["drift"]
    cal = report["calibration"]
    lat = report["latency"]
    ov = report["overrides"]
    al = report["alerts"]
    alarms = [f["feature"] for f in d["input"]["features"] if f["status"] == "alarm"]

    def fmt(v: Any, spec: str = ".3f") -> str:
        return "n/a" if v is None else format(v, spec)

    lines = [
        f"hypermarker monitor {report['monitor_version']}: {report['counts']['assessments']} "
        f"assessments, {report['counts']['feedback']} feedback, "
        f"{report['counts']['outcomes']} outcomes",
        f"input drift: {d['input']['alarms']} alarm(s) {alarms}, "
        f"{d['input']['warnings']} warning(s)",
        f"prediction drift: PSI {fmt(d['prediction']['psi'])}, W1 "
        f"{fmt(d['prediction']['wasserstein_mmhg'], '.2f')} mmHg ({d['prediction']['status']})",
        f"driver drift: JS {fmt(d['drivers']['js_distance'])} ({d['drivers']['status']})",
        f"calibration (option taken): n={cal['n']}, CITL {fmt(cal['citl'], '+.2f')} mmHg, "
        f"slope {fmt(cal['slope'], '.2f')}, coverage {fmt(cal['coverage'])} (nominal "
        f"{fmt(cal['nominal_coverage'], '.2f')}); basis {cal['basis']}, excluded "
        f"{cal['excluded']}",
        f"overrides: {fmt(ov['override_rate'])} of {ov['n_feedback']} answered cards; "
        f"alert rate {fmt(al['alert_rate'])}",
        f"latency: p50 {fmt(lat['p50_ms'], '.0f')} / p95 {fmt(lat['p95_ms'], '.0f')} / p99 "
        f"{fmt(lat['p99_ms'], '.0f')} ms (SLO p95 < {lat['slo_p95_ms']:.0f})",
    ]
    for g in report["gates"]:
        value = g["value"]
        shown = fmt(value, ".4g") if isinstance(value, int | float) else str(value)
        lines.append(f"  [{g['status'].upper():>12}] {g['id']} ({g['severity']}): "
                     f"{g['metric']} = {shown} {g['comparator']} {g['threshold']:g}")
    insufficient = report.get("insufficient_gates") or []
    if report["failed_gates"]:
        lines.append(f"FAILED: {', '.join(report['failed_gates'])}"
                     + (f"; insufficient data: {', '.join(insufficient)}" if insufficient
                        else ""))
    elif insufficient:
        lines.append(f"CANNOT JUDGE (insufficient data, exit {EXIT_CODES['insufficient']}): "
                     f"{', '.join(insufficient)}")
    else:
        lines.append("PASSED")
    return "\n".join(lines)

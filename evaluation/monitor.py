"""Post-deployment monitoring: read the audit store, compute the monitoring report, apply gates.

``hypermarker monitor --database URL`` calls :func:`run_monitor`. It reads a time window of the
audit store (SQLite or PostgreSQL, through :class:`service.audit.AuditStore`, read only: no
migration, no spool replay) and reports

* **input drift** of every patient feature, **prediction drift** and **SHAP-driver drift**
  against the reference saved with the model (:mod:`evaluation.drift`), for the whole period
  and per time window (drift over time);
* **override rate** by card indicator and by override reason: feedback is joined to the card it
  answers by the card uuid (``AssessmentRecord.cards[*].uuid`` = ``FeedbackRecord.card_uuid``);
* **alert rate**: the share of cards with indicator ``warning`` or ``critical``;
* **latency** p50/p95/p99 against the CDS Hooks SLO (p95 < 500 ms);
* **realised calibration** where observed follow-up BP exists (see :func:`calibration`).

Windows: assessments are those received in ``[since, until)``; feedback and outcomes are read
from ``since`` on *without* an upper bound, because they arrive after the assessment they
answer (feedback minutes later, follow-up BP about 12 weeks later). A job run soon after a
window closes therefore sees few outcomes; calibration is judged only from
``min_n`` joined outcomes on.

Gates (:data:`GATES`) are a small versioned table; each has a severity (``gate`` fails the run,
exit status 1; ``warn`` is reported only), the fewest observations it needs, and its rationale.
If ``evaluation/plan.toml`` has a ``[monitor]`` table, its ``<gate id> = threshold`` entries
override the thresholds here (the plan is the versioned, reviewed source of thresholds).
"""

from __future__ import annotations

import math
import tempfile
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
from scipy.stats import binomtest, linregress
from sqlalchemy.exc import SQLAlchemyError

from evaluation import drift as D
from evaluation.checks import lookup
from service.audit import AssessmentRecord, AuditStore, FeedbackRecord, OutcomeRecord

GateSeverity = Literal["gate", "warn"]
GateStatus = Literal["pass", "fail", "insufficient"]

#: Version of the monitoring report layout and of the gate table below.
MONITOR_VERSION: Final = "1.0.0"
#: CDS Hooks services must answer fast enough not to hold up the EHR workflow.
LATENCY_SLO_P95_MS: Final = 500.0
#: Realised calibration joins an outcome observed this long after the assessment ...
FOLLOW_UP_MIN: Final = timedelta(weeks=6)
FOLLOW_UP_MAX: Final = timedelta(weeks=26)
#: ... preferring the one closest to the model's 12-week horizon.
FOLLOW_UP_TARGET: Final = timedelta(weeks=12)
ALERT_INDICATORS: Final = frozenset({"warning", "critical"})
PLAN_PATH: Final = Path(__file__).resolve().parent / "plan.toml"


@dataclass(frozen=True, slots=True)
class Gate:
    """One monitoring gate: ``metric`` (a path in the report) ``comparator`` ``threshold``."""

    id: str
    metric: str
    comparator: Literal["<=", ">=", "<", ">", "=="]
    threshold: float
    severity: GateSeverity
    min_n: int
    n_metric: str
    rationale: str


#: The gate table. Thresholds are effect sizes in clinical units, each far enough from the
#: sampling noise of a window of a few hundred assessments that the false-alarm rate over
#: internal-site windows stays low (tests/evaluation/test_monitor.py measures it).
GATES: Final[tuple[Gate, ...]] = (
    Gate("input-drift-alarms", "drift.input.alarms", "==", 0, "gate", D.MIN_WINDOW,
         "drift.input.n",
         "No patient feature may drift beyond its clinical tolerance, PSI 0.25 or a 10-point "
         "change in missing rate (evaluation.drift.FEATURE_THRESHOLDS): the model would be "
         "used outside the population it was trained and validated on (GMLP principle 10)."),
    Gate("prediction-drift", "drift.prediction.alarm", "==", 0, "gate", D.MIN_WINDOW,
         "drift.prediction.n_assessments",
         "Predicted 12-week SBP change over all options must stay within 2 mmHg (W1) and PSI "
         "0.25 of the training-time predictions."),
    Gate("driver-drift", "drift.drivers.js_distance", "<", D.DRIVER_JS_ALARM, "warn",
         D.MIN_WINDOW, "drift.drivers.n_assessments",
         "What drives the first option's prediction (SHAP) should match the reference; a "
         "change is a signal to review explanations, not on its own a safety failure."),
    Gate("calibration-in-the-large", "calibration.citl_abs_significant", "<", 4.0, "gate",
         200, "calibration.n",
         "Mean observed minus predicted 12-week SBP change of the first option within 4 mmHg "
         "(about half a drug class's effect) unless its 95% CI includes 0."),
    Gate("interval-coverage-shortfall", "calibration.coverage_shortfall_significant", "<",
         0.05, "gate", 200, "calibration.n",
         "The 80% prediction interval must not cover 5 points fewer outcomes than stated while "
         "the 99% Wilson interval of the coverage excludes the nominal level (99%, not 95%: "
         "the job runs every window, so each run must rarely cry wolf): overconfident "
         "intervals mislead the clinician (TRIPOD+AI calibration)."),
    Gate("latency-p95", "latency.p95_ms", "<", LATENCY_SLO_P95_MS, "gate", 20, "latency.n",
         "CDS Hooks SLO: p95 latency below 500 ms (DESIGN.md section 8)."),
    Gate("override-rate", "overrides.override_rate", "<=", 0.50, "warn", 50,
         "overrides.n_feedback",
         "More than half of answered cards overridden means the advice does not fit practice "
         "(DECIDE-AI: clinician-AI agreement); review the reasons."),
    Gate("alert-rate", "alerts.alert_rate", "<=", 0.30, "warn", 50, "alerts.n_cards",
         "Alert fatigue: more than 30% warning/critical cards erodes attention to the ones "
         "that matter."),
)


def load_gates(plan: Path = PLAN_PATH) -> tuple[Gate, ...]:
    """:data:`GATES`, with thresholds overridden by ``[monitor]`` of the plan when present."""
    if not plan.is_file():
        return GATES
    try:
        section = tomllib.loads(plan.read_text(encoding="utf-8")).get("monitor", {})
    except tomllib.TOMLDecodeError:
        return GATES
    if not isinstance(section, dict):
        return GATES
    return tuple(replace(g, threshold=float(section[g.id]))
                 if isinstance(section.get(g.id), int | float) else g for g in GATES)


# -- records ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuditWindow:
    """What the monitor reads: assessments of the window, feedback and outcomes after it."""

    assessments: list[AssessmentRecord] = field(default_factory=list)
    feedback: list[FeedbackRecord] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None


def read_window(store: AuditStore, since: datetime | None = None,
                until: datetime | None = None) -> AuditWindow:
    """Assessments received in [since, until); feedback and outcomes from ``since`` on."""
    return AuditWindow(list(store.assessments(since, until)), list(store.feedback(since)),
                       list(store.outcomes(since)), since, until)


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


def join_outcomes(assessments: Sequence[AssessmentRecord], outcomes: Sequence[OutcomeRecord]
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


def calibration(assessments: Sequence[AssessmentRecord], outcomes: Sequence[OutcomeRecord],
                nominal_coverage: float) -> dict[str, Any]:
    """Realised calibration of the first-ranked option (see :func:`join_outcomes`).

    Observed change = follow-up clinic SBP - the assessment's ``sbp_clinic`` feature (the
    recorded baseline the model saw), against the first option's predicted change and
    interval. The first option is what the card recommends; the audit log does not say which
    option was started, so realised calibration is that of the recommendation (when another
    option was started the pair measures the recommendation's calibration less well: a known
    limitation until the order is linked to the option).
    """
    obs: list[float] = []
    pred: list[float] = []
    inside: list[bool] = []
    for a, o in join_outcomes(assessments, outcomes):
        first = first_option(a)
        base = a.features.get("sbp_clinic")
        if first is None or base is None:
            continue
        change = o.sbp - base
        lo, hi = first["interval"]
        obs.append(change)
        pred.append(float(first["predicted_sbp_change"]))
        inside.append(lo <= change <= hi)
    n = len(obs)
    out: dict[str, Any] = {"n": n, "nominal_coverage": nominal_coverage, "citl": None,
                           "citl_ci95": None, "citl_abs_significant": None, "slope": None,
                           "mae": None, "coverage": None, "coverage_ci99": None,
                           "coverage_shortfall_significant": None}
    if n < 3:
        return out
    y, p = np.array(obs), np.array(pred)
    resid = y - p
    citl = float(resid.mean())
    half = 1.96 * float(resid.std(ddof=1)) / math.sqrt(n)
    covered = int(sum(inside))
    ci = binomtest(covered, n).proportion_ci(confidence_level=0.99, method="wilson")
    coverage = covered / n
    shortfall = nominal_coverage - coverage
    fit = linregress(p, y) if float(np.ptp(p)) > 0 else None
    out.update({
        "citl": citl,
        "citl_ci95": [citl - half, citl + half],
        # the effect size the gate reads: |CITL| when its 95% CI excludes 0, else 0
        "citl_abs_significant": abs(citl) if abs(citl) > half else 0.0,
        "slope": None if fit is None else float(fit.slope),
        "mae": float(np.abs(resid).mean()),
        "coverage": coverage,
        "coverage_ci99": [float(ci.low), float(ci.high)],
        # the gate reads: the shortfall when the Wilson interval excludes nominal, else 0
        "coverage_shortfall_significant": (max(shortfall, 0.0)
                                           if float(ci.high) < nominal_coverage else 0.0),
    })
    return out


def drift_section(assessments: Sequence[AssessmentRecord], profile: D.ReferenceProfile,
                  driver_reference: Mapping[str, float]) -> dict[str, Any]:
    assessed = [a for a in assessments if a.status == "assessed"]
    features = D.input_drift((a.features for a in assessed), profile)
    firsts = [f for a in assessed if (f := first_option(a)) is not None]
    pred = D.prediction_drift(
        [float(o["predicted_sbp_change"]) for a in assessed for o in a.options],
        [float(f["predicted_sbp_change"]) for f in firsts], profile.prediction_deciles)
    drivers = D.driver_drift(D.driver_counts(f.get("drivers", []) for f in firsts),
                             driver_reference, len(firsts))
    return {
        "input": {
            "n": len(assessed),
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
        chunk = [a for a in assessments if lo <= a.received_at < hi and a.status == "assessed"]
        features = D.input_drift((a.features for a in chunk), profile)
        pred = D.prediction_drift(
            [float(o["predicted_sbp_change"]) for a in chunk for o in a.options],
            [float(f["predicted_sbp_change"]) for a in chunk
             if (f := first_option(a)) is not None], profile.prediction_deciles)
        out.append({
            "start": lo.isoformat(), "end": hi.isoformat(), "n": len(chunk),
            "psi": {f.feature: D._clean(f.psi) for f in features},
            "alarms": sorted(f.feature for f in features if f.status == "alarm"),
            "status": D.worst(f.status for f in features),
            "prediction_psi": D._clean(pred.psi),
            "prediction_wasserstein_mmhg": D._clean(pred.wasserstein_mmhg),
        })
        lo = hi
    return out


# -- gates ------------------------------------------------------------------------------------

_COMPARE = {
    "<=": lambda v, t: v <= t, ">=": lambda v, t: v >= t, "<": lambda v, t: v < t,
    ">": lambda v, t: v > t, "==": lambda v, t: v == t,
}


def apply_gates(report: Mapping[str, Any], gates: Iterable[Gate]) -> list[dict[str, Any]]:
    results = []
    for g in gates:
        value = lookup(report, g.metric)
        n = lookup(report, g.n_metric)
        status: GateStatus
        if value is None or n is None or n < g.min_n:
            status = "insufficient"
        else:
            status = "pass" if _COMPARE[g.comparator](float(value), g.threshold) else "fail"
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
    """The monitoring report of ``data`` (a JSON-ready dict); ``passed`` is False when a gate
    of severity ``gate`` fails."""
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
        "calibration": calibration(a, data.outcomes, nominal_coverage),
    }
    if window is not None:
        report["drift_over_time"] = drift_over_time(a, profile, window, data.since, data.until)
    results = apply_gates(report, gates if gates is not None else load_gates())
    report["gates"] = results
    report["failed_gates"] = [r["id"] for r in results
                              if r["status"] == "fail" and r["severity"] == "gate"]
    report["warnings"] = [r["id"] for r in results
                          if r["status"] == "fail" and r["severity"] == "warn"]
    report["passed"] = not report["failed_gates"]
    return D._clean(report)  # type: ignore[no-any-return]


class MonitorError(Exception):
    """The audit store could not be read (unreachable, not migrated, bad URL)."""


def run_monitor(url: str, since: datetime | None = None, until: datetime | None = None,
                window: timedelta | None = None) -> dict[str, Any]:
    """Open the audit store at ``url`` read-only (no migration, no spool replay) and report.

    Raises :class:`MonitorError` when the store cannot be read: the job must then fail
    loudly, never report "no drift" from an empty read.
    """
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
    return monitor(data, window=window)


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
        f"calibration: n={cal['n']}, CITL {fmt(cal['citl'], '+.2f')} mmHg, coverage "
        f"{fmt(cal['coverage'])} (nominal {fmt(cal['nominal_coverage'], '.2f')})",
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
    lines.append("PASSED" if report["passed"] else
                 f"FAILED: {', '.join(report['failed_gates'])}")
    return "\n".join(lines)

"""The monitoring job end to end: simulated audit records -> audit store -> report -> gates.

Scenario: audit records from simulated internal-site patients (the population the model was
trained on) raise no alarm; records from the external site (older, more diabetes and CKD,
about 30% Black patients, different lab habits, noisier clinic readings) raise input-drift and
calibration (interval coverage) alarms. The external site shares the internal site's drug
response (models/training/site_parameters.py), so the point predictions stay calibrated
(calibration-in-the-large and slope of the option taken pass) and the predicted-change
distribution moves by about 1 mmHg only (a prediction-drift warning, not an alarm); the
tests assert those figures rather than hide them. Planted windows show the calibration gates
failing when calibration does break. The false-alarm rate over 20 independent internal
windows is measured and printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL
from typer.testing import CliRunner

from audit_store import AuditStore, FeedbackRecord, OutcomeRecord
from evaluation import drift as D
from evaluation.monitor import (
    AuditWindow,
    MonitorError,
    apply_gates,
    bundled_plan,
    calibration,
    join_outcomes,
    monitor,
    override_stats,
    run_monitor,
    taken_option,
)
from evaluation.monitor_report import render_html
from evaluation.plan import MetricPathError, PlanError, load_plan
from hypermarker_cli.main import app
from models.explainer import Explainer
from models.options import valid_options
from models.scorer import Scorer
from tests.audit_store.conftest import pg_server, pg_url, render  # noqa: F401 (fixtures)
from tests.evaluation.audit_sim import Model, SimulatedAudit, simulate_audit, write_audit
from vocabulary.drug_classes import CLASS_ORDER, DrugClass

INTERNAL_START = datetime(2026, 1, 5, tzinfo=UTC)
EXTERNAL_START = datetime(2026, 4, 6, tzinfo=UTC)
SPAN = timedelta(days=28)
#: Windows with a false alarm allowed among FALSE_ALARM_WINDOWS internal ones (10%).
FALSE_ALARM_WINDOWS = 20
FALSE_ALARM_BOUND = 0.10


@pytest.fixture(scope="module")
def model(scorer: Scorer, explainer: Explainer) -> Model:
    return Model(scorer, explainer)


@pytest.fixture(scope="module")
def internal(model: Model) -> SimulatedAudit:
    return simulate_audit("internal", 500, 31, INTERNAL_START, SPAN, model)


@pytest.fixture(scope="module")
def external(model: Model) -> SimulatedAudit:
    return simulate_audit("external", 800, 32, EXTERNAL_START, SPAN, model)


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory, internal: SimulatedAudit,
               external: SimulatedAudit) -> str:
    d = tmp_path_factory.mktemp("monitor")
    url = f"sqlite:///{d / 'audit.db'}"
    with AuditStore.open(url, d / "spool") as store:
        write_audit(store, internal)
        write_audit(store, external)
    return url


def _internal_window(url: str, window: timedelta | None = None) -> dict[str, Any]:
    return run_monitor(url, INTERNAL_START, INTERNAL_START + SPAN, window)


def _external_window(url: str) -> dict[str, Any]:
    return run_monitor(url, EXTERNAL_START, EXTERNAL_START + SPAN, timedelta(days=7))


def _figures(report: dict[str, Any]) -> str:
    d = report["drift"]
    return (f"{report['counts']['assessments']} assessments; input alarms "
            f"{[f['feature'] for f in d['input']['features'] if f['status'] == 'alarm']}; "
            f"prediction W1 {d['prediction']['wasserstein_mmhg']:.2f} mmHg; driver JS "
            f"{d['drivers']['js_distance']:.3f}; coverage {report['calibration']['coverage']:.3f}"
            f" (n={report['calibration']['n']}); CITL {report['calibration']['citl']:+.2f}; "
            f"failed {report['failed_gates']}")


def test_internal_records_raise_no_alarm(sqlite_url: str, internal: SimulatedAudit) -> None:
    report = _internal_window(sqlite_url, timedelta(days=7))
    print("\ninternal:", _figures(report))
    assert report["counts"]["assessments"] == 500
    assert report["drift"]["input"]["alarms"] == 0
    assert report["drift"]["prediction"]["status"] in ("ok", "warning")
    # Pairs come from ranked answers only: a stop condition's pathway (severe BP, K+ >= 6,
    # pregnancy ...) predicts nothing to calibrate. 70% of the ranked answers, as before.
    ranked = sum(a.status == "assessed" for a in internal.assessments)
    assert ranked >= 400
    assert report["calibration"]["n"] >= 0.7 * ranked
    assert report["calibration"]["basis"]["accepted-suggestion"] > 0
    assert report["passed"], report["failed_gates"]
    assert {g["status"] for g in report["gates"]} == {"pass"}
    assert len(report["drift_over_time"]) == 4


def test_external_records_raise_drift_and_calibration_alarms(sqlite_url: str) -> None:
    report = _external_window(sqlite_url)
    print("\nexternal:", _figures(report))
    assert not report["passed"]
    # The external site differs in case-mix and in response biology, measurement and
    # adherence (issue 14): its inputs and the model's predictions drift; the intervals,
    # conformal-calibrated on the internal site, still cover about 80% there (0.824 on this
    # window), so no coverage shortfall is claimed
    assert {"input-drift-alarms", "prediction-drift"} <= set(report["failed_gates"])
    assert "interval-coverage-shortfall" not in report["failed_gates"]
    alarms = {f["feature"] for f in report["drift"]["input"]["features"]
              if f["status"] == "alarm"}
    assert {"age", "ethnicity_black", "egfr", "ckd", "diabetes_t2"} <= alarms
    assert 0.78 <= report["calibration"]["coverage"] <= 0.86
    gates = {g["id"]: g["status"] for g in report["gates"]}
    assert gates["calibration-in-the-large"] == "pass"
    assert abs(report["calibration"]["citl"]) < 2.0
    prediction = report["drift"]["prediction"]
    assert prediction["status"] == "alarm"
    assert prediction["wasserstein_mmhg"] >= D.PREDICTION_TOLERANCE_MMHG
    # drift over time: every weekly window of the external site alarms
    assert [w["status"] for w in report["drift_over_time"]] == ["alarm"] * 4


def test_false_alarm_rate_over_internal_windows(model: Model) -> None:
    profile = D.load_reference_profile()
    reference = D.reference_driver_shares()
    failed: list[list[str]] = []
    for k in range(FALSE_ALARM_WINDOWS):
        sim = simulate_audit("internal", 250, 1000 + k, INTERNAL_START, timedelta(days=7),
                             model)
        report = monitor(AuditWindow(sim.assessments, sim.feedback, sim.outcomes),
                         profile, driver_reference=reference)
        # every gate of the plan is judged, none skipped for want of data
        assert [g["id"] for g in report["gates"]] == [g.id for g in bundled_plan().gates]
        assert "insufficient" not in {g["status"] for g in report["gates"]}, report["gates"]
        failed.append(report["failed_gates"])
    rate = sum(bool(f) for f in failed) / FALSE_ALARM_WINDOWS
    print(f"\nfalse-alarm rate over {FALSE_ALARM_WINDOWS} internal windows of 250 "
          f"assessments: {rate:.2f} (bound {FALSE_ALARM_BOUND}); failed gates per window: "
          f"{[f for f in failed if f]}")
    assert rate <= FALSE_ALARM_BOUND


def test_postgresql_read_path_gives_the_same_report(pg_url: URL, sqlite_url: str,  # noqa: F811
                                                    internal: SimulatedAudit,
                                                    tmp_path: Path) -> None:
    with AuditStore.open(render(pg_url), tmp_path / "spool") as store:
        write_audit(store, internal)
    pg = _internal_window(render(pg_url))
    lite = _internal_window(sqlite_url)
    for key in ("counts", "drift", "overrides", "alerts", "latency", "calibration", "gates"):
        if key == "counts":  # the SQLite store also holds the external site's records
            assert pg[key]["assessments"] == lite[key]["assessments"]
            continue
        if key == "overrides":  # ... and so the external site's feedback, unmatched here
            lite[key]["n_unmatched_feedback"] = pg[key]["n_unmatched_feedback"] = 0
        assert pg[key] == lite[key], key
    assert pg["passed"]


def test_cli_exit_codes_and_reports(sqlite_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["monitor", "--database", sqlite_url, "--since", "2026-01-05",
                             "--until", "2026-02-02T00:00:00+00:00"])
    assert ok.exit_code == 0, ok.output
    assert "PASSED" in ok.output
    out_json, out_html = tmp_path / "m.json", tmp_path / "m.html"
    bad = runner.invoke(app, ["monitor", "--database", sqlite_url, "--since", "2026-04-06",
                              "--until", "2026-05-04", "--window", "7", "--json",
                              str(out_json), "--html", str(out_html)])
    assert bad.exit_code == 1, bad.output
    assert "FAILED: input-drift-alarms" in bad.output
    report = json.loads(out_json.read_text())
    assert report["passed"] is False
    assert len(report["drift_over_time"]) == 4
    html = out_html.read_text()
    assert html.count("data:image/png;base64,") == 3  # drift, drift over time, calibration
    assert "option taken known from" in html
    assert "http://" not in html
    assert "https://" not in html
    usage = runner.invoke(app, ["monitor", "--database", sqlite_url, "--since", "yesterday"])
    assert usage.exit_code == 2
    # a store that is not there (or not migrated) is an error, never an empty "no drift"
    missing = runner.invoke(app, ["monitor", "--database",
                                  f"sqlite:///{tmp_path / 'absent.db'}"])
    assert missing.exit_code == 2
    assert "cannot read the audit store" in missing.output


def test_override_rate_by_indicator_and_reason(internal: SimulatedAudit) -> None:
    stats = override_stats(internal.assessments, internal.feedback)
    assert stats["n_feedback"] == len(internal.feedback)
    assert stats["n_unmatched_feedback"] == 0
    overridden = sum(f.outcome == "overridden" for f in internal.feedback)
    assert stats["override_rate"] == pytest.approx(overridden / len(internal.feedback))
    assert sum(v["overridden"] for v in stats["by_reason"].values()) == overridden
    assert set(stats["by_indicator"]) <= {"info", "warning", "critical"}
    stray = FeedbackRecord("hypermarker-bp", "no-such-card", "accepted", [], None, None, None,
                           None, INTERNAL_START, INTERNAL_START)
    assert override_stats(internal.assessments, [stray])["n_unmatched_feedback"] == 1


def test_outcome_join_window_and_next_assessment(internal: SimulatedAudit) -> None:
    a = internal.assessments[0]
    ref = a.patient_ref
    base = a.features["sbp_clinic"]
    assert base is not None

    def at(days: float, sbp: float, setting: str = "clinic") -> OutcomeRecord:
        return OutcomeRecord(ref, a.received_at + timedelta(days=days), sbp,
                             setting, "test")  # type: ignore[arg-type]

    # too early, home setting and too late are ignored; the one nearest 12 weeks is taken
    outcomes = [at(10, 100), at(80, 120, "home"), at(70, base - 5), at(90, base - 10),
                at(400, 100)]
    pairs = join_outcomes([a], outcomes)
    assert [(p[1].sbp) for p in pairs] == [base - 10]
    cal = calibration([a], outcomes[:4], 0.8)
    assert cal["n"] == 1


def test_latency_slo_gate_fails_the_run(internal: SimulatedAudit) -> None:
    slow = [replace(a, latency_ms=a.latency_ms + 600.0) for a in internal.assessments]
    report = monitor(AuditWindow(slow, internal.feedback, internal.outcomes))
    assert report["latency"]["p95_ms"] > 500
    assert report["failed_gates"] == ["latency-p95"]
    assert not report["passed"]


def test_gates_come_from_the_plan_with_rationales(tmp_path: Path, sqlite_url: str) -> None:
    gates_of_plan = bundled_plan().gates
    assert all(g.rationale and g.min_n > 0 for g in gates_of_plan)
    assert {g.id for g in gates_of_plan} >= {"calibration-in-the-large", "calibration-slope-low",
                                     "calibration-slope-high", "interval-coverage-shortfall",
                                     "input-drift-alarms", "prediction-drift"}
    plan = tmp_path / "plan.toml"
    plan.write_text('plan_version = "x"\n[[monitor.gate]]\nid = "latency-p95"\n'
                    'metric = "latency.p95_ms"\ncomparator = "<"\nthreshold = 1.0\n'
                    'severity = "gate"\nmin_n = 20\nn_metric = "latency.n"\n'
                    'rationale = "a planted, impossible SLO"\n')
    gates = load_gates(plan)
    assert load_plan(plan, require=("monitor.gate",)).gates == gates
    assert [(g.id, g.threshold) for g in gates] == [("latency-p95", 1.0)]
    runner = CliRunner()
    args = ["monitor", "--database", sqlite_url, "--since", "2026-01-05", "--until",
            "2026-02-02"]
    strict = runner.invoke(app, [*args, "--plan", str(plan)])
    assert strict.exit_code == 1, strict.output
    assert "FAILED: latency-p95" in strict.output
    with pytest.raises(PlanError, match=r"no \[\[monitor\.gate\]\]"):
        load_gates(_write(tmp_path / "empty.toml", 'plan_version = "x"\n'))
    with pytest.raises(PlanError, match="cannot read"):
        load_gates(tmp_path / "absent.toml")
    with pytest.raises(PlanError, match="comparator"):
        load_gates(_write(tmp_path / "bad.toml", plan.read_text().replace('"<"', '"~"')))
    bad = runner.invoke(app, [*args, "--plan", str(tmp_path / "absent.toml")])
    assert bad.exit_code == 2
    assert "plan:" in bad.output


def load_gates(plan: Path) -> tuple[Any, ...]:
    return load_plan(plan, require=("monitor.gate",)).gates


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GATE = ('plan_version = "x"\n[[monitor.gate]]\nid = "latency-p95"\n'
        'metric = "latency.p95_ms"\ncomparator = "<"\nthreshold = 500.0\n'
        'severity = "gate"\nmin_n = 20\nn_metric = "latency.n"\nrationale = "SLO"\n')


@pytest.mark.parametrize("path", ["latency.p95_msec", "latencies.p95_ms", "latency.p95_ms.x"])
def test_a_gate_metric_not_in_the_report_is_a_plan_error_not_insufficient(
        tmp_path: Path, path: str) -> None:
    """A renamed metric must fail the job loudly (exit 2, "plan: ..."), never read as
    "insufficient" like a window without enough data."""
    report = {"latency": {"p95_ms": 120.0, "n": 50}}
    good = load_gates(_write(tmp_path / "good.toml", GATE))
    assert [g["status"] for g in apply_gates(report, good)] == ["pass"]
    renamed = load_gates(_write(tmp_path / "renamed.toml",
                                GATE.replace('"latency.p95_ms"', f'"{path}"')))
    with pytest.raises(MetricPathError, match="latency-p95"):
        apply_gates(report, renamed)
    n_renamed = load_gates(_write(tmp_path / "n.toml",
                                  GATE.replace('"latency.n"', '"latency.count"')))
    with pytest.raises(MetricPathError, match=r"latency\.count"):
        apply_gates(report, n_renamed)
    # an explicit null, or too few observations, is insufficient data: judged later
    assert [g["status"] for g in apply_gates({"latency": {"p95_ms": None, "n": 0}}, good)
            ] == ["insufficient"]
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    AuditStore.open(url, tmp_path / "spool").close()
    with pytest.raises(MonitorError, match=r"^plan: .*does not resolve"):
        run_monitor(url, plan=tmp_path / "renamed.toml")
    bad = CliRunner().invoke(app, ["monitor", "--database", url, "--plan",
                                   str(tmp_path / "renamed.toml")])
    assert bad.exit_code == 2
    assert "does not resolve" in bad.output


def test_empty_store_is_insufficient_never_passed(tmp_path: Path) -> None:
    """A window the job cannot judge is neither a failure nor a pass: status insufficient,
    exit 3 (issue 14: it printed PASSED and exited 0 with every gate insufficient)."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    AuditStore.open(url, tmp_path / "spool").close()  # migrated, no records
    report = run_monitor(url)
    assert report["passed"] is False
    assert report["status"] == "insufficient"
    assert report["failed_gates"] == []
    # every gate's metric resolves in an empty window's report too: null, not absent
    assert [g["id"] for g in report["gates"]] == [g.id for g in bundled_plan().gates]
    assert {g["status"] for g in report["gates"]} == {"insufficient"}
    assert report["insufficient_gates"] == [g.id for g in bundled_plan().gates
                                            if g.severity == "gate"]
    page = render_html(report)
    assert "Monitoring report" in page
    assert "CANNOT JUDGE (insufficient data)" in page
    assert "All safety gates passed" not in page
    result = CliRunner().invoke(app, ["monitor", "--database", url])
    assert result.exit_code == 3, result.output
    assert "CANNOT JUDGE (insufficient data, exit 3)" in result.output
    assert "PASSED" not in result.output



@pytest.fixture(autouse=True)
def _no_matplotlib_leaks() -> Iterator[None]:
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _pairs(audit: SimulatedAudit) -> list[tuple[Any, OutcomeRecord, dict[str, Any], str]]:
    """(assessment, outcome, option taken, basis) as the monitor resolves them."""
    by_card: dict[str, list[FeedbackRecord]] = {}
    for f in audit.feedback:
        by_card.setdefault(f.card_uuid, []).append(f)
    out = []
    for a, o in join_outcomes(audit.assessments, audit.outcomes):
        option, basis = taken_option(a, by_card, None)
        if option is not None:
            out.append((a, o, option, basis))
    return out


def _regimen_after(a: Any, option_id: str) -> dict[str, float]:
    regimen = {DrugClass(k): v for k, v in a.regimen.items()}
    option = next(o for o in valid_options(regimen) if o.id == option_id)
    return {c.value: d for c, d in zip(CLASS_ORDER, option.dose_after, strict=True) if d > 0}


def test_calibration_uses_the_option_taken(internal: SimulatedAudit) -> None:
    """The follow-up assessment's regimen names the option taken; an accepted suggestion
    names its option when the card record says which; an override without either leaves the
    outcome out; otherwise rank 1 is assumed, and the report says how often."""
    a, o = next((a, o) for a, o in join_outcomes(internal.assessments, internal.outcomes)
                if sum(x["rank"] is not None for x in a.options) >= 3)
    second = next(x for x in a.options if x["rank"] == 2)
    base = a.features["sbp_clinic"]
    assert base is not None
    follow_up = replace(a, request_id="fu", hook_instance="fu",
                        received_at=o.observed_at + timedelta(days=2),
                        regimen=_regimen_after(a, second["id"]))
    cal = calibration([a], [o], 0.8, [], [follow_up])
    assert cal["basis"]["follow-up-regimen"] == cal["n"] == 1
    assert cal["citl"] == pytest.approx((o.sbp - base) - second["predicted_sbp_change"])
    unchanged = calibration([a], [o], 0.8, [], [replace(follow_up, regimen=a.regimen)])
    assert (unchanged["n"], unchanged["excluded"]) == (0, {"follow-up-regimen-unchanged": 1})
    # a rank-1 fallback, said so in the report
    alone = calibration([a], [o], 0.8)
    assert alone["basis"]["rank-1-fallback"] == 1
    assert alone["rank1_fallback_share"] == 1.0
    assert "rank-1-fallback" in alone["basis_note"]

    pairs = _pairs(internal)
    accepted = [(a, opt) for a, _, opt, basis in pairs if basis == "accepted-suggestion"]
    assert accepted
    # the option is the one the accepted suggestion ordered, as the card record names it
    # (not rank 1 by assumption: with the guideline-first ranking that is most often the same
    # option, so the record is what is checked)
    for a, opt in accepted:
        named = {s["option"] for c in a.cards for s in c["suggestions"]
                 if isinstance(s, dict) and s.get("option")}
        assert opt["id"] in named
    bare = [replace(a, cards=[{**c, "suggestions": [s["uuid"] for s in c["suggestions"]]}
                              for c in a.cards]) for a, _ in accepted]
    by_card = {f.card_uuid: [f] for f in internal.feedback}
    assert {taken_option(b, by_card, None)[1] for b in bare} == {"accepted-card"}
    full = calibration(internal.assessments, internal.outcomes, 0.8, internal.feedback)
    overridden = {c["uuid"] for a in internal.assessments for c in a.cards} & {
        f.card_uuid for f in internal.feedback if f.outcome == "overridden"}
    assert overridden
    assert full["excluded"]["overridden-option-unknown"] > 0
    assert full["n"] + sum(full["excluded"].values()) == len(
        join_outcomes(internal.assessments, internal.outcomes))


@pytest.mark.parametrize(("change", "fails"), [
    # the drugs work 5 mmHg less than predicted: the simulated (noisy) outcomes, shifted
    (lambda p, y: y + 5.0, "calibration-in-the-large"),
    # noise-free outcomes: a window of a few hundred noisy ones pins the slope only to about
    # +-1 (99%), so the slope gates catch gross miscalibration only (plan rationale)
    (lambda p, y: 0.3 * p - 8.4, "calibration-slope-low"),   # differences exaggerated
    (lambda p, y: 2.0 * p + 12.0, "calibration-slope-high"),  # differences understated
])
def test_calibration_gates_fail_on_a_miscalibrated_window(
        internal: SimulatedAudit, change: Any, fails: str) -> None:
    """Planted outcomes (observed change as a function of the prediction of the option taken
    p and the simulated observed change y) fail the realised-calibration gate they should,
    and leave drift alone."""
    outcomes = []
    for a, o, option, _ in _pairs(internal):
        base = a.features["sbp_clinic"]
        assert base is not None
        observed = change(float(option["predicted_sbp_change"]), o.sbp - base)
        outcomes.append(replace(o, sbp=base + observed))
    report = monitor(AuditWindow(internal.assessments, internal.feedback, outcomes))
    print(f"\n{fails}: CITL {report['calibration']['citl']:+.2f} (lower99 "
          f"{report['calibration']['citl_abs_lower99']:.2f}), slope "
          f"{report['calibration']['slope']:.2f}, failed {report['failed_gates']}")
    assert fails in report["failed_gates"]
    assert not {"input-drift-alarms", "prediction-drift"} & set(report["failed_gates"])

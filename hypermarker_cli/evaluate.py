"""``hypermarker evaluate``: the evaluation harness from the command line (issue 6).

One command is both the CI gate and the Kubernetes CronJob: it runs the suites in-process
through the artifacts (default) or against a running service (``--target``), applies the
versioned safety-monitoring plan, writes JSON and HTML (with the run's provenance: time,
commit, artifact and plan hashes), and exits with :data:`evaluation.checks.EXIT_CODES`: 0 when
every gate passes, 1 when a gate fails, 3 when no gate failed but one could not be judged
(insufficient data); 2 on a usage or plan error (a fhir suite without bundles included).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from hypermarker_cli.choices import Guideline
from models.manifest import DEFAULT_ARTIFACTS


class Suite(StrEnum):
    INTERNAL = "internal"
    EXTERNAL = "external"
    SAFETY = "safety"
    FHIR = "fhir"
    RATIONALE = "rationale"


class RationaleCases(StrEnum):
    """Case sources of the rationale suite (:class:`evaluation.rationale_suite.CaseSource`)."""

    SIMULATED = "simulated"
    FHIR = "fhir"
    SAFETY = "safety"


#: The environment variable the rationale suite reads an LLM API key from (never an option:
#: a command line is visible to every user of the machine).
LLM_API_KEY_ENV = "HYPERMARKER_LLM_API_KEY"


def evaluate(
    suite: Annotated[list[Suite], typer.Option(help="Suite(s) to run (repeatable).")],
    patients: Annotated[int, typer.Option(help="Simulated patients per site suite.")] = 50_000,
    limit: Annotated[int | None, typer.Option(help="Cap on safety-matrix patients.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated held-out patients.")] = 9001,
    guideline: Annotated[Guideline, typer.Option(help="Guideline profile.")] = Guideline.NICE,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON report here.")]
    = None,
    html_out: Annotated[Path | None, typer.Option(
        "--html", help="Write the self-contained HTML report here.")] = None,
    plan: Annotated[Path | None, typer.Option(
        help="Safety-monitoring plan (TOML); default: the bundled evaluation/plan.toml.")]
    = None,
    fhir_dir: Annotated[Path | None, typer.Option(
        "--fhir-dir", help="Folder of FHIR Bundles for the fhir suite; default: the Synthea "
        "fixtures vendored in the repository (tests/fixtures/synthea-r4).")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Assessment date for the fhir suite in-process (YYYY-MM-DD); default: "
        "the latest BP panel or Encounter of each bundle. With --target the service's day "
        "(today) is used.")] = None,
    target: Annotated[str | None, typer.Option(
        help="Base URL of a running service: send the cases as signed CDS Hooks requests "
        "instead of scoring in-process.")] = None,
    private_key: Annotated[Path | None, typer.Option(
        "--private-key", help="PEM private key to sign client JWTs (target mode).")] = None,
    iss: Annotated[str | None, typer.Option(help="JWT issuer (target mode).")] = None,
    kid: Annotated[str | None, typer.Option(help="JWT key id (target mode).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Processes that rank the site suites' patients (default: the CPUs this process "
        "may use).")] = None,
    quiet: Annotated[bool, typer.Option(help="Print only the checks summary.")] = False,
    artifacts: Annotated[Path, typer.Option(help="Artifacts directory.")] = DEFAULT_ARTIFACTS,
    llm_url: Annotated[str | None, typer.Option(
        "--llm-url", help="rationale suite: base URL of an OpenAI-compatible server (vLLM, "
        "llama.cpp); an API key is read from HYPERMARKER_LLM_API_KEY.")] = None,
    llm_model: Annotated[list[str] | None, typer.Option(
        "--llm-model", help="rationale suite: served model name (repeatable: one report per "
        "model); default: the server's first model.")] = None,
    repeats: Annotated[int, typer.Option(
        min=1, help="rationale suite: answers asked per case.")] = 3,
    cases: Annotated[list[RationaleCases] | None, typer.Option(
        "--cases", help="rationale suite: case sources (repeatable); default: all.")] = None,
    rationale_patients: Annotated[int, typer.Option(
        "--rationale-patients", min=0,
        help="rationale suite: simulated patients among the cases.")] = 20,
    llm_budget: Annotated[float, typer.Option(
        "--llm-budget", min=0.1, help="rationale suite: seconds one answer may take (the "
        "service's own budget is shorter; here the text is measured, its latency reported).")]
    = 30.0,
    llm_temperature: Annotated[float, typer.Option(
        "--llm-temperature", min=0.0, help="rationale suite: sampling temperature (0: what "
        "the service asks for).")] = 0.0,
    markdown_out: Annotated[Path | None, typer.Option(
        "--markdown", help="Write the rationale suite's figures as Markdown here.")] = None,
) -> None:
    """Run evaluation suites and apply the safety-monitoring plan; exit 1 if a gate fails, 3
    if none failed but one could not be judged (insufficient data), 2 on a usage error.

    Suites: internal/external (simulated held-out patients of each site, with counterfactual
    truth), safety (every combination of contraindicating conditions and lab thresholds), fhir
    (a folder of FHIR Bundles), rationale (LLM rationales of simulated, FHIR and clinical-safety
    cases against --llm-url, judged by the verifier). Without --target the artifacts score
    in-process; with --target
    the same cases go to the running service and its answers are scored (fhir: compared with
    the in-process assessment as of today, the day the service assesses).
    """
    from evaluation.checks import run_checks, summary
    from evaluation.fhir_suite import DEFAULT_FHIR_DIR, bundle_files
    from evaluation.plan import DEFAULT_PLAN, PlanError, load_plan
    from evaluation.report import to_json, write_html, write_json
    from evaluation.report_io import run_provenance
    from models.guideline.profiles import PROFILES
    from models.scorer import Scorer

    try:
        the_plan = load_plan(plan or DEFAULT_PLAN)
    except PlanError as e:
        typer.echo(f"error: plan: {e}", err=True)
        raise typer.Exit(2) from e
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError as e:
        typer.echo(f"error: --as-of {as_of!r} is not YYYY-MM-DD", err=True)
        raise typer.Exit(2) from e
    names = list(dict.fromkeys(suite))
    if Suite.RATIONALE in names and (llm_url is None or target is not None):
        typer.echo("error: rationale: give --llm-url (and no --target: the suite asks an LLM "
                   "server, not the service)", err=True)
        raise typer.Exit(2)
    if Suite.FHIR in names and not bundle_files(fhir_dir or DEFAULT_FHIR_DIR):
        typer.echo(f"error: fhir: no FHIR bundles (*.json) in {fhir_dir or DEFAULT_FHIR_DIR}: "
                   "a suite without inputs proves nothing", err=True)
        raise typer.Exit(2)
    started = time.time()
    scorer = Scorer.load(artifacts)
    profile = PROFILES[guideline.value]
    if target is not None:
        from evaluation.target_service import TargetClient, run_target_suite

        if Suite.FHIR in names and day is not None:
            typer.echo("error: --as-of applies in-process only: a service assesses as of the "
                       "day it receives a request, and target mode compares with that day",
                       err=True)
            raise typer.Exit(2)
        try:
            client = TargetClient.create(target, private_key, iss, kid)
        except (OSError, ValueError) as e:
            typer.echo(f"error: target: {e}", err=True)
            raise typer.Exit(2) from e
        from evaluation.progress import progress_bar
        from evaluation.target_fhir import TargetFhirError, run_target_fhir_suite

        reports = []
        with client:
            for i, n in enumerate(names):
                typer.echo(f"running suite {n.value} against {target}", err=True)
                if n is Suite.FHIR:
                    folder = fhir_dir or DEFAULT_FHIR_DIR
                    files = len(bundle_files(folder))
                    with progress_bar("target fhir bundles", files) as advance:
                        try:
                            reports.append(run_target_fhir_suite(client, folder, scorer,
                                                                 profile, advance))
                        except TargetFhirError as e:
                            typer.echo(f"error: target: {e}", err=True)
                            raise typer.Exit(2) from e
                    continue
                total = (limit or 300) if n is Suite.SAFETY else patients
                with progress_bar(f"target {n.value}", total) as advance:
                    reports.append(run_target_suite(client, n.value, scorer, profile,
                                                    patients, seed + i, limit, advance))
        mode = "target"
    else:
        procs = workers if workers is not None else _cpus()
        rationale = None
        if llm_url is not None:
            from evaluation.rationale_suite import CaseSource, RationaleRun

            rationale = RationaleRun(
                llm_url, tuple(llm_model or ()), repeats,
                tuple(CaseSource(c.value) for c in cases or RationaleCases),
                rationale_patients, llm_budget, llm_temperature, seed,
                os.environ.get(LLM_API_KEY_ENV) or None)
        reports = [_in_process(n, i, scorer, profile, patients, seed, limit, fhir_dir, day,
                               procs, rationale)
                   for i, n in enumerate(names)]
        mode = "in-process"
    try:
        results = run_checks(the_plan, reports)
    except PlanError as e:  # a metric path the reports lack: the plan is wrong, not a gate
        typer.echo(f"error: plan: {e}", err=True)
        raise typer.Exit(2) from e
    checks = summary(the_plan, results)
    command = ["hypermarker", "evaluate", *(a for n in names for a in ("--suite", n.value)),
               "--patients", str(patients), "--seed", str(seed), "--guideline",
               guideline.value, *(["--limit", str(limit)] if limit is not None else []),
               *(["--target", target] if target else []),
               *(["--fhir-dir", str(fhir_dir)] if fhir_dir else []),
               *(["--plan", str(plan)] if plan else []), "--artifacts", str(artifacts),
               *(["--llm-url", llm_url, *(a for m in llm_model or () for a in ("--llm-model", m)),
                  "--repeats", str(repeats),
                  *(a for c in cases or () for a in ("--cases", c.value)),
                  "--rationale-patients", str(rationale_patients), "--llm-budget",
                  f"{llm_budget:g}", "--llm-temperature", f"{llm_temperature:g}"]
                 if Suite.RATIONALE in names and llm_url else [])]
    provenance = run_provenance(plan or DEFAULT_PLAN, artifacts / "manifest.json", command)
    provenance["seconds"] = round(time.time() - started, 1)
    result: dict[str, Any] = {
        "model": {"id": scorer.manifest.model_id, "version": scorer.manifest.version,
                  "provider": scorer.provider},
        "mode": mode,
        "target": target,
        "provenance": provenance,
        "total_patients": sum(r["patients"] for r in reports),
        "total_contraindicated_first": sum(r.get("contraindicated_first", 0) for r in reports),
        "gate_passed": checks["gate_passed"],
        "status": checks["status"],
        "exit_code": checks["exit_code"],
        "checks": checks,
        "suites": reports,
    }
    if json_out is not None:
        write_json(result, json_out)
    if html_out is not None:
        write_html(result, html_out)
    if markdown_out is not None:
        from evaluation.rationale_suite import markdown

        markdown_out.parent.mkdir(parents=True, exist_ok=True)
        markdown_out.write_text("\n".join(markdown(r) for r in reports
                                          if r.get("suite") == Suite.RATIONALE.value),
                                encoding="utf-8")
    if quiet:
        typer.echo(to_json({k: checks[k] for k in (
            "plan_version", "status", "exit_code", "gate_passed", "gates_failed",
            "gates_insufficient", "warnings", "counts")}))
    else:
        typer.echo(to_json(result))
    if checks["gates_failed"]:
        typer.echo(f"gate failed: {', '.join(checks['gates_failed'])}", err=True)
    if checks["gates_insufficient"]:
        typer.echo("cannot judge (insufficient data): "
                   f"{', '.join(checks['gates_insufficient'])}", err=True)
    if checks["exit_code"]:
        sys.exit(checks["exit_code"])


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def _throughput_line(report: dict[str, Any]) -> str:
    """The suite's end-to-end throughput and its parts, in words."""
    t = report["throughput"]
    return (f"{report['suite']}: {t['rows']:,} patient-options of {report['patients']:,} "
            f"patients in {t['seconds']:.1f} s end to end (ONNX scoring {t['scoring_seconds']:.1f} "
            f"s, prediction metrics {t['metrics_seconds']:.1f} s, guideline rules + ranking + "
            f"decision metrics {t['decisions_seconds']:.1f} s on {t['ranking_workers']} "
            f"process(es)): {t['rows_per_second']:,.0f} patient-options/s, SHAP off (budget "
            f"{t['budget_rows_per_second']:,.0f}); simulating the cohort "
            f"{t['cohort_simulation_seconds']:.1f} s, outcomes "
            f"{t['outcome_simulation_seconds']:.1f} s and fitting the feature-explainable oracle "
            f"{t['feature_oracle_seconds']:.1f} s not included")


def _in_process(name: Suite, i: int, scorer: Any, profile: Any, patients: int, seed: int,
                limit: int | None, fhir_dir: Path | None, day: date | None,
                workers: int = 1, rationale: Any = None) -> dict[str, Any]:
    from evaluation.cohort import simulated_case_set
    from evaluation.fhir_suite import (
        DEFAULT_FHIR_DIR,
        GENERATED_PATIENTS,
        bundle_files,
        run_fhir_suite,
    )
    from evaluation.progress import progress_bar
    from evaluation.safety_matrix import run_safety_matrix
    from evaluation.suites import run_site_suite

    typer.echo(f"running suite {name.value}", err=True)
    if name is Suite.SAFETY:
        return run_safety_matrix(scorer, profile, limit)
    if name is Suite.RATIONALE:
        from dataclasses import replace

        from evaluation.rationale_suite import run_rationale_suite
        from models.explainer import Explainer
        from models.pipeline import Pipeline

        pipeline = Pipeline(scorer, Explainer.load(scorer.manifest), profile, explain_top=0)
        run = replace(rationale, fhir_dir=fhir_dir) if fhir_dir else rationale
        report = run_rationale_suite(pipeline, run, progress_bar)
        for m in report["models"]:
            typer.echo(f"rationale: {m['model']}: {m['answered']} of {m['attempts']} answered, "
                       f"rejected {m['rejection_rate'] or 0:.0%}; shown with errors: "
                       f"{m['with_verifier']['errors']}", err=True)
        return report
    if name is Suite.FHIR:
        folder = fhir_dir or DEFAULT_FHIR_DIR
        files = len(bundle_files(folder))
        with progress_bar("fhir bundles", files) as advance:
            # the vendored fixtures, and simulated patients written as FHIR beside them; a
            # folder of the site's own bundles is reported alone
            return run_fhir_suite(folder, scorer, profile, day, advance,
                                  generated=GENERATED_PATIENTS if fhir_dir is None else 0,
                                  seed=seed + 3000)
    t0 = time.perf_counter()
    cases = simulated_case_set(name.value, patients, seed + i)
    t_cohort = time.perf_counter() - t0
    with progress_bar(f"{name.value}: ranking", patients) as advance:
        report = run_site_suite(cases, scorer, profile, outcome_seed=seed + 1000 + i,
                                progress=advance, workers=workers)
    report["throughput"]["cohort_simulation_seconds"] = t_cohort
    typer.echo(_throughput_line(report), err=True)
    return report

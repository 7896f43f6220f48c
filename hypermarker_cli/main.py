"""The ``hypermarker`` command (DESIGN.md section 9)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from hypermarker_cli.choices import Guideline, OutputFormat
from models.manifest import DEFAULT_ARTIFACTS

app = typer.Typer(
    help="Hypertension treatment decision support (research software: simulated training "
    "data, not clinically validated).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
model_app = typer.Typer(help="Inspect and check model artifacts.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@app.command()
def train(
    seed: Annotated[
        int, typer.Option(help="Random seed of the simulated cohort and training.")
    ] = 20261124,
    out: Annotated[
        Path, typer.Option(help="Directory to write the artifacts to.")
    ] = DEFAULT_ARTIFACTS,
    patients: Annotated[int, typer.Option(help="Simulated internal-site patients.")] = 60_000,
) -> None:
    """Simulate the cohort, train, export ONNX, write manifest + model card, then verify.

    When writing somewhere other than the committed artifacts, also reports whether the run
    reproduced them (same LightGBM models and metrics). Exits 1 if verification fails.
    """
    from models.training.train import TrainConfig, compare_with
    from models.training.train import train as run_train
    from models.training.verify import verify

    manifest = run_train(
        TrainConfig(seed=seed, n_patients=patients), out, log=lambda m: typer.echo(m, err=True)
    )
    report = verify(out)
    result = {
        "out": str(out),
        "metrics": manifest["metrics"],
        "verify": {k: report[k] for k in ("passed", "onnx_vs_lightgbm", "shap_additivity")},
    }
    if (
        out.resolve() != DEFAULT_ARTIFACTS.resolve()
        and (DEFAULT_ARTIFACTS / "manifest.json").is_file()
    ):
        result["reproduces_committed_artifacts"] = compare_with(manifest, DEFAULT_ARTIFACTS)
    typer.echo(json.dumps(result, indent=2))
    if not report["passed"]:
        sys.exit(1)


@app.command()
def assess(
    file: Annotated[Path | None, typer.Argument(
        help="A FHIR R4 Bundle (any type), a CDS Hooks prefetch object or request, or a "
        "resource array (JSON).", exists=True, dir_okay=False)] = None,
    features: Annotated[Path | None, typer.Option(
        "--features", help="A features document (JSON) instead of FHIR.", exists=True,
        dir_okay=False)] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Assessment date (YYYY-MM-DD) for FHIR input; default today.")] = None,
    format: Annotated[OutputFormat, typer.Option("--format", help="Output format.")]
    = OutputFormat.JSON,
    guideline: Annotated[Guideline, typer.Option(help="Guideline profile.")] = Guideline.NICE,
    artifacts: Annotated[Path, typer.Option(help="Artifacts directory.")] = DEFAULT_ARTIFACTS,
    patient_id: Annotated[str | None, typer.Option(
        "--patient-id", help="The patient the assessment is for: the input's Patient must have "
        "this id (a whole CDS Hooks request is checked against its context.patientId).")]
    = None,
) -> None:
    """Assess one patient offline and print the ranked options (JSON or text).

    Exit status 2 with the reason on stderr when the input is malformed or is not exactly one
    patient's record (another patient's Patient or resources, a Patient without an id).
    """
    from datetime import date

    from fhir_mappings.errors import InputError
    from fhir_mappings.features import feature_vector_from_document
    from models.assessment_document import assessment_document
    from models.assessment_text import render_text
    from models.pipeline import Pipeline

    if (file is None) == (features is None):
        typer.echo("error: give either a FHIR FILE or --features FILE", err=True)
        raise typer.Exit(2)
    source = file or features
    assert source is not None
    # every option explained (explain_top None), as the panel shows them
    pipeline = Pipeline.load(artifacts, guideline=guideline.value, explain_top=None)
    try:
        day = date.fromisoformat(as_of) if as_of else None
        if features is not None:
            result = pipeline.assess_features(feature_vector_from_document(
                json.loads(features.read_text(encoding="utf-8"))))
        else:
            result = pipeline.assess_fhir(source.read_bytes(), day, patient_id=patient_id)
    except json.JSONDecodeError as e:
        typer.echo(f"error: {source} is not valid JSON: {e}", err=True)
        raise typer.Exit(2) from e
    except (InputError, ValueError) as e:
        typer.echo(f"error: {source}: {e}", err=True)
        raise typer.Exit(2) from e
    a = result.assessment
    typer.echo(render_text(a) if format is OutputFormat.TEXT
               else json.dumps(assessment_document(a), indent=2),
               nl=format is not OutputFormat.TEXT)


from hypermarker_cli.evaluate import evaluate  # noqa: E402  (the command lives in its module)

app.command()(evaluate)


class AuthChoice(StrEnum):
    DEMO = "demo"
    JWT = "jwt"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    auth: Annotated[AuthChoice | None, typer.Option(
        help="Client auth; default: HYPERMARKER_AUTH_MODE, else demo (no auth, local only).")]
    = None,
) -> None:
    """Start the CDS Hooks service on embedded defaults: the bundled model, an SQLite audit
    store under ./var, and (unless configured) demo auth, which the production profile refuses.
    Every setting can be overridden with HYPERMARKER_* environment variables."""
    import os
    import tempfile

    import uvicorn

    from service.settings import Settings

    if auth is not None:
        os.environ["HYPERMARKER_AUTH_MODE"] = auth.value
    else:
        os.environ.setdefault("HYPERMARKER_AUTH_MODE", "demo")
    os.environ["HYPERMARKER_WORKERS"] = str(workers)  # several need the shared stores
    # Several workers share their Prometheus counters through files in one directory (each
    # worker's /metrics answers for all); emptied here, once, before any worker starts.
    multiproc = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if workers > 1 and not multiproc:
        multiproc = tempfile.mkdtemp(prefix="hypermarker-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc
    if multiproc:
        from service.metrics import prepare_multiprocess_dir  # after the variable is set

        prepare_multiprocess_dir(Path(multiproc))
    Settings()  # fail fast, with the reasons, on unsafe or malformed settings
    from service.http_protocol import server_options

    uvicorn.run("service.app:create_app", factory=True, host=host, port=port,
                workers=workers, log_config=None, access_log=False, **server_options())


@model_app.command("verify")
def model_verify(
    artifacts: Annotated[Path, typer.Option(help="Artifacts directory.")] = DEFAULT_ARTIFACTS,
) -> None:
    """Checksums, ONNX parity against LightGBM and SHAP additivity, as JSON; exit 1 on failure."""
    from models.training.verify import verify

    report = verify(artifacts)
    typer.echo(json.dumps(report, indent=2))
    if not report["passed"]:
        sys.exit(1)


@app.command()
def monitor(
    database: Annotated[str, typer.Option(
        help="Audit store URL: sqlite:///path.db or postgresql+psycopg://...")],
    since: Annotated[str | None, typer.Option(
        help="Start of the window, ISO 8601 (a date or a datetime; UTC if no offset).")]
    = None,
    until: Annotated[str | None, typer.Option(help="End of the window (exclusive), ISO 8601.")]
    = None,
    window: Annotated[float | None, typer.Option(
        help="Days per window for drift over time.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON report here.")]
    = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")]
    = None,
    plan: Annotated[Path | None, typer.Option(
        help="Safety-monitoring plan (TOML) whose [[monitor.gate]] tables are applied; "
        "default: the bundled evaluation/plan.toml.")] = None,
) -> None:
    """Post-deployment monitoring of the audit store: drift, overrides, alerts, calibration
    and latency; exit 1 if a safety gate fails (the CI gate and the Kubernetes CronJob), 3 if
    none failed but one cannot be judged (insufficient data), 2 if the store or the plan
    cannot be read."""
    from datetime import UTC, datetime, timedelta

    from evaluation.monitor import EXIT_CODES, MonitorError, run_monitor, summary_text
    from evaluation.monitor_report import write_html, write_json

    def when(value: str | None, name: str) -> datetime | None:
        if value is None:
            return None
        try:
            t = datetime.fromisoformat(value)
        except ValueError as e:
            typer.echo(f"error: --{name} {value!r} is not an ISO 8601 date or datetime", err=True)
            raise typer.Exit(2) from e
        return t if t.tzinfo is not None else t.replace(tzinfo=UTC)

    if window is not None and window <= 0:
        typer.echo("error: --window must be a positive number of days", err=True)
        raise typer.Exit(2)
    try:
        report = run_monitor(database, when(since, "since"), when(until, "until"),
                             timedelta(days=window) if window else None, plan)
    except MonitorError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    if json_out is not None:
        write_json(report, json_out)
    if html_out is not None:
        write_html(report, html_out)
    typer.echo(summary_text(report))
    if EXIT_CODES[report["status"]]:
        sys.exit(EXIT_CODES[report["status"]])


if __name__ == "__main__":
    app()

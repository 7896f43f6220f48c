"""The ``hypermarker`` command (DESIGN.md section 9)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

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

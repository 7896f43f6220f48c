"""`hypermarker model verify` and `hypermarker train` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hypermarker_cli.main import app
from models.training.train import TrainConfig, train

runner = CliRunner()


def test_model_verify_passes_on_the_committed_artifacts() -> None:
    """Checksums, parity of both ONNX forms and SHAP additivity all pass under 1e-4."""
    result = runner.invoke(app, ["model", "verify"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] is True
    assert report["checksums"]["passed"] is True
    forms = {k: v for k, v in report["onnx_vs_lightgbm"].items() if isinstance(v, dict)}
    assert {"onnx_tree_ensemble@CPUExecutionProvider",
            "onnx_tensorised@CPUExecutionProvider"} <= set(forms)
    for form in forms.values():
        assert max(form["max_abs_diff"].values()) < 1e-4
    assert report["shap_additivity"]["max_abs_error_vs_served"] < 1e-4
    assert report["parity_rows"] > 5000


def test_model_verify_fails_on_a_tampered_artifact(tmp_path: Path) -> None:
    """A corrupted model file makes verify exit non-zero and name the file."""
    import shutil

    from models.manifest import DEFAULT_ARTIFACTS

    dst = tmp_path / "a"
    shutil.copytree(DEFAULT_ARTIFACTS, dst)
    (dst / "lgb_sbp_change.txt").write_text("tree\n")

    result = runner.invoke(app, ["model", "verify", "--artifacts", str(dst)])

    assert result.exit_code == 1
    assert json.loads(result.output)["checksums"]["files"]["lgb_sbp_change.txt"] is False


@pytest.mark.slow
def test_training_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    """Two runs with one seed write identical models and metrics; another seed differs."""
    cfg = TrainConfig(n_patients=1500, n_external=500, rounds=40)
    a = train(cfg, tmp_path / "a", log=lambda _: None)
    b = train(cfg, tmp_path / "b", log=lambda _: None)
    c = train(TrainConfig(seed=7, n_patients=1500, n_external=500, rounds=40), tmp_path / "c",
              log=lambda _: None)

    assert a["files"] == b["files"]
    assert a["metrics"] == b["metrics"]
    assert a["files"] != c["files"]
    assert (tmp_path / "a" / "MODEL_CARD.md").read_text() == (
        tmp_path / "b" / "MODEL_CARD.md").read_text()

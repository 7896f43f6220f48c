"""``hypermarker evaluate`` with a plan whose metric path the reports lack: exit 2, a plan
error, never a skipped gate (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluation.plan import DEFAULT_PLAN
from hypermarker_cli.main import app as cli


@pytest.mark.slow
def test_a_metric_path_the_report_lacks_is_a_plan_error(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(DEFAULT_PLAN.read_text().replace(
        'metric = "contraindicated_first"', 'metric = "contraindicated_first_renamed"', 1))

    result = CliRunner().invoke(cli, ["evaluate", "--suite", "safety", "--plan", str(plan),
                                      "--quiet"])

    assert result.exit_code == 2, result.output
    assert "contraindicated_first_renamed" in result.output

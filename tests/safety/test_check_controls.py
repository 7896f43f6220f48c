"""check_controls.py stays usable: each control it removes is still where it says (the
mutation's source text occurs exactly once), and each names tests that exist."""

from __future__ import annotations

import pytest

from tests.safety.check_controls import MUTATIONS, ROOT, Mutation


@pytest.mark.parametrize("m", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_each_control_is_where_the_check_says(m: Mutation) -> None:
    assert (ROOT / m.path).read_text().count(m.old) == 1
    assert m.tests
    for test in m.tests:
        assert (ROOT / test).is_file(), test


def test_every_controlled_hazard_of_the_log_has_a_mutation() -> None:
    log = (ROOT / "docs" / "safety" / "hazard-log.md").read_text()
    controlled = {line.split("|")[1].strip() for line in log.splitlines()
                  if line.startswith("| H-") and line.rstrip().endswith("| controlled |")}
    checked = {m.name.split()[0] for m in MUTATIONS}
    assert controlled <= checked, sorted(controlled - checked)

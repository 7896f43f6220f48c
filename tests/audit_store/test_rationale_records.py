"""The audit record of an LLM rationale (issue 16): stored, read back, spooled and replayed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from audit_store import AuditStore
from audit_store.records import record_from_dict
from tests.audit_store import factories


@pytest.fixture
def sqlite_store(tmp_path: Path) -> AuditStore:
    return AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "spool",
                           auto_replay=False)


def test_a_rationale_round_trips_through_the_database(sqlite_store: AuditStore) -> None:
    with sqlite_store as store:
        rec = factories.rationale(1)
        assert store.record_rationale(rec) == "database"
        assert store.record_rationale(rec) == "database"  # once per rationale_id
        assert list(store.rationales()) == [rec]


def test_a_rationale_round_trips_through_the_spool(tmp_path: Path) -> None:
    rec = factories.rationale(2, status="verified")
    assert record_from_dict("rationale", rec.to_dict()) == rec
    with AuditStore.open(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "spool",
                         auto_replay=False) as store:
        store._spool.append(rec)
        assert store.replay_spool() == 1
        assert list(store.rationales()) == [rec]


@pytest.mark.parametrize(("field", "value"), [
    ("status", "maybe"), ("trigger", "cron"), ("request_id", ""),
    ("latency_ms", float("nan"))])
def test_a_rationale_record_refuses_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field if field != "request_id" else "required"):
        replace(factories.rationale(), **{field: value})


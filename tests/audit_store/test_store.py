"""The audit store on SQLite and on a real PostgreSQL server: round trips, idempotency,
migrations, WAL, reads for monitoring, and spooling when the database is unreachable."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, create_engine, func, inspect, select, table
from sqlalchemy.engine import URL

from audit_store import AuditStore, AuditUnavailable
from audit_store.engine import create_audit_engine
from audit_store.migrate import (
    VERSION_TABLE,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from audit_store.records import CARD_OVERRIDE_REASONS, IssuedCard, OfferedReason
from audit_store.schema import assessment_cards, assessments, feedback, metadata, outcomes
from audit_store.spool import Spool
from audit_store.table_rows import feedback_row
from tests.audit_store import factories
from tests.audit_store.conftest import render
from tests.audit_store.tcp_proxy import TcpProxy

TABLES = {"assessments", "assessment_cards", "feedback", "outcomes", "rationales",
          VERSION_TABLE}


def test_assessment_round_trip(store: AuditStore) -> None:
    recs = [factories.assessment(i, cards=2 if i == 1 else 1,
                                 llm={"model": "local-8b", "verified": True} if i == 2 else None)
            for i in range(3)]
    assert [store.record_assessment(r) for r in recs] == ["database"] * 3
    assert list(store.assessments()) == recs
    assert store.assessment("req-000001") == recs[1]
    assert store.assessment_for_card("card-000001-1") == recs[1]
    assert store.assessment("missing") is None
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(assessment_cards)).scalar() == 4
        vias = conn.execute(select(assessments.c.via).distinct()).scalars().all()
    assert vias == ["direct"]


def test_feedback_round_trip_and_idempotency(store: AuditStore) -> None:
    overridden, accepted = factories.feedback(1), factories.feedback(2, outcome="accepted")
    assert store.record_feedback(overridden) is True
    assert store.record_feedback(accepted) is True
    assert store.record_feedback(overridden) is False  # same key: stored once
    assert store.record_feedback(factories.feedback(1)) is False
    later = factories.feedback(1, at=factories.T0 + timedelta(hours=1))
    assert store.record_feedback(later) is True  # a new decision on the same card
    assert list(store.feedback()) == [overridden, accepted, later]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(feedback)).scalar() == 3


def test_outcome_round_trip(store: AuditStore) -> None:
    recs = [factories.outcome(i, setting="home" if i % 2 else "clinic") for i in range(4)]
    for rec in recs:
        store.record_outcome(rec)
    store.record_outcome(recs[0])  # the same observation twice is one observation
    assert list(store.outcomes()) == recs
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outcomes)).scalar() == 4


def test_an_assessment_and_the_readings_it_showed_are_one_write(store: AuditStore) -> None:
    """The outcomes passed with an assessment are stored with it; a reading that a later
    call shows again is kept once."""
    reading = factories.outcome(0)
    assert store.record_assessment(factories.assessment(0), [reading]) == "database"
    assert store.record_assessment(factories.assessment(1), [reading,
                                                             factories.outcome(1)]) == "database"
    assert [a.request_id for a in store.assessments()] == ["req-000000", "req-000001"]
    assert list(store.outcomes()) == [reading, factories.outcome(1)]


def test_reads_filter_by_time(store: AuditStore) -> None:
    for i in range(10):
        store.record_assessment(factories.assessment(i))
        store.record_feedback(factories.feedback(i))
        store.record_outcome(factories.outcome(i))
    since, until = factories.T0 + timedelta(seconds=4), factories.T0 + timedelta(seconds=7)
    assert [a.request_id for a in store.assessments(since, until)] == [
        "req-000004", "req-000005", "req-000006"]
    assert len(list(store.assessments(since=since))) == 6
    assert len(list(store.feedback(since=factories.T0 + timedelta(minutes=5, seconds=8)))) == 2
    assert len(list(store.outcomes(since=factories.T0 + timedelta(days=28, hours=9)))) == 1
    with pytest.raises(ValueError, match="timezone-aware"):
        list(store.assessments(since=since.replace(tzinfo=None)))


def test_migrations_create_the_schema_and_rerun(db_url: str, tmp_path: Path) -> None:
    engine = create_audit_engine(db_url)
    try:
        assert current_revision(engine) is None
        assert not set(inspect(engine).get_table_names()) & TABLES
        AuditStore.open(db_url, tmp_path / "s1").close()
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert current_revision(engine) == head_revision() == "0004"
        AuditStore.open(db_url, tmp_path / "s2").close()  # re-running is a no-op
        downgrade(engine, "base")
        assert not set(inspect(engine).get_table_names()) & (TABLES - {VERSION_TABLE})
        with AuditStore.open(db_url, tmp_path / "s3") as store:  # and back up again
            assert store.record_assessment(factories.assessment()) == "database"
        engine.dispose()  # pysqlite caches PRAGMA statements across the schema change
        indexes = {ix["name"] for t in ("assessments", "feedback", "outcomes",
                                        "assessment_cards")
                   for ix in inspect(engine).get_indexes(t)}
        assert {"ix_assessments_received_at", "ix_assessments_hook_instance",
                "ix_assessments_patient_ref", "ix_feedback_card_uuid",
                "ix_assessment_cards_card_uuid", "ix_outcomes_patient_ref"} <= indexes
    finally:
        engine.dispose()


def test_migrations_match_the_table_definitions(store: AuditStore) -> None:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE,
                                                     "compare_type": True})
        assert compare_metadata(ctx, metadata) == []


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    db = tmp_path / "wal" / "audit.db"
    with AuditStore.open(f"sqlite:///{db}", tmp_path / "spool") as store:
        store.record_assessment(factories.assessment())
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert (db.parent / "audit.db-wal").exists()
    raw = sqlite3.connect(db)
    try:  # WAL is a property of the file: any reader sees it
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("SELECT count(*) FROM assessments").fetchone() == (1,)
    finally:
        raw.close()


def test_in_memory_sqlite_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="in-memory"):
        AuditStore.open("sqlite://", tmp_path)


def test_unreachable_database_at_open_spools_then_catches_up(pg_url: URL,
                                                              tmp_path: Path) -> None:
    """The service starts with the database down: records spool; once it is back, the schema
    is migrated on first contact and the spool is replayed in the background."""
    proxy = TcpProxy((pg_url.host or "127.0.0.1", pg_url.port or 5432))
    proxy.start()
    proxy.kill()  # the port is known and now refuses connections
    via_proxy = render(pg_url.set(host="127.0.0.1", port=proxy.port))
    store = AuditStore.open(via_proxy, tmp_path / "spool", retry_interval_s=0.05)
    try:
        t = time.perf_counter()
        assert store.record_assessment(factories.assessment(0)) == "spool"
        assert store.record_feedback(factories.feedback(0)) is True
        assert time.perf_counter() - t < 2.0
        assert store.spool_depth() == 2
        assert not store.ping()
        proxy.start()
        time.sleep(0.1)  # past the breaker
        assert store.ping()
        assert store.record_assessment(factories.assessment(1)) == "database"
        deadline = time.monotonic() + 10
        while store.spool_depth() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.spool_depth() == 0
        store.close()  # waits for the background replay
        assert [a.request_id for a in store.assessments()] == ["req-000000", "req-000001"]
        assert list(store.feedback()) == [factories.feedback(0)]
    finally:
        store.close()
        proxy.kill()


def test_readings_shown_while_the_database_is_down_are_spooled_too(pg_url: URL,
                                                                    tmp_path: Path) -> None:
    proxy = TcpProxy((pg_url.host or "127.0.0.1", pg_url.port or 5432))
    proxy.start()
    proxy.kill()
    via_proxy = render(pg_url.set(host="127.0.0.1", port=proxy.port))
    store = AuditStore.open(via_proxy, tmp_path / "spool", retry_interval_s=0.05)
    try:
        assert store.record_assessment(factories.assessment(0), [factories.outcome(0)]) == "spool"
        assert store.spool_depth() == 2
        proxy.start()
        time.sleep(0.1)
        assert store.replay_spool() == 2
        assert [a.request_id for a in store.assessments()] == ["req-000000"]
        assert list(store.outcomes()) == [factories.outcome(0)]
    finally:
        store.close()
        proxy.kill()


def test_both_database_and_spool_failing_raises(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with AuditStore.open(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "spool") as store:
        store.engine.dispose()
        monkeypatch.setattr(store, "_in_transaction", _raise_operational)
        assert store.record_assessment(factories.assessment(0)) == "spool"

        def broken_disk(*_: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(store._spool, "append", broken_disk)
        store._down_until = 0.0
        with pytest.raises(AuditUnavailable):
            store.record_assessment(factories.assessment(1))


def _raise_operational(*_: object) -> None:
    from sqlalchemy.exc import OperationalError
    raise OperationalError("INSERT", {}, Exception("database is locked"))


def test_nothing_from_the_records_reaches_the_log(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rec = factories.assessment(9)
    with (structlog.testing.capture_logs() as events,
          AuditStore.open(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "spool") as store):
        store.record_assessment(rec)
        store.record_assessment(rec)  # duplicate request id: logged, without contents
        monkeypatch.setattr(store, "_in_transaction", _raise_operational)
        store.record_assessment(factories.assessment(10))
        monkeypatch.undo()
        (store.spool_dir / "audit-x-1.jsonl").write_text('{"kind": "assessment", "rec')
        store.replay_spool()
    assert len(events) >= 3
    text = repr(events)
    for secret in (rec.patient_ref, rec.feature_hash, "sbp_clinic", "req-000009", "card-0000"):
        assert secret not in text


def test_sqlite_url_with_relative_path_creates_its_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with AuditStore.open("sqlite:///var/hypermarker/audit.db", Path("var/spool")) as store:
        assert store.record_assessment(factories.assessment()) == "database"
    assert (tmp_path / "var" / "hypermarker" / "audit.db").exists()


def test_bare_postgresql_url_uses_psycopg(pg_url: URL, tmp_path: Path) -> None:
    bare = render(pg_url.set(drivername="postgresql"))
    with AuditStore.open(bare, tmp_path / "spool") as store:
        assert store.engine.dialect.driver == "psycopg"
        assert store.ping()
        with store.engine.connect() as conn:  # a hung database fails fast, too
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "5s"
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "5s"
            assert conn.exec_driver_sql("SHOW application_name").scalar() == "hypermarker-audit"
    engine = create_engine(render(pg_url))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql(
                "SELECT count(*) FROM audit_alembic_version").scalar() == 1
    finally:
        engine.dispose()


def test_the_status_migration_keeps_every_audit_row(db_url: str, tmp_path: Path) -> None:
    """0001 -> 0002 rebuilds the assessments table on SQLite (a CHECK constraint changes):
    with foreign keys on, dropping the old table would cascade-delete the card rows of every
    recorded assessment. Records written at 0001 are all there at 0002, and the new statuses
    are accepted."""
    engine = create_audit_engine(db_url)
    try:
        upgrade(engine, "0001")
        with AuditStore.open(db_url, tmp_path / "s1", migrate=False) as store:
            for i in range(3):
                store.record_assessment(factories.assessment(i, cards=2))
        upgrade(engine, "0002")
        assert current_revision(engine) == "0002"
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(assessments)).scalar() == 3
            assert conn.execute(
                select(func.count()).select_from(assessment_cards)).scalar() == 6
        with AuditStore.open(db_url, tmp_path / "s2") as store:
            assert store.assessment_for_card("card-000001-1") is not None
            for status in ("pathway", "refused"):
                rec = factories.assessment(10 + len(status))
                rec = type(rec)(**{**rec.to_dict(), "status": status,
                                   "received_at": rec.received_at})
                assert store.record_assessment(rec) == "database"
    finally:
        engine.dispose()


def test_find_card_reads_the_issued_card_from_its_record(store: AuditStore) -> None:
    """What feedback is checked against: the card's service, suggestions and offered reasons
    (None when the record does not list them: records of earlier releases)."""
    rec = factories.assessment(3, cards=2)
    entry = {**rec.cards[1],
             "suggestions": [{"uuid": "s-1", "option": "add_ccb"}, {"uuid": None}],
             CARD_OVERRIDE_REASONS: [{"code": "patient-refuses", "system": "sys",
                                      "display": "Patient declines"}]}
    assert store.record_assessment(replace(rec, cards=[rec.cards[0], entry])) == "database"

    assert store.find_card("card-000003-1") == IssuedCard(
        "card-000003-1", "req-000003", "hypermarker-hypertension", frozenset({"s-1"}),
        (OfferedReason("patient-refuses", "sys", "Patient declines"),))
    legacy = store.find_card("card-000003-0")
    assert isinstance(legacy, IssuedCard)
    assert (legacy.suggestions, legacy.override_reasons) == (frozenset({"sugg-000003-0"}), None)
    assert store.find_card("card-never-issued") == "unknown"


def test_a_card_whose_assessment_waits_in_the_spool_is_pending(store: AuditStore) -> None:
    """While any record waits in the spool a missing card may be there: "pending", not
    "unknown"; after the replay the card is found and a never-issued one is unknown."""
    Spool(store.spool_dir).append(factories.assessment(4))

    assert store.find_card("card-000004-0") == "pending"
    assert store.find_card("card-never-issued") == "pending"
    assert store.replay_spool() == 1
    assert isinstance(store.find_card("card-000004-0"), IssuedCard)
    assert store.find_card("card-never-issued") == "unknown"


def test_a_card_lookup_with_the_database_down_is_pending(pg_url: URL, tmp_path: Path) -> None:
    proxy = TcpProxy((pg_url.host or "127.0.0.1", pg_url.port or 5432))
    proxy.start()
    proxy.kill()
    via_proxy = render(pg_url.set(host="127.0.0.1", port=proxy.port))
    store = AuditStore.open(via_proxy, tmp_path / "spool", retry_interval_s=0.0)
    try:
        assert store.find_card("card-000000-0") == "pending"  # the query failed: no raise
        fb = replace(factories.feedback(0), verified=False)
        assert store.record_feedback(fb) is True
        assert store.spool_depth() == 1
    finally:
        store.close()
        proxy.kill()


def test_feedback_says_whether_it_was_verified(store: AuditStore) -> None:
    checked = replace(factories.feedback(5), verified=True)
    unchecked = factories.feedback(6)
    assert store.record_feedback(checked)
    assert store.record_feedback(unchecked)
    assert [f.verified for f in store.feedback()] == [True, False]


def test_the_verified_migration_keeps_feedback_as_unchecked(db_url: str, tmp_path: Path) -> None:
    """0002 -> 0003 adds ``feedback.verified``: a row stored before reads ``false`` (it was
    never checked) and is kept through the upgrade and the downgrade."""
    engine = create_audit_engine(db_url)
    try:
        upgrade(engine, "0002")
        row = feedback_row(factories.feedback(1), "direct")
        del row["verified"]
        old = table("feedback", *(column(k, feedback.c[k].type) for k in row))
        with engine.begin() as conn:
            conn.execute(old.insert().values(**row))
        upgrade(engine, "0003")
        assert current_revision(engine) == "0003"
        with AuditStore.open(db_url, tmp_path / "s", migrate=False) as store:
            stored = list(store.feedback())
        assert stored == [factories.feedback(1)]
        assert stored[0].verified is False
        downgrade(engine, "0002")
        engine.dispose()
        assert "verified" not in {c["name"] for c in inspect(engine).get_columns("feedback")}
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(old)).scalar() == 1
    finally:
        engine.dispose()

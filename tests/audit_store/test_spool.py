"""Crash-safety of the spool: nothing is lost and nothing is stored twice, whatever point a
write or a replay stops at."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from audit_store import AuditStore
from audit_store.records import AuditRecord
from audit_store.schema import assessments
from audit_store.spool import CLAIM_SUFFIX, Spool, TransientSinkError, encode
from tests.audit_store import factories


class Crash(BaseException):
    """A process dying mid-replay: nothing after it runs (no except Exception catches it)."""


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[AuditStore]:
    with AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "spool",
                         auto_replay=False) as store:
        yield store


def stored_ids(store: AuditStore) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(assessments.c.request_id)
                                 .order_by(assessments.c.request_id)).scalars())


def spool_file(store: AuditStore, name: str, lines: Sequence[bytes]) -> Path:
    path = store.spool_dir / name
    path.write_bytes(b"".join(lines))
    return path


def test_spooled_line_already_in_the_database_is_not_duplicated(db_url: str,
                                                                 tmp_path: Path) -> None:
    """The crash between 'committed' and 'spool line removed': replay finds it stored."""
    with AuditStore.open(db_url, tmp_path / "spool", auto_replay=False) as store:
        assert store.record_assessment(factories.assessment(0)) == "database"
        store.record_feedback(factories.feedback(0))
        spool_file(store, "audit-otherhost-7.jsonl", [
            encode(factories.assessment(0)), encode(factories.assessment(1)),
            encode(factories.feedback(0)), encode(factories.outcome(0))])
        assert store.spool_depth() == 4
        assert store.replay_spool() == 2
        report = store.last_replay
        assert (report.replayed, report.duplicates, report.kept, report.quarantined) == (
            2, 2, 0, 0)
        assert stored_ids(store) == ["req-000000", "req-000001"]
        assert len(list(store.feedback())) == 1
        assert len(list(store.outcomes())) == 1
        assert store.spool_depth() == 0
        assert list(store.spool_dir.glob("*.jsonl")) == []
        assert store.replay_spool() == 0  # and replaying again changes nothing
        assert stored_ids(store) == ["req-000000", "req-000001"]


def test_truncated_last_line_is_reported_and_kept(sqlite_store: AuditStore) -> None:
    good, torn = encode(factories.assessment(0)), encode(factories.assessment(1))
    fragment = torn[: len(torn) // 2]
    spool_file(sqlite_store, "audit-host-1.jsonl", [good, fragment])
    assert sqlite_store.spool_depth() == 2
    assert sqlite_store.replay_spool() == 1
    report = sqlite_store.last_replay
    assert report.quarantined == 1
    ((name, line, reason),) = report.problems
    assert name.startswith("audit-host-1.jsonl.")
    assert name.endswith(CLAIM_SUFFIX)
    assert (line, reason) == (2, "truncated last line: JSONDecodeError")
    assert stored_ids(sqlite_store) == ["req-000000"]
    assert sqlite_store.spool_depth() == 0
    assert sqlite_store.quarantine_depth() == 1
    (kept,) = (sqlite_store.spool_dir / "quarantine").glob("*.jsonl")
    assert kept.read_bytes() == fragment + b"\n"  # the exact bytes, for a person to look at


def test_torn_tail_never_swallows_the_next_record(sqlite_store: AuditStore,
                                                  tmp_path: Path) -> None:
    """A process restarted with the same pid (pid 1 in a container) appends to the file its
    predecessor died writing: the new record must start on a line of its own."""
    spool = Spool(sqlite_store.spool_dir)
    torn = encode(factories.assessment(0))[:40]
    spool.path.write_bytes(torn)
    spool.append(factories.assessment(1))
    assert spool.path.read_bytes() == torn + b"\n" + encode(factories.assessment(1))
    assert sqlite_store.replay_spool() == 1
    assert stored_ids(sqlite_store) == ["req-000001"]
    assert sqlite_store.last_replay.quarantined == 1


def test_crash_mid_replay_loses_nothing(sqlite_store: AuditStore,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(sqlite_store.spool_dir)
    for i in range(450):  # three batches
        spool.append(factories.assessment(i))
    real_sink = sqlite_store._sink
    calls = 0

    def dying_sink(records: Sequence[AuditRecord]) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Crash
        return real_sink(records)

    monkeypatch.setattr(sqlite_store, "_sink", dying_sink)
    with pytest.raises(Crash):
        sqlite_store.replay_spool()
    monkeypatch.undo()
    assert len(stored_ids(sqlite_store)) == 200
    (claimed,) = sqlite_store.spool_dir.glob("*" + CLAIM_SUFFIX)  # left for the next replay
    assert sqlite_store.spool_depth() == 450
    assert sqlite_store.replay_spool() == 250
    assert sqlite_store.last_replay.duplicates == 200
    assert stored_ids(sqlite_store) == [f"req-{i:06d}" for i in range(450)]
    assert sqlite_store.spool_depth() == 0
    assert not claimed.exists()


def test_database_failing_again_mid_replay_keeps_the_rest(sqlite_store: AuditStore,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    spool = Spool(sqlite_store.spool_dir)
    for i in range(300):
        spool.append(factories.assessment(i))
    real_sink = sqlite_store._sink

    def flaky_sink(records: Sequence[AuditRecord]) -> int:
        if stored_ids(sqlite_store):
            raise TransientSinkError("OperationalError")
        return real_sink(records)

    monkeypatch.setattr(sqlite_store, "_sink", flaky_sink)
    assert sqlite_store.replay_spool() == 200
    report = sqlite_store.last_replay
    assert (report.kept, report.stopped_early) == (100, True)
    assert sqlite_store.spool_depth() == 100
    monkeypatch.undo()
    sqlite_store._down_until = 0.0
    assert sqlite_store.replay_spool() == 100
    assert stored_ids(sqlite_store) == [f"req-{i:06d}" for i in range(300)]
    assert sqlite_store.spool_depth() == 0


def test_record_the_database_rejects_is_quarantined_not_dropped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for i in range(5):
        spool.append(factories.assessment(i))
    stored: list[str] = []

    def picky_sink(records: Sequence[AuditRecord]) -> int:
        ids = [r.request_id for r in records]  # type: ignore[union-attr]
        if "req-000003" in ids:
            raise ValueError("value too long")
        stored.extend(ids)
        return len(ids)

    report = spool.replay(picky_sink)
    assert sorted(stored) == ["req-000000", "req-000001", "req-000002", "req-000004"]
    assert report.quarantined == 1
    assert report.replayed == 4
    assert "rejected by the database: ValueError" in report.problems[0][2]
    (bad,) = spool.quarantine_files()
    assert json.loads(bad.read_bytes())["record"]["request_id"] == "req-000003"
    assert spool.depth() == 0


def test_a_claim_held_by_a_live_replayer_is_left_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    claimed = spool.directory / f"audit-h-9.jsonl.0123456789ab{CLAIM_SUFFIX}"
    claimed.write_bytes(encode(factories.assessment(1)))
    fd = os.open(claimed, os.O_RDWR)
    seen: list[str] = []

    def sink(records: Sequence[AuditRecord]) -> int:
        seen.extend(r.request_id for r in records)  # type: ignore[union-attr]
        return len(records)

    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process is replaying it
        assert spool.replay(sink).files == 0
        assert claimed.exists()
    finally:
        os.close(fd)  # ... and dies: the claim is an orphan now
    assert spool.replay(sink).replayed == 1
    assert seen == ["req-000001"]
    assert not claimed.exists()


def test_writer_moves_to_a_new_file_when_its_file_is_claimed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append(factories.assessment(0))
    seen: list[str] = []

    def sink_that_writes(records: Sequence[AuditRecord]) -> int:
        # A request arriving while its own spool file is being replayed.
        spool.append(factories.assessment(99))
        seen.extend(r.request_id for r in records)  # type: ignore[union-attr]
        return len(records)

    spool.replay(sink_that_writes)
    assert seen == ["req-000000"]
    assert spool.depth() == 1
    assert json.loads(spool.path.read_bytes())["record"]["request_id"] == "req-000099"


def test_concurrent_writers_and_replayers_handle_each_line_once(tmp_path: Path) -> None:
    """Writers keep appending while two independent replayers (as in two processes: separate
    Spool objects, so only the file locks keep them apart) drain the spool."""
    directory = tmp_path / "spool"
    writer, replayers = Spool(directory), [Spool(directory), Spool(directory)]
    seen: list[str] = []
    seen_lock = threading.Lock()
    writing = threading.Event()
    writing.set()

    def sink(records: Sequence[AuditRecord]) -> int:
        with seen_lock:
            seen.extend(r.request_id for r in records)  # type: ignore[union-attr]
        return len(records)

    def write(start: int) -> None:
        for i in range(start, start + 150):
            writer.append(factories.assessment(i))

    def replay(spool: Spool) -> None:
        while writing.is_set():
            spool.replay(sink)

    writers = [threading.Thread(target=write, args=(k * 1000,)) for k in range(4)]
    drains = [threading.Thread(target=replay, args=(s,)) for s in replayers]
    for t in [*writers, *drains]:
        t.start()
    for t in writers:
        t.join()
    writing.clear()
    for t in drains:
        t.join()
    replayers[0].replay(sink)
    expected = [f"req-{k * 1000 + i:06d}" for k in range(4) for i in range(150)]
    assert sorted(seen) == sorted(expected)  # every line once: none lost, none twice
    assert writer.depth() == 0
    assert list(directory.glob("*.jsonl*")) == []

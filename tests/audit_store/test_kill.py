"""Kill the database mid-load: every record ends up in the database exactly once.

PostgreSQL is reached through a TCP proxy the test controls. Eight threads write 2,000
assessments; after the first few hundred the proxy is killed (every connection cut, the
listener closed), the load goes on (records must spool, each call returning quickly), the
proxy comes back, the load finishes, and ``replay_spool`` moves the spool into the database.
The SQLite variant takes the database away by holding an exclusive lock on the file.
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import URL

from audit_store import AuditStore
from audit_store.schema import assessment_cards, assessments
from tests.audit_store import factories
from tests.audit_store.conftest import render
from tests.audit_store.tcp_proxy import TcpProxy

N, THREADS = 2000, 8


@dataclass
class Load:
    """Bounded load from several threads; ``phase`` is flipped by the controller."""

    store: AuditStore
    n: int
    phase: str = "up"
    done: int = 0
    results: list[tuple[str, str, float, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: threading.Event = field(default_factory=threading.Event)
    _next: int = 0
    _in_flight: int = 0

    def _take(self) -> int | None:
        self.running.wait()
        with self.lock:
            if self._next >= self.n:
                return None
            self._next += 1
            self._in_flight += 1
            return self._next - 1

    def worker(self) -> None:
        try:
            while (i := self._take()) is not None:
                rec = factories.assessment(i)
                phase = self.phase
                t = time.perf_counter()
                try:
                    dest = self.store.record_assessment(rec)
                finally:
                    elapsed = time.perf_counter() - t
                    with self.lock:
                        self._in_flight -= 1
                with self.lock:
                    self.results.append((rec.request_id, dest, elapsed, phase))
                    self.done += 1
        except BaseException as exc:  # reported by the test, not swallowed
            self.errors.append(exc)

    def switch(self, action: Callable[[], None], phase: str, *, quiesce: bool) -> None:
        """Run ``action`` and enter ``phase``; with ``quiesce``, between calls rather than
        during them (so every call is attributed to the phase it ran in)."""
        if quiesce:
            self.running.clear()
            while self._in_flight:
                time.sleep(0.001)
        action()
        self.phase = phase
        self.running.set()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.done < count and time.monotonic() < deadline:
            time.sleep(0.002)

    def run(self, outage_start: Callable[[], None], outage_end: Callable[[], None],
            kill_at: int, restore_at: int, *, kill_mid_call: bool) -> None:
        """The outage starts after ``kill_at`` calls (in the middle of calls in flight if
        ``kill_mid_call``) and ends after ``restore_at`` calls, between calls."""
        threads = [threading.Thread(target=self.worker) for _ in range(THREADS)]
        self.running.set()
        for t in threads:
            t.start()
        try:
            self.wait_for(kill_at)
            self.switch(outage_start, "down", quiesce=not kill_mid_call)
            self.wait_for(restore_at)
            self.switch(outage_end, "recovering", quiesce=True)
        finally:
            self.running.set()
            for t in threads:
                t.join(timeout=120)
        assert not self.errors, self.errors
        assert self.done == self.n

    def destinations(self, phase: str | None = None) -> dict[str, int]:
        out = {"database": 0, "spool": 0}
        for _, dest, _, p in self.results:
            if phase is None or p == phase:
                out[dest] += 1
        return out

    def latencies(self, phase: str) -> list[float]:
        return [elapsed for _, _, elapsed, p in self.results if p == phase]


def assert_exactly_once(url: str, load: Load) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ids = conn.execute(select(assessments.c.request_id)).scalars().all()
            cards = conn.execute(select(func.count()).select_from(assessment_cards)).scalar()
            via: dict[str, int] = {
                row[0]: row[1] for row in conn.execute(
                    select(assessments.c.via, func.count()).group_by(assessments.c.via))}
    finally:
        engine.dispose()
    assert len(ids) == load.n
    assert cards == load.n
    assert set(ids) == {f"req-{i:06d}" for i in range(load.n)}
    sent = load.destinations()
    report = load.store.last_replay
    # A commit whose answer was lost went to the spool too; replay found it already stored.
    assert via.get("spool", 0) == report.replayed
    assert via.get("direct", 0) == sent["database"] + report.duplicates
    assert report.replayed + report.duplicates == sent["spool"]


def wait_out_the_breaker(store: AuditStore, timeout_s: float = 5.0) -> None:
    """A write that failed in the last moments of the load (a slow machine can take longer
    than the 0.2 s busy timeout even once the database is back) leaves the breaker open for
    one retry interval, and a replay started then keeps every record by design. The test is
    about the replay after the outage, so it starts once the breaker has closed."""
    deadline = time.monotonic() + timeout_s
    while store.tripped() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not store.tripped()


def assert_spool_empty(store: AuditStore) -> None:
    assert store.spool_depth() == 0
    assert store.quarantine_depth() == 0
    assert [p.name for p in store.spool_dir.iterdir() if p.is_file()] == []


@pytest.mark.slow
def test_postgres_killed_mid_load_loses_nothing(pg_url: URL, tmp_path: Path) -> None:
    with TcpProxy((pg_url.host or "127.0.0.1", pg_url.port or 5432)) as proxy:
        proxy.start()
        via_proxy = render(pg_url.set(host="127.0.0.1", port=proxy.port))
        with AuditStore.open(via_proxy, tmp_path / "spool", timeout_s=2.0,
                             retry_interval_s=0.25, auto_replay=False) as store:
            load = Load(store, N)
            load.run(proxy.kill, proxy.start, kill_at=500, restore_at=1300, kill_mid_call=True)

            during = load.destinations("down")
            assert during["spool"] >= 700
            assert during["database"] == 0
            assert load.destinations("up")["database"] >= 400
            assert load.destinations("recovering")["database"] > 0  # back after the breaker
            outage = load.latencies("down")
            assert max(outage) < 2.5, "a spooled write waited on the dead database"
            assert statistics.median(outage) < 0.1

            spooled = load.destinations()["spool"]
            assert store.spool_depth() == spooled
            wait_out_the_breaker(store)
            assert store.replay_spool() > 0
            assert store.last_replay.kept == store.last_replay.quarantined == 0
            assert_spool_empty(store)
            assert store.ping()
        assert proxy.connections >= 2  # the store reconnected through the new listener
    assert_exactly_once(render(pg_url), load)


@pytest.mark.slow
def test_sqlite_locked_mid_load_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    url = f"sqlite:///{db}"
    locker = sqlite3.connect(db, timeout=10, isolation_level=None, check_same_thread=False)
    try:
        with AuditStore.open(url, tmp_path / "spool", timeout_s=0.2, retry_interval_s=0.2,
                             auto_replay=False) as store:
            load = Load(store, 1000)

            def lock() -> None:
                locker.execute("BEGIN EXCLUSIVE")

            def unlock() -> None:
                locker.execute("COMMIT")

            load.run(lock, unlock, kill_at=250, restore_at=650, kill_mid_call=False)
            during = load.destinations("down")
            assert during["spool"] >= 350
            assert during["database"] == 0
            assert max(load.latencies("down")) < 1.5
            wait_out_the_breaker(store)
            assert store.replay_spool() > 0
            assert_spool_empty(store)
    finally:
        locker.close()
    assert_exactly_once(url, load)

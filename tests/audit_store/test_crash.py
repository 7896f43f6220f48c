"""SIGKILL the process that owns the store mid-load, while the database is away: every record
whose call returned is found in the database exactly once after another process replays."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import URL

from audit_store import AuditStore
from audit_store.schema import assessments
from tests.audit_store.conftest import render
from tests.audit_store.tcp_proxy import TcpProxy

REPO = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent("""
    import sys, threading, itertools
    from pathlib import Path
    import structlog
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    from audit_store import AuditStore
    from tests.audit_store import factories
    store = AuditStore.open(sys.argv[1], Path(sys.argv[2]), retry_interval_s=0.05)
    counter, out = itertools.count(), threading.Lock()
    def work():
        while (i := next(counter)) < 100_000:
            dest = store.record_assessment(factories.assessment(i))
            with out:
                print(i, dest, flush=True)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
""")


@pytest.mark.slow
def test_sigkill_mid_load_with_the_database_down(pg_url: URL, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    with TcpProxy((pg_url.host or "127.0.0.1", pg_url.port or 5432)) as proxy:
        proxy.start()
        via_proxy = render(pg_url.set(host="127.0.0.1", port=proxy.port))
        env = os.environ | {"PYTHONPATH": str(REPO)}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, via_proxy, str(spool_dir)], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        acked: dict[int, str] = {}
        assert child.stdout is not None
        try:
            for line in child.stdout:
                i, dest = line.split()
                acked[int(i)] = dest
                if len(acked) == 300:
                    proxy.kill()
                if len(acked) == 900:
                    child.send_signal(signal.SIGKILL)
                    break
            acked |= {int(i): d for i, d in (ln.split() for ln in child.stdout.read()
                                              .splitlines() if len(ln.split()) == 2)}
        finally:
            child.kill()
            child.wait(timeout=30)
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        assert "spool" in acked.values()
        assert "database" in acked.values()

        proxy.start()
    # Another process (this one) takes over the dead one's spool at open.
    with AuditStore.open(render(pg_url), spool_dir) as store:
        assert store.spool_depth() == 0
        assert store.quarantine_depth() <= 1  # at most the one line being written at the kill
        report = store.last_replay
        assert report.replayed + report.duplicates >= list(acked.values()).count("spool")
    engine = create_engine(render(pg_url))
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(assessments.c.request_id)).scalars().all()
    finally:
        engine.dispose()
    assert len(stored) == len(set(stored))
    assert {f"req-{i:06d}" for i in acked} <= set(stored)

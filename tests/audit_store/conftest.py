"""Audit-store fixtures: a SQLite file per test, and a fresh PostgreSQL database per test.

PostgreSQL comes from ``HYPERMARKER_TEST_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Each test gets its own database,
``CREATE DATABASE hm_test_<random>`` made from that one and dropped afterwards, so runs never
collide. If the server does not answer within 2 s the PostgreSQL tests are skipped, saying why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from audit_store import AuditStore

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_connect(url: URL, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(host=url.host, port=url.port, user=url.username,
                           password=url.password, dbname=url.database, connect_timeout=2,
                           **kwargs)


@pytest.fixture(scope="session")
def pg_server() -> URL:
    url = make_url(os.environ.get("HYPERMARKER_TEST_POSTGRES_URL", DEFAULT_PG))
    url = url.set(drivername="postgresql+psycopg")
    try:
        with pg_connect(url, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {url.host}:{url.port or 5432}: "
                    f"{type(exc).__name__}: {str(exc).strip()[:200]}")
    return url


@pytest.fixture
def pg_url(pg_server: URL) -> Iterator[URL]:
    """A fresh, empty PostgreSQL database for one test."""
    name = f"hm_test_{uuid.uuid4().hex[:16]}"
    with pg_connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_server.set(database=name)
    finally:
        with pg_connect(pg_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                          .format(sql.Identifier(name)))


def render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on both back ends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'audit.db'}"
    return render(request.getfixturevalue("pg_url"))


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def store(db_url: str, spool_dir: Path) -> Iterator[AuditStore]:
    with AuditStore.open(db_url, spool_dir) as opened:
        yield opened

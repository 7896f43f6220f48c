"""Service fixtures: an app on embedded defaults in a temporary folder, and example requests."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_mappings.dates import shift_dates
from service.app import create_app
from service.settings import Settings
from tests.service.smart_ehr import FakeEhr

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "patient-view.json"


#: The day the example's record was written for (its latest BP is 8 days older).
EXAMPLE_AS_OF = date(2026, 11, 24)


def example_shift_days() -> int:
    """Days the example's dates move so that the service, assessing as of today, sees the
    record as it was on EXAMPLE_AS_OF (0 on that day; keeps these tests true in later years)."""
    return (datetime.now(UTC).date() - EXAMPLE_AS_OF).days


def example_request(**changes: Any) -> dict[str, Any]:
    """The README's patient-view request with a fresh hookInstance, its dates moved to today."""
    req: dict[str, Any] = shift_dates(json.loads(EXAMPLE.read_text()), example_shift_days())
    req = copy.deepcopy(req)
    req["hookInstance"] = str(uuid.uuid4())
    req.update(changes)
    return req


def example_bundle() -> dict[str, Any]:
    """The example request's prefetch as one collection Bundle (``$hypertension-options``)."""
    pf = example_request()["prefetch"]
    entries = [{"resource": pf["patient"]}]
    for k, v in pf.items():
        if k != "patient":
            entries += v["entry"]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def local_settings(tmp: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "auth_mode": "demo", "database_url": f"sqlite:///{tmp / 'audit.db'}",
        "spool_dir": tmp / "spool", "log_format": "json", "public_base_url": None,
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(local_settings(tmp_path_factory.mktemp("svc")))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def ehr() -> Iterator[FakeEhr]:
    """A SMART-launch EHR on loopback (tests/service/smart_ehr.py) for the module's tests."""
    e = FakeEhr()
    yield e
    e.close()

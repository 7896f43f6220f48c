"""Demo mode is explicit and loud."""

from __future__ import annotations

from structlog.testing import capture_logs

from service.auth import Authenticator, DemoModeAuth
from service.auth.demo import DEMO_IDENTITY


def test_demo_mode_warns_loudly_on_construction() -> None:
    with capture_logs() as logs:
        DemoModeAuth()
    warnings = [e for e in logs if e["event"] == "auth_disabled_demo_mode"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert "DISABLED" in warnings[0]["message"]


def test_demo_mode_accepts_anything_as_the_demo_client() -> None:
    auth: Authenticator = DemoModeAuth()
    assert auth.verify(None, "https://cds.example.org/cds-services/x") == DEMO_IDENTITY
    assert auth.verify("Bearer garbage", "u").iss == "demo"
    with capture_logs() as logs:
        auth.verify("Bearer secret.token.value", "u")
    assert logs == []

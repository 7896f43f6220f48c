"""Demo mode: NO client authentication. For a local demo against the CDS Hooks Sandbox only.

Constructing `DemoModeAuth` logs a loud warning; the production profile refuses to start with
it (that check lives in the settings module).
"""

from __future__ import annotations

import structlog

from service.auth.verifier import ClientIdentity

__all__ = ["DEMO_IDENTITY", "DemoModeAuth"]

DEMO_IDENTITY = ClientIdentity(iss="demo", jti="demo", tenant=None, kid="demo")


class DemoModeAuth:
    """Accepts every call, whatever its Authorization header, as the fixed demo client."""

    def __init__(self) -> None:
        structlog.get_logger(__name__).warning(
            "auth_disabled_demo_mode",
            message=(
                "CDS client authentication is DISABLED: every caller is accepted without a "
                "JWT. Local demo only; never expose this service to a network."
            ),
        )

    def verify(self, authorization_header: str | None, audience: str) -> ClientIdentity:
        # Deliberately ignores the header: it is not even parsed, so nothing of it is logged.
        del authorization_header, audience
        return DEMO_IDENTITY

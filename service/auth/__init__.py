"""CDS client authentication (CDS Hooks 2.0 "Trusting CDS Clients").

`CdsJwtVerifier.verify(authorization_header, audience)` returns the `ClientIdentity` of a call or
raises `AuthError`, whose `reason` is for logs and metrics only (the HTTP answer is a bare 401).
"""

from service.auth.config import TrustedIssuer, load_jwks_file
from service.auth.demo import DemoModeAuth
from service.auth.jwks import JwksCache, JwksError, KeySet
from service.auth.replay import MemoryReplayCache, RedisReplayCache, ReplayCache, ReplayCacheError
from service.auth.verifier import (
    Authenticator,
    AuthError,
    AuthReason,
    CdsJwtVerifier,
    ClientIdentity,
)

__all__ = [
    "AuthError",
    "AuthReason",
    "Authenticator",
    "CdsJwtVerifier",
    "ClientIdentity",
    "DemoModeAuth",
    "JwksCache",
    "JwksError",
    "KeySet",
    "MemoryReplayCache",
    "RedisReplayCache",
    "ReplayCache",
    "ReplayCacheError",
    "TrustedIssuer",
    "load_jwks_file",
]

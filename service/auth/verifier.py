"""Verification of the signed JWT a CDS client sends with every call (CDS Hooks 2.0).

Order of checks (cheap and key-free first, so junk never causes a key fetch):
1. `Authorization: Bearer <compact JWS>`, bounded size, three base64url parts.
2. Header: `typ` JWT, `alg` in the allow-list (ES384/RS384; `none`, HMAC and everything else
   are refused before any key lookup), `kid` present, no `crit`.
3. Unverified `iss` only selects the trusted issuer (unknown issuer: refused).
4. Key, the service's configuration first: the issuer's inline or file JWKS, then its
   configured `jwks_url`, then the token's `jku`, only if it is allow-listed for that issuer.
   A `jku` that is not allow-listed is never fetched: it is ignored when the issuer has
   configured keys, and the token is refused (`jku_not_allowed`) when it has none.
5. PyJWT verifies the signature with exactly the header's allow-listed algorithm, then `exp`,
   `iat`, `nbf`, `iss`, and `aud` (a string or list that must contain the exact called URL);
   `exp`, `iat`, `jti`, `iss`, `aud` are required.
6. `iat` no more than `max_age_s` old, `tenant` consistent with configuration.
7. Replay: (iss, jti) must be new; recorded until the token could no longer be accepted.

Failures raise `AuthError(reason)`; the reason is for logs and metrics only, clients get a bare
401. Log lines carry only the reason, and iss/kid/jti/tenant; never the token or other claims.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, get_args

import jwt
import structlog
from jwt import PyJWK

from service.auth.config import TrustedIssuer
from service.auth.jwks import SUPPORTED_ALGORITHMS, JwksCache, JwksError, KeySet, safe_id
from service.auth.replay import ReplayCache, ReplayCacheError

__all__ = [
    "AuthError",
    "AuthReason",
    "Authenticator",
    "CdsJwtVerifier",
    "ClientIdentity",
]

AuthReason = Literal[
    "missing_token",
    "malformed",
    "bad_typ",
    "bad_alg",
    "missing_kid",
    "bad_header",
    "untrusted_issuer",
    "jku_not_allowed",
    "no_key_source",
    "unknown_kid",
    "jwks_unavailable",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "too_old",
    "bad_aud",
    "missing_claim",
    "bad_claim",
    "bad_tenant",
    "replay",
    "replay_cache_unavailable",
    "internal_error",
]
AUTH_REASONS: Final[frozenset[str]] = frozenset(get_args(AuthReason))

MAX_TOKEN_LEN: Final = 8192
MAX_JTI_LEN: Final = 256
MAX_KID_LEN: Final = 256
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_REQUIRED_CLAIMS: Final = ["iss", "aud", "exp", "iat", "jti"]

_log = structlog.get_logger(__name__)


class AuthError(Exception):
    """Authentication failed. `reason` is an internal code (logs, metrics); the HTTP layer
    answers 401 with no detail whatever the reason."""

    def __init__(self, reason: AuthReason) -> None:
        super().__init__(reason)
        self.reason: AuthReason = reason


@dataclass(frozen=True)
class ClientIdentity:
    """The authenticated CDS client of one call."""

    iss: str
    jti: str
    tenant: str | None
    kid: str


class Authenticator(Protocol):
    """What the HTTP layer calls: CdsJwtVerifier, or DemoModeAuth in explicit demo mode."""

    def verify(self, authorization_header: str | None, audience: str) -> ClientIdentity: ...


def _number(value: object) -> float | None:
    """A finite JSON number (not a bool, not a numeric string), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class CdsJwtVerifier:
    """Verifies CDS client JWTs against allow-listed issuers (see the module docstring)."""

    def __init__(
        self,
        issuers: Sequence[TrustedIssuer],
        jwks: JwksCache,
        replay: ReplayCache,
        *,
        leeway_s: int = 30,
        max_age_s: int = 300,
        algorithms: Sequence[str] = ("ES384", "RS384"),
    ) -> None:
        algs = tuple(algorithms)
        if not algs or any(a not in SUPPORTED_ALGORITHMS for a in algs):
            raise ValueError(f"algorithms must be a non-empty subset of {SUPPORTED_ALGORITHMS}")
        if leeway_s < 0 or max_age_s <= 0:
            raise ValueError("need leeway_s >= 0 and max_age_s > 0")
        by_iss: dict[str, TrustedIssuer] = {}
        inline: dict[str, KeySet] = {}
        for issuer in issuers:
            if issuer.iss in by_iss:
                raise ValueError(f"duplicate trusted issuer {issuer.iss!r}")
            by_iss[issuer.iss] = issuer
            local = issuer.local_jwks()
            if local is not None:
                keyset = KeySet.from_jwks(local)
                if not any(alg in algs for _, alg in keyset.keys):
                    raise ValueError(
                        f"trusted issuer {issuer.iss!r}: configured JWKS has no usable "
                        f"{'/'.join(algs)} public signing key with a kid"
                    )
                inline[issuer.iss] = keyset
        if not by_iss:
            raise ValueError("no trusted issuers configured (use demo mode explicitly instead)")
        self._issuers: Mapping[str, TrustedIssuer] = by_iss
        self._inline: Mapping[str, KeySet] = inline
        self._jwks = jwks
        self._replay = replay
        self._leeway = leeway_s
        self._max_age = max_age_s
        self._algorithms = algs
        _log.info(
            "cds_client_auth_configured",
            issuers=sorted(by_iss),
            algorithms=list(algs),
            max_age_s=max_age_s,
        )

    # -- public ----------------------------------------------------------------------------

    def verify(self, authorization_header: str | None, audience: str) -> ClientIdentity:
        """Authenticate one call to `audience` (the exact URL called, built from configuration,
        never from request headers). Returns the client identity or raises AuthError."""
        if not isinstance(audience, str) or not audience:
            raise ValueError("audience must be the non-empty URL that was called")
        ctx: dict[str, str] = {}
        try:
            identity = self._verify(authorization_header, audience, ctx)
        except AuthError as exc:
            self._log_failure(exc.reason, ctx)
            raise
        except Exception as exc:  # defence in depth: never let a parser bug escape as a 500
            _log.error("cds_client_auth_internal_error", error=type(exc).__name__, **ctx)
            raise AuthError("internal_error") from None
        _log.info(
            "cds_client_authenticated",
            iss=identity.iss,
            kid=safe_id(identity.kid),
            jti=safe_id(identity.jti),
            tenant=identity.tenant,
        )
        return identity

    # -- steps -----------------------------------------------------------------------------

    def _verify(
        self, authorization_header: str | None, audience: str, ctx: dict[str, str]
    ) -> ClientIdentity:
        token = self._extract_token(authorization_header)

        try:
            unverified = jwt.decode_complete(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError("malformed") from None
        header = unverified["header"]
        claims = unverified["payload"]
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise AuthError("malformed")

        alg, kid, jku = self._check_header(header)

        iss = claims.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise AuthError("untrusted_issuer")
        ctx["iss"] = issuer.iss
        ctx["kid"] = safe_id(kid)

        if jku is not None and not issuer.jku_allowed(jku):
            if not issuer.has_configured_keys:
                raise AuthError("jku_not_allowed")
            # Never fetched; the token must be signed by one of the configured keys.
            _log.info("cds_client_jku_ignored", iss=issuer.iss, kid=safe_id(kid))
            jku = None

        key = self._find_key(issuer, kid, alg, jku)
        payload = self._decode(token, key, alg, audience, issuer.iss)

        jti = payload.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LEN:
            raise AuthError("bad_claim")
        ctx["jti"] = safe_id(jti)
        exp, iat = _number(payload.get("exp")), _number(payload.get("iat"))
        if exp is None or iat is None:
            raise AuthError("bad_claim")
        now = time.time()
        if iat > now + self._leeway:  # PyJWT checks this too; keep it explicit
            raise AuthError("not_yet_valid")
        if now - iat > self._max_age + self._leeway:
            raise AuthError("too_old")

        tenant = self._check_tenant(issuer, payload)
        if tenant is not None:
            ctx["tenant"] = tenant

        # Last, so that only fully verified tokens ever enter the cache.
        accept_until = min(exp, iat + self._max_age) + self._leeway + 1
        try:
            replayed = self._replay.seen(issuer.iss, jti, accept_until)
        except ReplayCacheError:
            raise AuthError("replay_cache_unavailable") from None
        if replayed:
            raise AuthError("replay")
        return ClientIdentity(iss=issuer.iss, jti=jti, tenant=tenant, kid=kid)

    @staticmethod
    def _extract_token(authorization_header: str | None) -> str:
        if not authorization_header or not isinstance(authorization_header, str):
            raise AuthError("missing_token")
        if len(authorization_header) > MAX_TOKEN_LEN + 16:
            raise AuthError("malformed")
        scheme, _, token = authorization_header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AuthError("missing_token")
        token = token.strip()
        if not token:
            raise AuthError("missing_token")
        if len(token) > MAX_TOKEN_LEN or not _COMPACT_JWS.fullmatch(token):
            raise AuthError("malformed")
        return token

    def _check_header(self, header: Mapping[str, Any]) -> tuple[str, str, str | None]:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise AuthError("bad_alg")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise AuthError("bad_typ")
        if "crit" in header:
            raise AuthError("bad_header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LEN:
            raise AuthError("missing_kid")
        jku = header.get("jku")
        if jku is not None and not isinstance(jku, str):
            raise AuthError("bad_header")  # RFC 7515 4.1.2: a URI string
        return alg, kid, jku

    def _find_key(self, issuer: TrustedIssuer, kid: str, alg: str, jku: str | None) -> PyJWK:
        """The key for (kid, alg): configured sources first, then the allow-listed `jku`
        (`jku` is None unless it is allow-listed). A source that lacks the kid or cannot be
        fetched passes to the next; the last failure is the reason."""
        inline = self._inline.get(issuer.iss)
        if inline is not None:
            key = inline.get(kid, alg)
            if key is not None:
                return key
        urls = [u for u in (issuer.jwks_url, jku) if u is not None]
        if not urls:
            raise AuthError("unknown_kid" if inline is not None else "no_key_source")
        reason: AuthReason = "unknown_kid"
        for url in dict.fromkeys(urls):  # jku may name the configured jwks_url: fetch it once
            try:
                return self._jwks.get_key(url, kid, alg)
            except JwksError as exc:
                reason = exc.reason
        raise AuthError(reason)

    def _decode(self, token: str, key: PyJWK, alg: str, audience: str, iss: str) -> dict[str, Any]:
        try:
            payload = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audience,
                issuer=iss,
                leeway=self._leeway,
                options={
                    "require": _REQUIRED_CLAIMS,
                    "verify_signature": True,
                    "verify_exp": True,
                    "verify_iat": True,
                    "verify_nbf": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidSignatureError:
            raise AuthError("bad_signature") from None
        except jwt.ExpiredSignatureError:
            raise AuthError("expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("not_yet_valid") from None
        except jwt.MissingRequiredClaimError:
            raise AuthError("missing_claim") from None
        except jwt.InvalidAudienceError:
            raise AuthError("bad_aud") from None
        except jwt.InvalidIssuerError:
            raise AuthError("untrusted_issuer") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError("bad_alg") from None
        except jwt.InvalidKeyError:
            raise AuthError("unknown_kid") from None
        except (
            jwt.InvalidIssuedAtError,
            jwt.exceptions.InvalidJTIError,
            jwt.exceptions.InvalidSubjectError,
        ):
            raise AuthError("bad_claim") from None
        except jwt.PyJWTError:
            raise AuthError("malformed") from None
        return payload

    @staticmethod
    def _check_tenant(issuer: TrustedIssuer, payload: Mapping[str, Any]) -> str | None:
        if issuer.tenant is None:
            return None
        claimed = payload.get("tenant")
        if claimed is not None and claimed != issuer.tenant:
            raise AuthError("bad_tenant")
        return issuer.tenant

    @staticmethod
    def _log_failure(reason: AuthReason, ctx: Mapping[str, str]) -> None:
        level = "warning" if reason in ("jwks_unavailable", "replay_cache_unavailable") else "info"
        getattr(_log, level)("cds_client_auth_failed", reason=reason, **ctx)

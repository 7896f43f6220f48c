"""Helpers for the auth tests: signing keys, token builders, a real JWKS HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUD = "https://cds.example.org/cds-services/htn-treatment"
ISS = "https://ehr.example.org/fhir"  # keys from a configured jwks_url
ISS_JKU = "https://sandbox.example.org"  # keys from an allow-listed jku
ISS_INLINE = "https://firewalled.example.org"  # keys configured inline (local file)


# -- keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any

    def public_jwk(self, **extra: Any) -> dict[str, Any]:
        pub = self.private.public_key()
        algo = ECAlgorithm if self.alg.startswith("ES") else RSAAlgorithm
        jwk: dict[str, Any] = dict(algo.to_jwk(pub, as_dict=True))
        jwk.update(kid=self.kid, use="sig", alg=self.alg)
        jwk.update(extra)
        return jwk

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def jwks_of(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [k.public_jwk() for k in keys]}


# -- tokens ----------------------------------------------------------------------------------

_UNSET: Any = object()


def make_claims(
    *,
    iss: Any = ISS,
    aud: Any = AUD,
    iat: Any = _UNSET,
    exp: Any = _UNSET,
    jti: Any = _UNSET,
    drop: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "iat": now if iat is _UNSET else iat,
        "exp": now + 300 if exp is _UNSET else exp,
        "jti": str(uuid.uuid4()) if jti is _UNSET else jti,
    }
    claims.update(extra)
    for name in drop:
        claims.pop(name, None)
    return claims


def sign(
    key: SigningKey,
    claims: Mapping[str, Any] | None = None,
    *,
    alg: str | None = None,
    kid: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    hdrs: dict[str, Any] = {"kid": key.kid if kid is None else kid, "typ": "JWT"}
    hdrs.update(headers or {})
    # JWS over the JSON bytes, so that tests can also sign claims PyJWT's encode() would refuse.
    payload = json.dumps(dict(claims if claims is not None else make_claims())).encode()
    return jwt.api_jws.encode(payload, key.private, algorithm=alg or key.alg, headers=hdrs)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes) -> str:
    return ".".join(
        [
            b64url(json.dumps(dict(header)).encode()),
            b64url(json.dumps(dict(claims)).encode()),
            b64url(signature),
        ]
    )


def forge_hs256(secret: bytes, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the public key's PEM."""
    h = b64url(json.dumps(dict(header)).encode())
    p = b64url(json.dumps(dict(claims)).encode())
    mac = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url(mac)}"


def bearer(token: str) -> str:
    return f"Bearer {token}"


# -- a real JWKS server ----------------------------------------------------------------------


@dataclass
class Route:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    fail_first: int = 0  # answer 503 to this many requests first


class JwksServer:
    """A threading HTTP server on 127.0.0.1 that serves configured routes and logs requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append(self.path)
                    route = server._routes.get(self.path)
                    failing = route is not None and route.fail_first > 0
                    if failing and route is not None:
                        route.fail_first -= 1
                if route is None or failing:
                    self.send_response(404 if route is None else 503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(
        self,
        path: str,
        jwks: Any,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        fail_first: int = 0,
    ) -> str:
        body = jwks if isinstance(jwks, bytes) else json.dumps(jwks).encode()
        with self._lock:
            self._routes[path] = Route(body, status, dict(headers or {}), fail_first)
        return self.url(path)

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for p in self.requests if p == path)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class FakeClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

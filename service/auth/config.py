"""Trusted CDS clients: which `iss` values we accept and where their public keys come from.

CDS Hooks 2.0 §"Trusting CDS Clients": a client signs a JWT per call; the service keeps an
allow-list of issuers and obtains each issuer's JWKS either out of band (configured here: inline,
from a local file, or from a configured URL) or from the `jku` header. The service's own
configuration wins: a configured key set is used whatever `jku` says, and a `jku` is only ever
fetched when it is allow-listed for that issuer (a service behind a firewall may be unable to
reach it at all, and following an arbitrary `jku` would let callers make us fetch any URL).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["TrustedIssuer", "load_jwks_file"]

_MAX_URL_LEN = 2048
# Characters that have no business in a key-set URL and that some parsers treat specially.
_FORBIDDEN_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\<>\"{}|^`]")
# Percent-encoded '.', '/', '\' would let a path escape an allow-listed prefix after decoding.
_ENCODED_TRAVERSAL = re.compile(r"%(2e|2f|5c)", re.IGNORECASE)
_LOOPBACK_NAMES = frozenset({"localhost"})


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str, *, what: str) -> None:
    """Validate a configured key-set URL: https (plain http only for loopback), no user info,
    no fragment. Raises ValueError (configuration error, at start-up)."""
    if not isinstance(url, str) or not url or len(url) > _MAX_URL_LEN:
        raise ValueError(f"{what}: expected a URL string")
    if _FORBIDDEN_URL_CHARS.search(url):
        raise ValueError(f"{what}: URL contains forbidden characters")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"{what}: URL has no host")
    if parts.scheme == "http":
        if not _is_loopback(host):
            raise ValueError(f"{what}: plain http is only allowed for loopback hosts")
    elif parts.scheme != "https":
        raise ValueError(f"{what}: URL scheme must be https")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{what}: URL must not carry credentials")
    if parts.fragment or url.endswith("#"):
        raise ValueError(f"{what}: URL must not have a fragment")


def _path_is_clean(path: str) -> bool:
    return not any(seg in (".", "..") for seg in path.split("/"))


_CONFIG_KEYS = frozenset({"iss", "jwks_url", "jwks", "jwks_file", "allowed_jku", "tenant"})


@dataclass(frozen=True)
class TrustedIssuer:
    """One allow-listed CDS client.

    Configured key sources (any of them, checked first, whatever the token's `jku` says):
    - `jwks`: an inline JWKS (a mapping with a `keys` list), or `jwks_file`: the path of a local
      JWKS file (read once, when the verifier is built; not both);
    - `jwks_url`: a key-set URL, fetched and cached.
    A token's `jku` header is followed only when it matches `allowed_jku` (or equals
    `jwks_url`), and only for a `kid` the configured keys do not have. A `jku` that is not
    allow-listed is never fetched: it is ignored when configured keys exist (the token must then
    be signed by one of them), and the token is refused when there are none.

    `allowed_jku` entries are exact URLs, or prefixes ending with '/' (then any URL strictly
    below that path is accepted, but not the prefix itself and never one with '.'/'..'
    segments, percent-encoded dots or slashes, a query or a fragment).

    `tenant`: when set, a token's `tenant` claim (if present) must equal it, and the verified
    identity carries this tenant. When unset, a token's `tenant` claim is ignored (not trusted).
    """

    iss: str
    jwks_url: str | None = None
    jwks: Mapping[str, Any] | None = None
    allowed_jku: tuple[str, ...] = ()
    tenant: str | None = None
    jwks_file: str | Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.iss, str) or not self.iss.strip() or len(self.iss) > _MAX_URL_LEN:
            raise ValueError("TrustedIssuer.iss must be a non-empty string")
        if not self.has_configured_keys and not self.allowed_jku:
            raise ValueError(
                f"TrustedIssuer {self.iss!r}: configure jwks, jwks_file, jwks_url or allowed_jku"
            )
        if self.jwks_url is not None:
            _check_url(self.jwks_url, what=f"TrustedIssuer {self.iss!r} jwks_url")
        if self.jwks is not None and not isinstance(self.jwks, Mapping):
            raise ValueError(f"TrustedIssuer {self.iss!r}: jwks must be a JWKS mapping")
        if self.jwks_file is not None:
            if self.jwks is not None:
                raise ValueError(
                    f"TrustedIssuer {self.iss!r}: configure jwks or jwks_file, not both"
                )
            if not isinstance(self.jwks_file, str | Path) or not str(self.jwks_file).strip():
                raise ValueError(f"TrustedIssuer {self.iss!r}: jwks_file must be a file path")
        if not isinstance(self.allowed_jku, tuple):
            raise ValueError(f"TrustedIssuer {self.iss!r}: allowed_jku must be a tuple of URLs")
        for entry in self.allowed_jku:
            _check_url(entry, what=f"TrustedIssuer {self.iss!r} allowed_jku")
            parts = urlsplit(entry)
            if entry.endswith("/") and parts.query:
                raise ValueError(f"TrustedIssuer {self.iss!r}: a jku prefix must not have a query")
            if not _path_is_clean(parts.path) or _ENCODED_TRAVERSAL.search(entry):
                raise ValueError(f"TrustedIssuer {self.iss!r}: allowed_jku path is not clean")
        if self.tenant is not None and (not isinstance(self.tenant, str) or not self.tenant):
            raise ValueError(f"TrustedIssuer {self.iss!r}: tenant must be a non-empty string")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TrustedIssuer:
        """Build from one entry of the `trusted_issuers` setting (parsed JSON): keys `iss`,
        `jwks_url`, `jwks`, `jwks_file`, `allowed_jku` (a list), `tenant`. An unknown key is
        an error (a misspelt `jwks_fiel` must not silently leave an issuer without keys)."""
        if not isinstance(data, Mapping):
            raise ValueError("a trusted issuer must be a JSON object")
        unknown = sorted(str(k) for k in data if k not in _CONFIG_KEYS)
        if unknown:
            raise ValueError(f"trusted issuer: unknown key(s) {unknown}")
        allowed = data.get("allowed_jku")
        if allowed is None:
            allowed = ()
        if isinstance(allowed, str) or not isinstance(allowed, list | tuple):
            raise ValueError("trusted issuer: allowed_jku must be a list of URLs")
        iss: Any = data.get("iss")  # checked in __post_init__
        return cls(
            iss=iss,
            jwks_url=data.get("jwks_url"),
            jwks=data.get("jwks"),
            jwks_file=data.get("jwks_file"),
            allowed_jku=tuple(allowed),
            tenant=data.get("tenant"),
        )

    @property
    def has_configured_keys(self) -> bool:
        """True when the service's own configuration names this issuer's keys (inline, file
        or URL), so a token's `jku` is never needed."""
        return self.jwks is not None or self.jwks_file is not None or self.jwks_url is not None

    def local_jwks(self) -> Mapping[str, Any] | None:
        """The configured JWKS that needs no network: inline, or read from `jwks_file`.
        Raises ValueError (configuration error, at start-up) when the file is not a JWKS."""
        if self.jwks_file is not None:
            return load_jwks_file(self.jwks_file)
        return self.jwks

    def jku_allowed(self, jku: str) -> bool:
        """True when `jku` (an untrusted header value) is allow-listed for this issuer."""
        if not isinstance(jku, str) or not jku or len(jku) > _MAX_URL_LEN:
            return False
        if jku == self.jwks_url:  # the configured key-set URL, named in the token: fine
            return True
        for entry in self.allowed_jku:
            if not entry.endswith("/"):
                if jku == entry:
                    return True
                continue
            if jku.startswith(entry) and len(jku) > len(entry):
                rest = jku[len(entry) :]
                if (
                    _FORBIDDEN_URL_CHARS.search(rest)
                    or _ENCODED_TRAVERSAL.search(rest)
                    or "?" in rest
                    or "#" in rest
                ):
                    continue
                if not _path_is_clean("/" + rest):
                    continue
                # Belt and braces: the parsed URL must keep the prefix's scheme and authority.
                p_entry, p_jku = urlsplit(entry), urlsplit(jku)
                if (p_jku.scheme, p_jku.netloc) != (p_entry.scheme, p_entry.netloc):
                    continue
                if p_jku.query or p_jku.fragment:
                    continue
                return True
        return False


def load_jwks_file(path: str | Path) -> dict[str, Any]:
    """Read a JWKS (JSON object with a `keys` list) from a local file.

    For deployments that cannot reach the client's `jku`; raises ValueError naming the path
    (never the file's content) when it cannot be read or is not a JWKS.
    """
    try:
        with Path(path).open("rb") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the JWKS file ({type(exc).__name__})") from None
    except (ValueError, RecursionError):
        raise ValueError(f"{path}: the JWKS file is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError(f"{path}: not a JWKS (expected an object with a 'keys' list)")
    return data

"""Service settings, read once from the environment (prefix ``HYPERMARKER_``).

Two profiles: ``local`` (the embedded defaults of ``hypermarker serve``: bundled model, SQLite
under ``var/``, demo auth allowed) and ``production``, which refuses unsafe settings at start-up
rather than running with them: demo auth, SQLite, a missing patient-reference key, CORS for any
origin, plain-http FHIR servers, or a plain-http LLM server outside the cluster.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.manifest import DEFAULT_ARTIFACTS

#: A production patient-reference key has at least this many different characters (a random
#: 32-character key has about 25; "a" * 32 has one).
MIN_KEY_DISTINCT_CHARS = 12
#: The largest request body the production profile accepts (a CDS Hooks call with a full
#: prefetch is well under 1 MB; 16 MB leaves room for a large $hypertension-options Bundle).
MAX_BODY_BYTES_PRODUCTION = 16_000_000
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def _loopback(url: str) -> bool:
    """Whether a URL's host is this machine (no network to protect)."""
    return (urlsplit(url).hostname or "") in _LOOPBACK


def _postgres_tls(url: str) -> bool:
    """A PostgreSQL URL that asks for TLS, or one on loopback or a Unix socket (host in the
    query string); other back ends are refused elsewhere."""
    if not url.startswith("postgresql"):
        return True
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if query.get("sslmode", [""])[-1] in ("require", "verify-ca", "verify-full"):
        return True
    host = parts.hostname or ""
    return host in _LOOPBACK or (not host and bool(query.get("host", [""])[-1].startswith("/")))


def _in_cluster(url: str) -> bool:
    """Loopback, or a Kubernetes Service name inside the cluster (``name`` or
    ``name.ns.svc[.cluster.local]``): traffic that stays on the node or the cluster network,
    where the chart's NetworkPolicy admits only the service's pods to the LLM."""
    host = urlsplit(url).hostname or ""
    return host in _LOOPBACK or "." not in host or host.endswith(
        (".svc", ".svc.cluster.local"))


class Profile(StrEnum):
    LOCAL = "local"
    PRODUCTION = "production"


class AuthMode(StrEnum):
    JWT = "jwt"
    DEMO = "demo"


class UnsafeSettings(ValueError):
    """The production profile refuses these settings."""


class Settings(BaseSettings):
    """Every setting of the service; see ``helm/`` for how Kubernetes sets them."""

    model_config = SettingsConfigDict(env_prefix="HYPERMARKER_", env_file=None,
                                      secrets_dir=None, extra="ignore", frozen=True)

    profile: Profile = Profile.LOCAL
    auth_mode: AuthMode = AuthMode.JWT
    trusted_issuers: list[dict[str, Any]] = Field(
        default_factory=list,
        description='JSON list of {"iss", "jwks_url" | "jwks" | "jwks_file", "allowed_jku": '
        '[...], "tenant"}: the configured keys verify the issuer\'s tokens whatever their jku '
        "says; a jku is fetched only when allow-listed")
    public_base_url: str | None = Field(
        default=None, description="External base URL (JWT aud checks, card links); default: "
        "the request's own URL")
    artifacts_dir: Path = DEFAULT_ARTIFACTS
    provider: str = "auto"
    onnx_threads: int = 1
    explain_top: int = Field(default=3, ge=1, description="Options explained (SHAP) per CDS "
                             "call; the panel explains every option when it is opened")
    database_url: str = "sqlite:///var/hypermarker/audit.db"
    spool_dir: Path = Path("var/hypermarker/spool")
    audit_write_timeout_s: float = Field(
        default=2.5, gt=0, description="Seconds an in-line audit write may take before the "
        "record goes to the spool instead (a stalled database never holds a card)")
    migrate_on_start: bool = Field(
        default=True, description="Bring the audit schema to head at start-up; false where a "
        "migration job does it (the Helm hook), so the runtime database user needs no DDL "
        "rights (the service is then not ready until the schema is at head)")
    patient_ref_key: SecretStr = SecretStr("local-development-only")
    guideline: str = "nice"
    fhir_timeout_s: float = 1.5
    fhir_max_pages: int = 5
    allow_http_fhir: bool = True
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Browser origins allowed to call the service (CORS): "
        'a JSON list (["https://ehr.example"]) or comma-separated origins')
    log_format: str = "auto"
    log_level: str = "INFO"
    max_body_bytes: int = 8_000_000
    replay_cache_url: str | None = Field(
        default=None, description="redis://... shared JWT replay cache (needed with several "
        "workers or pods); default: in-process memory")
    state_url: str | None = Field(
        default=None, description="redis://... shared store for panel tokens and SMART launch "
        "state (needed with several workers or pods); default: replay_cache_url, else "
        "in-process memory")
    workers: int = Field(default=1, ge=1, description="Worker processes serving this app "
                         "(set by `hypermarker serve --workers`); more than one needs the "
                         "shared stores (state_url or replay_cache_url)")
    smart_ehrs: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="FHIR base URLs (iss) of the EHRs allowed to launch "
        "the SMART panel: a JSON list or comma-separated; no other iss is contacted")
    smart_client_id: str = "hypermarker-panel"
    smart_scope: str = "launch openid fhirUser patient/Patient.rs"
    llm_url: str | None = Field(
        default=None, description="Base URL of the OpenAI-compatible server (vLLM) that writes "
        "the rationale (issue 16), e.g. http://hypermarker-vllm:8000; unset: no LLM, the "
        "panel and $hypertension-options show the rationale built from the record")
    llm_model: str = Field(default="hypermarker-rationale", description="The served model "
                           "name the LLM server is asked for (vLLM --served-model-name)")
    llm_api_key: SecretStr | None = Field(
        default=None, description="Bearer key of the LLM server (vLLM --api-key); a secret")
    llm_budget_ms: int = Field(
        default=1500, ge=0, le=10_000, description="How long $hypertension-options and the "
        "panel wait for the LLM rationale before answering with the one built from the record; "
        "cards never wait (the rationale is written in the background)")
    llm_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Time budget of one rationale request to the "
        "LLM, retries included")
    llm_retries: int = Field(default=2, ge=0, le=5, description="Retries of a failed LLM "
                             "request (connection, 429, 5xx), with jittered back-off")
    llm_max_pending: int = Field(
        default=16, ge=1, description="Rationales being written at once; a card's rationale "
        "beyond this is not written (counted in hypermarker_rationale_dropped_total)")
    llm_breaker_failures: int = Field(default=5, ge=1, description="Consecutive LLM failures "
                                      "that open the circuit breaker")
    llm_breaker_cooldown_s: float = Field(default=30.0, gt=0, description="Seconds the open "
                                          "breaker keeps calls off the LLM before one probe")

    @field_validator("trusted_issuers", mode="before")
    @classmethod
    def _json_list(cls, v: Any) -> Any:
        return json.loads(v) if isinstance(v, str) else v

    @field_validator("cors_origins", "smart_ehrs", mode="before")
    @classmethod
    def _string_list(cls, v: Any) -> Any:
        """A JSON list, or one or more comma-separated values (a plain origin is a list of
        one)."""
        if not isinstance(v, str):
            return v
        text = v.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"not a JSON list: {e.msg}") from e
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("smart_ehrs")
    @classmethod
    def _ehr_urls(cls, v: list[str]) -> list[str]:
        for url in v:
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"{url!r} is not an EHR FHIR base URL (http(s)://...)")
        return [u.rstrip("/") for u in v]

    @field_validator("llm_url")
    @classmethod
    def _llm_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{v!r} is not an LLM server base URL (http(s)://host[:port])")
        if parts.username or parts.password:
            raise ValueError("the LLM URL must not carry credentials (HYPERMARKER_LLM_API_KEY)")
        return v.rstrip("/")

    @property
    def shared_state_url(self) -> str | None:
        """Where panel tokens and launch state live (None: this process's memory)."""
        return self.state_url or self.replay_cache_url

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str) -> str:
        if v not in ("auto", "cpu", "cuda"):
            raise ValueError("provider must be auto, cpu or cuda")
        return v

    @field_validator("guideline")
    @classmethod
    def _guideline(cls, v: str) -> str:
        if v not in ("nice", "esc"):
            raise ValueError("guideline must be nice or esc")
        return v

    @model_validator(mode="after")
    def _workers_share_state(self) -> Settings:
        if self.workers > 1 and not self.shared_state_url:
            raise UnsafeSettings(
                f"{self.workers} workers need shared panel/launch state and a shared JWT replay "
                "cache: set HYPERMARKER_REPLAY_CACHE_URL (and optionally "
                "HYPERMARKER_STATE_URL) to redis://...")
        if self.workers > 1 and self.auth_mode is AuthMode.JWT and not self.replay_cache_url:
            raise UnsafeSettings(f"{self.workers} workers need a shared JWT replay cache "
                                 "(HYPERMARKER_REPLAY_CACHE_URL=redis://...)")
        return self

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.profile is not Profile.PRODUCTION:
            return self
        problems = []
        if self.auth_mode is AuthMode.DEMO:
            problems.append("demo auth (HYPERMARKER_AUTH_MODE=demo) is not allowed")
        if not self.trusted_issuers:
            problems.append("no trusted CDS client issuers (HYPERMARKER_TRUSTED_ISSUERS)")
        if self.database_url.startswith("sqlite"):
            problems.append("SQLite audit store: use PostgreSQL (HYPERMARKER_DATABASE_URL)")
        key = self.patient_ref_key.get_secret_value()
        if (key == "local-development-only" or len(key) < 32
                or len(set(key)) < MIN_KEY_DISTINCT_CHARS):
            problems.append("HYPERMARKER_PATIENT_REF_KEY must be a random secret of 32+ "
                            f"characters (at least {MIN_KEY_DISTINCT_CHARS} different ones)")
        if not self.public_base_url:
            problems.append("HYPERMARKER_PUBLIC_BASE_URL unset (JWT aud would trust Host)")
        elif not self.public_base_url.startswith("https://"):
            problems.append("HYPERMARKER_PUBLIC_BASE_URL must be https")
        if not self.replay_cache_url:
            problems.append("no shared JWT replay cache (HYPERMARKER_REPLAY_CACHE_URL=redis://)")
        for name, url in (("REPLAY_CACHE_URL", self.replay_cache_url),
                          ("STATE_URL", self.state_url)):
            if url and url.startswith("redis://") and not _loopback(url):
                problems.append(f"HYPERMARKER_{name}: a remote Redis needs TLS (rediss://)")
        if not _postgres_tls(self.database_url):
            problems.append("HYPERMARKER_DATABASE_URL: a remote PostgreSQL needs TLS "
                            "(sslmode=require, verify-ca or verify-full)")
        if "*" in self.cors_origins or "null" in self.cors_origins:
            problems.append("CORS for any origin (\"*\" or \"null\")")
        if any(not o.startswith("https://") for o in self.cors_origins if o not in ("*", "null")):
            problems.append("CORS origins must be https")
        if any(not u.startswith("https://") for u in self.smart_ehrs):
            problems.append("HYPERMARKER_SMART_EHRS must be https")
        if self.max_body_bytes > MAX_BODY_BYTES_PRODUCTION:
            problems.append(f"HYPERMARKER_MAX_BODY_BYTES above {MAX_BODY_BYTES_PRODUCTION:,}")
        if self.allow_http_fhir:
            problems.append("plain-http FHIR servers (set HYPERMARKER_ALLOW_HTTP_FHIR=false)")
        if self.llm_url and self.llm_url.startswith("http://") and not _in_cluster(
                self.llm_url):
            problems.append("HYPERMARKER_LLM_URL: plain http only to loopback or a cluster "
                            "Service name (the facts of the patient's assessment go to it); "
                            "use https")
        if problems:
            raise UnsafeSettings("production profile refuses: " + "; ".join(problems))
        return self

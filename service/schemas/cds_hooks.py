"""CDS Hooks 2.0 wire format (research/cdshooks.md section 1), as pydantic models.

Request models validate what the service reads; response models serialise with
``exclude_none`` so that optional fields are omitted rather than sent as null (spec 1.5).
Invariants of the 3.0 logical models (section 1.11) are enforced here: cds-r-1 on requests,
cds-resp-2..6 on cards, cds-fb-1..3 on feedback.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class FhirAuthorization(_Wire):
    # RFC 6750 2.1 b64token: anything else (non-ASCII, CR/LF) is a 400 naming the path, never
    # a 500 when the token is sent on to the FHIR server, and never logged
    access_token: str = Field(min_length=1, max_length=8192, pattern=r"^[A-Za-z0-9\-._~+/]+=*$",
                              repr=False)
    token_type: str = "Bearer"
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None


class HookContext(_Wire):
    userId: str | None = None
    patientId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-.]{1,64}$")
    encounterId: str | None = None
    selections: list[str] | None = None
    draftOrders: dict[str, Any] | None = None


class HookRequest(_Wire):
    hook: str
    hookInstance: str = Field(min_length=1, max_length=128)
    fhirServer: str | None = Field(default=None, max_length=2048)
    fhirAuthorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _cds_r_1(self) -> HookRequest:
        if self.fhirAuthorization is not None and not self.fhirServer:
            raise ValueError("cds-r-1: fhirAuthorization requires fhirServer")
        if self.fhirServer and not self.fhirServer.startswith(("http://", "https://")):
            raise ValueError("fhirServer must be an http(s) URL")
        return self


class Coding(_Wire):
    code: str
    system: str | None = None
    display: str | None = None


class Source(_Wire):
    label: str
    url: str | None = None
    topic: Coding | None = None


class Action(_Wire):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resourceId: str | None = None

    @model_validator(mode="after")
    def _cds_resp_2(self) -> Action:
        if self.type == "delete" and not self.resourceId:
            raise ValueError("cds-resp-2: delete actions use resourceId")
        if self.type in ("create", "update") and self.resource is None:
            raise ValueError("create/update actions carry the resource")
        return self


class Suggestion(_Wire):
    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None
    #: Our id of the option the suggestion orders: kept for the audit record (which option a
    #: clinician accepted), never sent.
    _option: str | None = PrivateAttr(default=None)

    @classmethod
    def for_option(cls, option_id: str, **fields: Any) -> Suggestion:
        s = cls(**fields)
        s._option = option_id
        return s

    @property
    def option(self) -> str | None:
        return self._option


class Link(_Wire):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None

    @model_validator(mode="after")
    def _cds_resp_3(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("cds-resp-3: appContext only on smart links")
        return self


class OverrideReason(Coding):
    display: str  # cds-resp-4: display SHALL be set


class Card(_Wire):
    uuid: str | None = None
    summary: str = Field(max_length=139)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[OverrideReason] | None = None
    links: list[Link] | None = None

    @model_validator(mode="after")
    def _cds_resp_6(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("cds-resp-6: suggestions require selectionBehavior")
        return self


class CdsResponse(_Wire):
    cards: list[Card]
    systemActions: list[Action] | None = None


class ServiceDefinition(_Wire):
    hook: str
    id: str
    title: str
    description: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None


class Discovery(_Wire):
    services: list[ServiceDefinition]


class AcceptedSuggestion(_Wire):
    id: str


class FeedbackOverrideReason(_Wire):
    reason: Coding | None = None
    userComment: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _cds_fb_3(self) -> FeedbackOverrideReason:
        if self.reason is None and not self.userComment:
            raise ValueError("cds-fb-3: overrideReason needs a reason or a userComment")
        return self


class FeedbackItem(_Wire):
    card: str = Field(min_length=1, max_length=128)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: FeedbackOverrideReason | None = None
    outcomeTimestamp: str = Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

    @field_validator("outcomeTimestamp")
    @classmethod
    def _a_real_instant(cls, value: str) -> str:
        """The pattern admits 2026-13-45T25:61:61Z: the date and time must also exist (and
        have a UTC equivalent: 9999-12-31T23:59:59-01:00 has none)."""
        try:
            datetime.fromisoformat(value).astimezone(UTC)
        except (ValueError, OverflowError):
            raise ValueError("not a real date and time (RFC 3339)") from None
        return value

    @property
    def timestamp(self) -> datetime:
        """``outcomeTimestamp`` as an aware datetime in UTC."""
        return datetime.fromisoformat(self.outcomeTimestamp).astimezone(UTC)

    @model_validator(mode="after")
    def _cds_fb_2(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("cds-fb-2: accepted feedback lists acceptedSuggestions")
        return self


class FeedbackRequest(_Wire):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)

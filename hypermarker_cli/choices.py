"""Option values shared by the commands."""

from __future__ import annotations

from enum import StrEnum


class Guideline(StrEnum):
    """Guideline profile (models.guideline.profiles.PROFILES keys)."""

    NICE = "nice"
    ESC = "esc"


class OutputFormat(StrEnum):
    JSON = "json"
    TEXT = "text"

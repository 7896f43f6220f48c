"""Target mode: send the suites' cases to a running service (not yet implemented)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.guideline.profiles import GuidelineProfile
from models.scorer import Scorer


@dataclass(frozen=True)
class TargetClient:
    base_url: str

    @classmethod
    def create(cls, base_url: str, private_key: Path | None, iss: str | None,
               kid: str | None) -> TargetClient:
        return cls(base_url)


def run_target_suite(client: TargetClient, suite: str, scorer: Scorer,
                     profile: GuidelineProfile, patients: int, seed: int,
                     limit: int | None) -> dict[str, Any]:
    raise NotImplementedError("target mode")

"""Shared fixtures: the committed model, loaded once per test session."""

from __future__ import annotations

import pytest

from models.explainer import Explainer
from models.manifest import DEFAULT_ARTIFACTS, Manifest, load_manifest
from models.scorer import Scorer


@pytest.fixture(scope="session")
def manifest() -> Manifest:
    return load_manifest(DEFAULT_ARTIFACTS)


@pytest.fixture(scope="session")
def scorer(manifest: Manifest) -> Scorer:
    return Scorer.load(DEFAULT_ARTIFACTS, provider="cpu", threads=1, manifest=manifest)


@pytest.fixture(scope="session")
def explainer(manifest: Manifest) -> Explainer:
    return Explainer.load(manifest)

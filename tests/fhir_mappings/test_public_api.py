"""The package's public names, imported on first use, all resolve to their modules."""

from __future__ import annotations

import importlib

import pytest

import fhir_mappings


def test_every_public_name_has_a_source_and_resolves() -> None:
    assert sorted(fhir_mappings._SOURCES) == sorted(fhir_mappings.__all__)
    for name, module in fhir_mappings._SOURCES.items():
        source = importlib.import_module(f"fhir_mappings.{module}")
        assert getattr(fhir_mappings, name) is getattr(source, name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fhir_mappings.nope  # noqa: B018

"""Errors raised by the model runtime.

::

    ModelError
    ├── ArtifactError            the artifacts cannot be used at all
    │   ├── ChecksumMismatch     a file's sha256 differs from the manifest
    │   └── FeatureSchemaMismatch  the manifest's feature table differs from the code's
    └── ProviderUnavailable      the requested execution provider cannot run the model
"""

from __future__ import annotations


class ModelError(Exception):
    """Base class of model-runtime errors."""


class ArtifactError(ModelError):
    """The model artifacts are missing, malformed or inconsistent."""


class ChecksumMismatch(ArtifactError):
    """A file's sha256 differs from the one recorded in the manifest."""


class FeatureSchemaMismatch(ArtifactError):
    """The manifest's ordered feature names or feature-table hash differ from the code's."""


class ProviderUnavailable(ModelError):
    """The requested onnxruntime execution provider is not available or cannot run the model."""

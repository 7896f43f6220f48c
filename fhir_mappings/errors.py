"""Errors raised while reading patient input.

::

    InputError                 the input cannot be turned into a patient record
    └── FeatureDocumentError   a features document is malformed (names the JSON path)
"""

from __future__ import annotations


class InputError(Exception):
    """Base class of input errors; ``path`` locates the problem in the input document."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.reason = message
        self.path = path


class FeatureDocumentError(InputError):
    """A features document (``hypermarker assess --features``) is malformed."""

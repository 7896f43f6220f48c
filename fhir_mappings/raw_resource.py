"""Typed, defensive access to raw FHIR R4 (4.0.1) JSON.

The mapping reads the few elements it needs straight from the parsed JSON (dicts from
``orjson``), because building ``fhir.resources`` models for every resource of a 2 MB Bundle
costs far more than the whole time budget. Every read here checks the JSON type of what it
reads and raises :class:`~fhir_mappings.errors.InvalidResource` naming the resource and the
JSON path when the element has the wrong shape, so malformed input never escapes as a
``KeyError`` or ``TypeError``. Resources that end up *used* are also validated in full
against the ``fhir.resources.R4B`` model (:mod:`fhir_mappings.validation`).

Element names and types follow the FHIR R4 specification, https://hl7.org/fhir/R4/.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from fhir_mappings.errors import InvalidResource

JsonObject = Mapping[str, Any]


class RawResource(NamedTuple):
    """One resource as found in the input: its JSON, where it sits, and how it is named
    (immutable; a tuple, because one is made for every resource of the input)."""

    resource_type: str
    id: str | None
    data: JsonObject
    path: str
    full_url: str | None = None

    @property
    def ref(self) -> str:
        """A literal reference naming the resource (``Observation/123``) for provenance."""
        if self.id:
            return f"{self.resource_type}/{self.id}"
        if self.full_url:
            return self.full_url
        return f"{self.resource_type} at {self.path}"

    def error(self, message: str, subpath: str = "") -> InvalidResource:
        return InvalidResource(message, self.path + subpath, self.resource_type, self.id)

    # -- typed getters; ``subpath`` is the JSON path of ``obj`` relative to the resource --

    def obj(self, obj: JsonObject, key: str, subpath: str = "") -> JsonObject | None:
        value = obj.get(key)
        if value is None or type(value) is dict or isinstance(value, Mapping):
            return value
        raise self.error(f"'{key}' must be an object", f"{subpath}.{key}")

    def objects(self, obj: JsonObject, key: str, subpath: str = "") -> Iterator[
            tuple[str, JsonObject]]:
        """The objects of an array element, with their paths (absent -> nothing)."""
        value = obj.get(key)
        if value is None:
            return
        if not isinstance(value, list):
            raise self.error(f"'{key}' must be an array", f"{subpath}.{key}")
        for i, item in enumerate(value):
            if type(item) is not dict and not isinstance(item, Mapping):
                raise self.error("must be an object", f"{subpath}.{key}[{i}]")
            yield f"{subpath}.{key}[{i}]", item

    def string(self, obj: JsonObject, key: str, subpath: str = "") -> str | None:
        value = obj.get(key)
        if value is None or isinstance(value, str):
            return value
        raise self.error(f"'{key}' must be a string", f"{subpath}.{key}")

    def strings(self, obj: JsonObject, key: str, subpath: str = "") -> list[str]:
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(f"'{key}' must be an array of strings", f"{subpath}.{key}")
        return value

    def number(self, obj: JsonObject, key: str, subpath: str = "") -> float | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"'{key}' must be a number", f"{subpath}.{key}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.error(f"'{key}' must be a finite number", f"{subpath}.{key}")
        return number

    def boolean(self, obj: JsonObject, key: str, subpath: str = "") -> bool | None:
        value = obj.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self.error(f"'{key}' must be true or false", f"{subpath}.{key}")

    def codings(self, concept: JsonObject | None, subpath: str = "") -> list[
            tuple[str, str, str]]:
        """``(system, code, display)`` of a CodeableConcept's codings (missing parts: "")."""
        if concept is None:
            return []
        plain = _plain_codings(concept)
        if plain is not None:  # (the usual case: read without a call per element)
            return plain
        items = concept.get("coding")
        if items is None:
            return []
        if type(items) is not list:
            raise self.error("'coding' must be an array", f"{subpath}.coding")
        out = []
        for i, coding in enumerate(items):
            if type(coding) is not dict and not isinstance(coding, Mapping):
                raise self.error("must be an object", f"{subpath}.coding[{i}]")
            path = f"{subpath}.coding[{i}]"
            system = self.string(coding, "system", path) or ""
            code = self.string(coding, "code", path) or ""
            display = self.string(coding, "display", path) or ""
            out.append((system, code, display))
        return out

    def concept(self, obj: JsonObject, key: str, subpath: str = "") -> tuple[
            list[tuple[str, str, str]], str]:
        """Codings and text of the CodeableConcept at ``key`` (absent -> nothing)."""
        cc = obj.get(key)
        if cc is None:
            return [], ""
        if type(cc) is dict:
            text = cc.get("text", "")
            codings = _plain_codings(cc) if type(text) is str else None
            if codings is not None:  # (the usual case: read without a call per element)
                return codings, text
        cc = self.obj(obj, key, subpath)
        assert cc is not None
        path = f"{subpath}.{key}"
        return self.codings(cc, path), self.string(cc, "text", path) or ""

    def concepts(self, obj: JsonObject, key: str, subpath: str = "") -> Iterator[
            tuple[list[tuple[str, str, str]], str]]:
        """Codings and text of each CodeableConcept of the array at ``key``."""
        for path, cc in self.objects(obj, key, subpath):
            yield self.codings(cc, path), self.string(cc, "text", path) or ""

    def status_code(self, obj: JsonObject, key: str, subpath: str = "") -> str | None:
        """The first code of a status CodeableConcept (Condition.clinicalStatus ...)."""
        codings, _ = self.concept(obj, key, subpath)
        return next((code for _system, code, _display in codings if code), None)

    def quantity_unit(self, quantity: JsonObject, subpath: str = "") -> str:
        """A Quantity's unit: its (UCUM) ``code``, else its ``unit`` text, else ""."""
        return (self.string(quantity, "code", subpath) or self.string(quantity, "unit", subpath)
                or "")

    def reference(self, obj: JsonObject, key: str, subpath: str = "") -> str | None:
        """The literal reference of the Reference at ``key`` (absent -> None)."""
        literal = literal_reference(obj, key)
        if literal is not None:  # (the usual case: read without the checks below)
            return literal
        ref = self.obj(obj, key, subpath)
        if ref is None:
            return None
        return self.string(ref, "reference", f"{subpath}.{key}")


def literal_reference(obj: JsonObject, key: str) -> str | None:
    """The literal reference of a well-formed Reference at ``key``, else None (unchecked:
    :meth:`RawResource.reference` is the checked read)."""
    value = obj.get(key)
    literal = value.get("reference") if type(value) is dict else None
    return literal if type(literal) is str else None


def _plain_codings(concept: JsonObject) -> list[tuple[str, str, str]] | None:
    """The codings of a well-formed CodeableConcept (every part a string or absent), or
    None for anything else (then :meth:`RawResource.codings` reads them element by element:
    it raises on a wrong type)."""
    items = concept.get("coding")
    if items is None:
        return []
    if type(items) is not list:
        return None
    out = []
    for coding in items:
        if type(coding) is not dict:
            return None
        system = coding.get("system", "")
        code = coding.get("code", "")
        display = coding.get("display", "")
        if type(system) is not str or type(code) is not str or type(display) is not str:
            return None
        out.append((system, code, display))
    return out


def first_text(*texts: str) -> str:
    """The first non-empty text."""
    for t in texts:
        if t:
            return t
    return ""


def displays(codings: Sequence[tuple[str, str, str]]) -> list[str]:
    """The displays of codings that have one."""
    return [d for _s, _c, d in codings if d]


def concept_words(codings: Sequence[tuple[str, str, str]], text: str) -> str:
    """A concept's text and the displays of its codings, joined by spaces (for word
    searches)."""
    return " ".join([text, *(d for _s, _c, d in codings)])

"""FeatureVector: what the pipeline knows about one patient at one date, with provenance.

The FHIR mapping builds it from a PatientRecord; ``hypermarker assess --features FILE.json``
reads it from a features document::

    {
      "as_of": "2026-11-24",
      "features": {"age": 67, "sbp_clinic": 152, "potassium": null, ...},
      "current_regimen": {"ace_inhibitor": 1.0},
      "deceased": false,
      "days_since_bp": 21,
      "provenance": [{"feature": "potassium", "source": null, "date": null,
                      "note": "no result in the last 15 months"}],
      "unavailable": {"labs": "FHIR server answered 500"},
      "data_quality": ["Clinic BP 2000/80 mmHg on ... rejected as implausible ..."]
    }

``unavailable`` names the parts of the record that could not be obtained
(:class:`fhir_mappings.availability.Domain` values: medications, conditions, allergies,
labs) with the reason; a features document without it claims that everything was obtained.
``data_quality`` holds warnings about the data that a clinician must see.

Every feature of :data:`vocabulary.feature_table.PATIENT_FEATURES` has a value or is
unknown (``null`` or absent). Binary facts whose policy is ``absent_as_zero`` default to 0 and
say so in their provenance; everything else that is absent stays unknown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from fhir_mappings.availability import Domain
from fhir_mappings.errors import FeatureDocumentError
from vocabulary.drug_classes import MAX_DOSE, DrugClass
from vocabulary.feature_table import (
    FEATURES_BY_NAME,
    PATIENT_FEATURES,
    PATIENT_MODEL_FEATURE_NAMES,
    Kind,
    Missing,
)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a feature's value came from (resource reference and date) or why it is unknown."""

    feature: str
    source: str | None = None
    date: date | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class FeatureVector:
    """One patient's features at ``as_of``; ``None`` means unknown."""

    as_of: date
    values: Mapping[str, float | None]
    regimen: Mapping[DrugClass, float]
    deceased: bool = False
    days_since_bp: int | None = None
    provenance: tuple[Provenance, ...] = field(default_factory=tuple)
    #: parts of the record that could not be obtained (Domain value -> reason)
    unavailable: Mapping[str, str] = field(default_factory=dict)
    #: data-quality warnings a clinician must see
    data_quality: tuple[str, ...] = ()
    #: per class, the patient's own drug and its daily dose in mg (None: strength unknown)
    current_drugs: Mapping[DrugClass, tuple[str, float | None]] = field(default_factory=dict)

    def get(self, name: str) -> float | None:
        if name not in FEATURES_BY_NAME:
            raise KeyError(name)
        return self.values.get(name)

    def flag(self, name: str) -> bool:
        """A binary fact that is known and true."""
        return self.get(name) == 1.0

    def n_antihypertensives(self) -> int:
        """Antihypertensive drugs taken: the regimen's classes, verapamil/diltiazem (not a
        model class) and the other antihypertensives (methyldopa, hydralazine ...)."""
        return (len(self.regimen) + (1 if self.flag("non_dhp_ccb") else 0)
                + (1 if self.flag("other_antihypertensive") else 0))

    def days_old(self, name: str) -> int | None:
        """Days from the result behind feature ``name`` to ``as_of`` (None: undated)."""
        if name == "sbp_clinic" and self.days_since_bp is not None:
            return self.days_since_bp
        for prov in self.provenance:
            if prov.feature == name and prov.date is not None:
                return (self.as_of - prov.date).days
        return None

    def model_vector(self) -> npt.NDArray[np.float64]:
        """Patient model features in model order, NaN where unknown."""
        return np.array(
            [np.nan if (v := self.values.get(n)) is None else v
             for n in PATIENT_MODEL_FEATURE_NAMES],
            dtype=np.float64,
        )


def _number(value: Any, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FeatureDocumentError(f"expected a number or null, got {type(value).__name__}", path)
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise FeatureDocumentError("NaN/infinite values are not allowed; use null", path)
    return v


def validate_value(name: str, value: float | None, path: str) -> float | None:
    """Check a value against the feature table (type and plausible range)."""
    spec = FEATURES_BY_NAME.get(name)
    if spec is None:
        raise FeatureDocumentError(f"unknown feature {name!r}", path)
    if value is None:
        return None
    if spec.kind is Kind.BINARY and value not in (0.0, 1.0):
        raise FeatureDocumentError(f"{name} is binary (0 or 1), got {value:g}", path)
    if not spec.low <= value <= spec.high:
        raise FeatureDocumentError(
            f"{name}={value:g} {spec.unit} is outside the plausible range "
            f"{spec.low:g}-{spec.high:g}", path)
    return value


def feature_vector_from_document(doc: Any) -> FeatureVector:
    """Parse and validate a features document; raises FeatureDocumentError naming the path."""
    if not isinstance(doc, Mapping):
        raise FeatureDocumentError("a features document must be a JSON object", "$")
    allowed = {"as_of", "features", "current_regimen", "deceased", "days_since_bp", "provenance",
               "unavailable", "data_quality", "current_drugs"}
    extra = set(doc) - allowed
    if extra:
        raise FeatureDocumentError(f"unknown keys {sorted(extra)}", "$")
    try:
        as_of = date.fromisoformat(str(doc["as_of"])) if "as_of" in doc else date.today()
    except ValueError as e:
        raise FeatureDocumentError(f"not an ISO date: {e}", "$.as_of") from e
    feats = doc.get("features", {})
    if not isinstance(feats, Mapping):
        raise FeatureDocumentError("must be an object of feature -> number|null", "$.features")
    values: dict[str, float | None] = {}
    provenance: list[Provenance] = []
    for name, raw in feats.items():
        path = f"$.features.{name}"
        values[name] = validate_value(name, _number(raw, path), path)
    for spec in PATIENT_FEATURES:
        if spec.name not in values and spec.missing is Missing.ABSENT_AS_ZERO:
            values[spec.name] = 0.0
            provenance.append(Provenance(spec.name, note="not recorded: taken as absent"))
        values.setdefault(spec.name, None)

    regimen_doc = doc.get("current_regimen", {})
    if not isinstance(regimen_doc, Mapping):
        raise FeatureDocumentError("must be an object of class -> dose multiple",
                                   "$.current_regimen")
    regimen: dict[DrugClass, float] = {}
    for cls, dose in regimen_doc.items():
        path = f"$.current_regimen.{cls}"
        try:
            drug_class = DrugClass(cls)
        except ValueError as e:
            raise FeatureDocumentError(
                f"unknown drug class {cls!r}; known: {[c.value for c in DrugClass]}", path
            ) from e
        d = _number(dose, path)
        if d is None or not 0.0 < d <= MAX_DOSE:
            raise FeatureDocumentError(f"dose multiple must be > 0 and <= {MAX_DOSE:g}", path)
        regimen[drug_class] = d

    deceased = doc.get("deceased", False)
    if not isinstance(deceased, bool):
        raise FeatureDocumentError("must be true or false", "$.deceased")
    days = doc.get("days_since_bp")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 0):
        raise FeatureDocumentError("must be a non-negative integer or null", "$.days_since_bp")

    prov_doc = doc.get("provenance", [])
    if not isinstance(prov_doc, list):
        raise FeatureDocumentError("must be a list", "$.provenance")
    for i, p in enumerate(prov_doc):
        if not isinstance(p, Mapping) or "feature" not in p:
            raise FeatureDocumentError("each entry needs a 'feature'", f"$.provenance[{i}]")
        provenance.append(Provenance(str(p["feature"]), _opt_str(p.get("source")),
                                     _opt_date(p.get("date"), f"$.provenance[{i}].date"),
                                     _opt_str(p.get("note"))))
    unavailable = doc.get("unavailable", {})
    domains = {d.value for d in Domain}
    if not isinstance(unavailable, Mapping) or not all(
            isinstance(k, str) and k in domains and isinstance(v, str)
            for k, v in unavailable.items()):
        raise FeatureDocumentError(f"must be an object of part of the record ({sorted(domains)})"
                                   " -> reason", "$.unavailable")
    quality = doc.get("data_quality", [])
    if not isinstance(quality, list) or not all(isinstance(q, str) for q in quality):
        raise FeatureDocumentError("must be a list of strings", "$.data_quality")
    drugs_doc = doc.get("current_drugs", {})
    drugs: dict[DrugClass, tuple[str, float | None]] = {}
    if not isinstance(drugs_doc, Mapping):
        raise FeatureDocumentError("must be an object of class -> {drug, daily_mg}",
                                   "$.current_drugs")
    for cls, entry in drugs_doc.items():
        path = f"$.current_drugs.{cls}"
        try:
            drug_class = DrugClass(cls)
        except ValueError as e:
            raise FeatureDocumentError(f"unknown drug class {cls!r}", path) from e
        if not isinstance(entry, Mapping) or not isinstance(entry.get("drug"), str):
            raise FeatureDocumentError("needs a 'drug' name", path)
        daily = _number(entry.get("daily_mg"), f"{path}.daily_mg")
        if daily is not None and daily <= 0:
            raise FeatureDocumentError("daily_mg must be positive", f"{path}.daily_mg")
        drugs[drug_class] = (entry["drug"], daily)
    return FeatureVector(as_of, values, regimen, deceased, days, tuple(provenance),
                         dict(unavailable), tuple(quality), drugs)


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)


def _opt_date(v: Any, path: str) -> date | None:
    """An ISO date (``2026-10-01``; a longer dateTime is read as its date), or None."""
    if v is None:
        return None
    try:
        return date.fromisoformat(str(v)[:10])
    except ValueError as e:
        raise FeatureDocumentError(f"not an ISO date: {v!r}", path) from e


def feature_vector_to_document(fv: FeatureVector) -> dict[str, Any]:
    """The inverse of :func:`feature_vector_from_document`."""
    return {
        "as_of": fv.as_of.isoformat(),
        "features": dict(fv.values),
        "current_regimen": {c.value: d for c, d in fv.regimen.items()},
        "deceased": fv.deceased,
        "days_since_bp": fv.days_since_bp,
        "provenance": [
            {"feature": p.feature, "source": p.source,
             "date": None if p.date is None else p.date.isoformat(), "note": p.note}
            for p in fv.provenance
        ],
        "unavailable": dict(fv.unavailable),
        "data_quality": list(fv.data_quality),
        "current_drugs": {c.value: {"drug": d, "daily_mg": mg}
                          for c, (d, mg) in fv.current_drugs.items()},
    }

"""MappingContext: the state shared by the resource-family mappers during one mapping.

FHIR release: R4 (4.0.1). It knows the assessment date, the policy, the one Patient, every
resource by the references that may point at it (``Type/id``, ``fullUrl``, absolute URL), and
collects the resources that end up used (they are validated and counted) and the report.
References follow https://hl7.org/fhir/R4/references.html (relative, absolute, ``urn:uuid:``
inside a Bundle, ``#id`` for contained resources).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from fhir_mappings.dates import When, months_before, parse_when
from fhir_mappings.errors import PatientMismatch
from fhir_mappings.mapping_policy import MappingPolicy
from fhir_mappings.raw_resource import JsonObject, RawResource
from fhir_mappings.report import ReportBuilder


class MappingContext:
    """Assessment date, policy, Patient, reference index, used resources and report."""

    def __init__(self, as_of: date, policy: MappingPolicy, patient: RawResource,
                 resources: Iterable[RawResource], report: ReportBuilder) -> None:
        self.as_of = as_of
        self.policy = policy
        self.patient = patient
        self.report = report
        self.used: dict[int, RawResource] = {}
        #: id() of the contained resources resolve() made (the others are the input's)
        self.contained: set[int] = set()
        self._resources = resources
        self._index: dict[str, RawResource] | None = None  # built on the first lookup
        self.patient_id = patient.id
        #: the literal reference to the Patient (most subjects): resolves to it, whatever
        #: else is in the input (one Patient per input)
        self._own_ref = f"Patient/{patient.id}" if patient.id else None
        # per-run memos (nothing outlives the run):
        #: date text -> parsed (None: not a date) ...
        self._dates: dict[str, When | None] = {}
        #: ... and reference -> "is another Patient"
        self._other_patient: dict[str, bool] = {}
        #: per-run memos of the resource-family mappers, by (purpose, key)
        self.memo: dict[tuple[str, object], object] = {}

    @property
    def index(self) -> dict[str, RawResource]:
        """Resources by ``Type/id`` and by full URL (the first one wins)."""
        if self._index is None:
            index: dict[str, RawResource] = {}
            for res in self._resources:
                if res.id:
                    index.setdefault(f"{res.resource_type}/{res.id}", res)
                if res.full_url:
                    index.setdefault(res.full_url, res)
            self._index = index
        return self._index

    def use(self, res: RawResource) -> None:
        """Mark a resource as used: it is validated and counted as used."""
        self.used[id(res)] = res

    # -- references ----------------------------------------------------------------------

    def resolve(self, ref: str, container: RawResource) -> RawResource | None:
        """The resource ``ref`` points at: contained (``#id``), in the input, or None."""
        if ref.startswith("#"):
            for path, item in container.objects(container.data, "contained"):
                if item.get("id") == ref[1:] and isinstance(item.get("resourceType"), str):
                    found = RawResource(item["resourceType"], ref[1:], item,
                                        container.path + path)
                    self.contained.add(id(found))
                    return found
            return None
        hit = self.index.get(ref)
        if hit is None and "/" in ref and not ref.startswith("urn:"):
            parts = ref.rstrip("/").split("/")
            if len(parts) >= 2:
                tail = "/".join(parts[-2:])
                if len(parts) >= 4 and parts[-2] == "_history":
                    tail = "/".join(parts[-4:-2])
                hit = self.index.get(tail)
        return hit

    def about_patient(self, res: RawResource, key: str = "subject") -> bool:
        """True when the resource is about this patient (or says nothing about whom); raises
        :class:`~fhir_mappings.errors.PatientMismatch` when its subject is another Patient:
        one input is one patient's record, so a resource of another patient means the input
        was put together wrongly and none of it can be trusted."""
        ref = res.reference(res.data, key)
        if ref is None or ref.startswith("#"):
            return True
        other = self._other_patient.get(ref)
        if other is None:
            other = self._is_other_patient(ref, res)
            self._other_patient[ref] = other
        if other:
            raise PatientMismatch(
                f"{res.ref} is about another patient ({key} {ref!r}, not "
                f"Patient/{self.patient_id}): one request is one patient's record",
                f"{res.path}.{key}", res.ref)
        return True

    def _is_other_patient(self, ref: str, res: RawResource) -> bool:
        if ref == self._own_ref:
            return False
        target = self.resolve(ref, res)
        if target is not None:
            return target.resource_type == "Patient" and target is not self.patient and (
                target.id != self.patient_id)
        if "Patient/" in ref and self.patient_id:
            return ref.rstrip("/").split("Patient/")[-1].split("/")[0] != self.patient_id
        return False

    def months_before(self, months: int) -> date:
        """The assessment date ``months`` calendar months earlier (lookback windows)."""
        day = self.memo.get(("months-before", months))
        if day is None:
            day = self.memo[("months-before", months)] = months_before(self.as_of, months)
        assert isinstance(day, date)
        return day

    # -- dates ---------------------------------------------------------------------------

    def when(self, res: RawResource, obj: JsonObject, key: str, subpath: str = "") -> (
            When | None):
        text = res.string(obj, key, subpath)
        if text is None:
            return None
        try:
            parsed = self._dates[text]
        except KeyError:
            parsed = self._dates[text] = parse_when(text)
        if parsed is None:
            raise res.error("is not a FHIR date or dateTime", f"{subpath}.{key}")
        return parsed

    def period_when(self, res: RawResource, obj: JsonObject, key: str,
                    subpath: str = "") -> tuple[When | None, When | None]:
        """(start, end) of the Period at ``key``."""
        period = res.obj(obj, key, subpath)
        if period is None:
            return None, None
        path = f"{subpath}.{key}"
        return self.when(res, period, "start", path), self.when(res, period, "end", path)

    def effective(self, res: RawResource) -> When | None:
        """When an Observation was taken: effective[x] (Period: its end, else start), issued."""
        d = res.data
        w = self.when(res, d, "effectiveDateTime")
        if w is not None:
            return w
        w = self.when(res, d, "effectiveInstant")
        if w is None:
            start, end = self.period_when(res, d, "effectivePeriod")
            w = end or start
        return w or self.when(res, d, "issued")

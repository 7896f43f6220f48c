"""The model manifest: identity, files with checksums, feature schema, metrics, intended use.

The manifest is the model's identity card (DESIGN.md section 5). :func:`load_manifest` reads it
and :meth:`Manifest.verify` refuses artifacts whose files do not match their sha256 or whose
feature table differs from the code's (:func:`vocabulary.feature_table.model_feature_hash`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import ArtifactError, ChecksumMismatch, FeatureSchemaMismatch
from vocabulary.feature_table import MODEL_FEATURE_NAMES, model_feature_hash

MANIFEST_NAME = "manifest.json"
DEFAULT_ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

#: Columns of the ONNX output "margins", in order: the point change of the reading, the
#: reading-interval quantiles, the target logit, then the expected effect and its interval's
#: quantiles (appended, so the first four columns keep their positions).
OUTPUTS: tuple[str, ...] = ("sbp_change", "sbp_lower", "sbp_upper", "target_logit",
                            "effect_change", "effect_lower", "effect_upper")

#: File roles the runtime needs.
ROLE_ONNX_TREE = "onnx_tree_ensemble"
ROLE_ONNX_TENSOR = "onnx_tensorised"
ROLE_LGB_PREFIX = "lightgbm_"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    path: str
    role: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """Parsed ``manifest.json``; ``directory`` is where its files live."""

    directory: Path
    model_id: str
    version: str
    files: tuple[ArtifactFile, ...]
    feature_names: tuple[str, ...]
    feature_table_hash: str
    outputs: tuple[str, ...]
    interval_coverage: float
    conformal_adjustment: float
    effect_coverage: float
    effect_adjustment: float
    raw: dict[str, Any]

    def file(self, role: str) -> Path:
        for f in self.files:
            if f.role == role:
                return self.directory / f.path
        raise ArtifactError(f"manifest has no file with role {role!r}")

    def checksum_report(self) -> dict[str, bool]:
        """sha256 check of every file: {path: matches}. Missing files count as mismatches."""
        out: dict[str, bool] = {}
        for f in self.files:
            p = self.directory / f.path
            out[f.path] = p.is_file() and sha256_file(p) == f.sha256
        return out

    def verify(self) -> None:
        """Raise unless every checksum matches and the feature schema is the code's."""
        bad = [p for p, ok in self.checksum_report().items() if not ok]
        if bad:
            raise ChecksumMismatch(f"sha256 mismatch or missing file: {', '.join(bad)}")
        if self.feature_names != MODEL_FEATURE_NAMES:
            raise FeatureSchemaMismatch(
                "the model's ordered feature names differ from vocabulary.feature_table"
            )
        if self.feature_table_hash != model_feature_hash():
            raise FeatureSchemaMismatch(
                f"feature-table hash {self.feature_table_hash[:12]} differs from the code's "
                f"{model_feature_hash()[:12]}"
            )
        if self.outputs != OUTPUTS:
            raise FeatureSchemaMismatch(f"model outputs {self.outputs} differ from {OUTPUTS}")


def load_manifest(directory: Path = DEFAULT_ARTIFACTS) -> Manifest:
    """Read ``manifest.json`` from ``directory`` (no verification; call :meth:`Manifest.verify`)."""
    path = directory / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ArtifactError(f"no {MANIFEST_NAME} in {directory}") from e
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path} is not valid JSON: {e}") from e
    try:
        return Manifest(
            directory=directory,
            model_id=str(raw["model_id"]),
            version=str(raw["version"]),
            files=tuple(
                ArtifactFile(str(f["path"]), str(f["role"]), str(f["sha256"]))
                for f in raw["files"]
            ),
            feature_names=tuple(str(n) for n in raw["feature_names"]),
            feature_table_hash=str(raw["feature_table_hash"]),
            outputs=tuple(str(o) for o in raw["outputs"]),
            interval_coverage=float(raw["interval"]["coverage"]),
            conformal_adjustment=float(raw["interval"]["conformal_adjustment"]),
            effect_coverage=float(raw["effect_interval"]["coverage"]),
            effect_adjustment=float(raw["effect_interval"]["conformal_adjustment"]),
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ArtifactError(f"{path} is missing or has a malformed field: {e!r}") from e

"""The model runtime: artifact verification, scoring, provider choice and SHAP additivity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from models.errors import ChecksumMismatch, FeatureSchemaMismatch, ProviderUnavailable
from models.explainer import Explainer
from models.manifest import DEFAULT_ARTIFACTS, Manifest, load_manifest
from models.scorer import CPU, CUDA, Scorer
from models.training.dataset import option_rows
from models.training.simulator import simulate_cohort


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return option_rows(simulate_cohort(300, "external", seed=5)).features


@pytest.fixture
def artifacts_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "artifacts"
    shutil.copytree(DEFAULT_ARTIFACTS, dst)
    return dst


def test_a_tampered_file_is_refused(artifacts_copy: Path) -> None:
    """One changed byte in the ONNX file makes the scorer refuse to start."""
    onnx_file = artifacts_copy / "model_tree.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[-1] ^= 0xFF
    onnx_file.write_bytes(bytes(data))

    with pytest.raises(ChecksumMismatch, match=r"model_tree\.onnx"):
        Scorer.load(artifacts_copy)


def test_a_different_feature_table_is_refused(artifacts_copy: Path) -> None:
    """A manifest whose feature-table hash differs from the code's is refused."""
    path = artifacts_copy / "manifest.json"
    doc = json.loads(path.read_text())
    doc["feature_table_hash"] = "0" * 64
    path.write_text(json.dumps(doc))

    with pytest.raises(FeatureSchemaMismatch, match="hash"):
        Scorer.load(artifacts_copy)


def test_reordered_feature_names_are_refused(artifacts_copy: Path) -> None:
    path = artifacts_copy / "manifest.json"
    doc = json.loads(path.read_text())
    doc["feature_names"] = list(reversed(doc["feature_names"]))
    path.write_text(json.dumps(doc))

    with pytest.raises(FeatureSchemaMismatch, match="feature names"):
        Scorer.load(artifacts_copy)


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="a CUDA provider is present")
def test_asking_for_cuda_without_it_is_a_clear_error() -> None:
    """provider='cuda' on a CPU-only onnxruntime raises ProviderUnavailable, never a silent CPU."""
    with pytest.raises(ProviderUnavailable, match="gpu"):
        Scorer.load(provider="cuda")


def test_auto_uses_the_tree_form_on_cpu(scorer: Scorer) -> None:
    """Without CUDA the tree-ensemble form runs on the CPU provider and says so."""
    if CUDA in ort.get_available_providers():
        pytest.skip("CUDA present")
    auto = Scorer.load(provider="auto")

    assert (auto.provider, auto.form) == (CPU, "onnx_tree_ensemble")
    assert auto.fallback_reason is None


def test_scores_are_well_formed(scorer: Scorer, rows: np.ndarray) -> None:
    """Intervals contain the point, probabilities are in [0, 1], coverage is the manifest's."""
    s = scorer.score(rows)

    assert s.sbp_change.shape == (len(rows),)
    assert (s.lower <= s.sbp_change).all()
    assert (s.sbp_change <= s.upper).all()
    assert ((s.p_target >= 0) & (s.p_target <= 1)).all()
    assert s.coverage == scorer.manifest.interval_coverage
    # the effect interval contains the expected effect, at its own nominal coverage
    assert s.effect_change.shape == (len(rows),)
    assert (s.effect_lower <= s.effect_change).all()
    assert (s.effect_change <= s.effect_upper).all()
    assert s.effect_coverage == scorer.manifest.effect_coverage
    part = s.take(np.arange(3))
    np.testing.assert_array_equal(part.effect_upper, s.effect_upper[:3])


def test_wrong_width_input_is_rejected(scorer: Scorer) -> None:
    with pytest.raises(ValueError, match=r"\[N, 31\]"):
        scorer.score(np.zeros((2, 30)))


def test_shap_adds_up_to_the_served_output(scorer: Scorer, explainer: Explainer,
                                           rows: np.ndarray) -> None:
    """base value + contributions equals the ONNX output that was served (< 1e-4): the
    expected effect (``effect_change``, what the ranking compares), not one reading's change."""
    assert explainer.output == "effect_change"
    np.testing.assert_allclose(scorer.margins(rows)[:, explainer.column],
                               scorer.score(rows).effect_change, atol=1e-6)
    served = scorer.margins(rows)[:, explainer.column]
    e = explainer.explain(rows)

    assert np.max(np.abs(e.base_value + e.contributions.sum(axis=1) - served)) < 1e-4
    assert np.max(np.abs(e.output - served)) < 1e-4
    assert e.contributions.shape == rows.shape


def test_tensorised_form_matches_the_tree_form(manifest: Manifest, rows: np.ndarray) -> None:
    """The CUDA-ready tensorised file gives the tree form's outputs (run here on the CPU)."""
    tree = ort.InferenceSession(str(manifest.file("onnx_tree_ensemble")), providers=[CPU])
    tensor = ort.InferenceSession(str(manifest.file("onnx_tensorised")), providers=[CPU])
    x = rows.astype(np.float32)

    a = tree.run(None, {"features": x})[0]
    b = tensor.run(None, {"features": x})[0]

    assert np.max(np.abs(a - b)) < 1e-4


def test_manifest_records_metrics_and_intended_use(manifest: Manifest) -> None:
    """The manifest states simulated data and carries held-out metrics for both sites."""
    raw = load_manifest().raw

    assert "simulated" in raw["training"]["data"]
    assert "NOT clinically validated" in raw["intended_use"]
    assert set(raw["metrics"]) == {"internal_test", "external"}
    cov = raw["metrics"]["internal_test"]["interval"]["coverage"]
    assert abs(cov - manifest.interval_coverage) < 0.02
    effect_cov = raw["metrics"]["internal_test"]["effect_interval"]["coverage"]
    assert abs(effect_cov - manifest.effect_coverage) < 0.02

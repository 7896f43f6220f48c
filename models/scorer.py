"""Treatment-response scorer: one onnxruntime session over the verified artifacts.

The artifacts hold two ONNX forms of the same LightGBM ensemble with the same input
(``features``: float32 [N, F]) and output (``margins``: float32 [N, 7], see
:data:`models.manifest.OUTPUTS`):

* the tree-ensemble form (``ai.onnx.ml`` TreeEnsembleRegressor), which onnxruntime runs on the
  CPU only (its CUDA provider has no tree kernels, research/mlops.md 1.4);
* the tensorised form (Gather/compare/MatMul), whose every node has a CUDA kernel.

With ``provider="auto"`` the scorer uses the tensorised form on CUDA when onnxruntime offers
the CUDA provider, creating the session with CPU fallback disabled so that the reported
provider is the one that really runs every node; if that session cannot be created it falls
back to the tree form on the CPU and says so in :attr:`Scorer.fallback_reason`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from models.errors import ArtifactError, ProviderUnavailable
from models.manifest import (
    DEFAULT_ARTIFACTS,
    ROLE_ONNX_TENSOR,
    ROLE_ONNX_TREE,
    Manifest,
    load_manifest,
)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
ProviderChoice = Literal["auto", "cpu", "cuda"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ScoreBatch:
    """Model outputs for N (patient, option) rows.

    ``sbp_change`` is the predicted 12-week change in the recorded clinic systolic BP from the
    reading the decision is made on (mmHg, negative is lowering; that reading was selected
    high, so this includes the expected regression to the mean, the same for every option of a
    patient); ``lower``/``upper`` bound a single observed 12-week change of that reading with
    probability ``coverage`` (the reading interval, split-conformal quantile regression).
    ``effect_change`` is the expected change in the patient's usual SBP from the option itself
    (adherence and stopping averaged out; no measurement noise, no regression to the mean:
    what ranking compares and what says whether an option lowers BP), and
    ``effect_lower``/``effect_upper`` bound the expected change of a patient like this one with
    probability ``effect_coverage`` (the effect interval); ``p_target`` is the probability of a
    12-week clinic systolic reading below the patient's guideline target; ``margins`` are the
    raw ONNX outputs the other fields derive from (SHAP explains ``effect_change``, column 4).
    """

    sbp_change: F64
    lower: F64
    upper: F64
    p_target: F64
    margins: F32
    coverage: float
    effect_change: F64
    effect_lower: F64
    effect_upper: F64
    effect_coverage: float

    def take(self, rows: slice | npt.NDArray[np.intp]) -> ScoreBatch:
        """The scores of a subset of rows (e.g. one patient's options in a batch)."""
        return ScoreBatch(self.sbp_change[rows], self.lower[rows], self.upper[rows],
                          self.p_target[rows], self.margins[rows], self.coverage,
                          self.effect_change[rows], self.effect_lower[rows],
                          self.effect_upper[rows], self.effect_coverage)


def _sigmoid(x: F64) -> F64:
    out: F64 = 1.0 / (1.0 + np.exp(-x))
    return out


class Scorer:
    """Loads verified artifacts and scores feature rows with onnxruntime."""

    def __init__(self, manifest: Manifest, session: ort.InferenceSession, provider: str,
                 form: str, fallback_reason: str | None = None) -> None:
        self.manifest = manifest
        self._session = session
        self.provider = provider
        self.form = form
        self.fallback_reason = fallback_reason
        self._input = session.get_inputs()[0].name
        self._n_features = len(manifest.feature_names)

    @classmethod
    def load(cls, directory: Path = DEFAULT_ARTIFACTS, provider: ProviderChoice = "auto",
             threads: int = 0, manifest: Manifest | None = None) -> Scorer:
        """Verify the artifacts (checksums, feature schema) and open one session.

        ``threads`` sets onnxruntime's intra-op threads (0 = its default).
        """
        manifest = manifest or load_manifest(directory)
        manifest.verify()
        available = ort.get_available_providers()
        fallback: str | None = None
        if provider in ("auto", "cuda") and CUDA in available:
            try:
                return cls(manifest, open_session(manifest.file(ROLE_ONNX_TENSOR), CUDA, threads),
                           CUDA, ROLE_ONNX_TENSOR)
            except Exception as e:  # onnxruntime raises its own untyped errors here
                if provider == "cuda":
                    raise ProviderUnavailable(f"CUDA session could not be created: {e}") from e
                fallback = f"CUDA provider listed but unusable ({type(e).__name__}); using CPU"
        elif provider == "cuda":
            raise ProviderUnavailable(
                f"{CUDA} is not available (onnxruntime providers: {', '.join(available)}); "
                "install the `gpu` extra on a machine with a CUDA device"
            )
        session = open_session(manifest.file(ROLE_ONNX_TREE), CPU, threads)
        return cls(manifest, session, CPU, ROLE_ONNX_TREE, fallback)

    def margins(self, features: npt.ArrayLike) -> F32:
        """Raw ONNX output [N, 7] for a feature matrix [N, F] (converted to float32)."""
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self._n_features:
            raise ValueError(f"expected a [N, {self._n_features}] feature matrix, got {x.shape}")
        out: F32 = self._session.run(None, {self._input: x})[0]
        return out

    def score(self, features: npt.ArrayLike) -> ScoreBatch:
        m = self.margins(features)
        m64 = m.astype(np.float64)
        point = m64[:, 0]
        q = self.manifest.conformal_adjustment
        lo = np.minimum(np.minimum(m64[:, 1], m64[:, 2]) - q, point)
        hi = np.maximum(np.maximum(m64[:, 1], m64[:, 2]) + q, point)
        effect = m64[:, 4]
        qe = self.manifest.effect_adjustment
        elo = np.minimum(np.minimum(m64[:, 5], m64[:, 6]) - qe, effect)
        ehi = np.maximum(np.maximum(m64[:, 5], m64[:, 6]) + qe, effect)
        return ScoreBatch(point, lo, hi, _sigmoid(m64[:, 3]), m,
                          self.manifest.interval_coverage, effect, elo, ehi,
                          self.manifest.effect_coverage)


def open_session(path: Path, provider: str, threads: int) -> ort.InferenceSession:
    """One onnxruntime session on exactly ``provider`` (CUDA: with CPU fallback disabled)."""
    if not path.is_file():
        raise ArtifactError(f"missing ONNX file {path}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    # Idle intra-op threads sleep instead of spinning: on shared cores (several workers, a pod's
    # CPU limit, the harness's ranking processes) spinning threads took the CPU the others
    # needed (batch scoring on a loaded 2-core machine: 33k rows/s spinning, 53k not).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if provider == CUDA:
        # Fail rather than silently run any node on the CPU: a claim of GPU must be true.
        opts.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    return ort.InferenceSession(str(path), sess_options=opts, providers=[provider])

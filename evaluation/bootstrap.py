"""Patient-level bootstrap confidence intervals for the harness's estimates (seeded).

Every figure that a gate of ``evaluation/plan.toml`` judges with a confidence bound is an
:class:`Estimate`: the point estimate on the whole case set and a percentile interval over
bootstrap resamples of *patients* (a patient's option rows stay together, so the interval
reflects the patients sampled, not the number of rows). The resamples are drawn once per
:class:`Bootstrap` from a fixed seed, and every statistic is a function of weighted sums of
per-patient columns (matrix products on one BLAS thread), so all estimates of a suite share the
same resamples and a run gives the same intervals to the bit whatever the number of processes
and of cores.

Statistics (``W`` a resample's patient weights, columns summed per patient):

* :meth:`Bootstrap.ratio` -- ``sum(W num) / sum(W den)``: a ratio of sums (the captured
  fraction; a rate, with ``den`` the indicator of the patients it is taken over; a mean);
* :meth:`Bootstrap.slope` -- least-squares slope of y on x over the rows of the resampled
  patients, from per-patient sums of 1, x, y, x^2 and xy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

F64 = npt.NDArray[np.float64]

#: Confidence level of every interval (two-sided; a gate reads one end of it).
LEVEL: Final = 0.95
#: Resamples per suite.
REPLICATES: Final = 400
#: Seed of the resamples (fixed: the same case set gives the same intervals).
SEED: Final = 20_261_206
#: Resamples generated at a time (bounds memory: a [chunk, patients] weight matrix).
_CHUNK: Final = 50
#: Most resample weights (replicates x patients) a :class:`Bootstrap` keeps between its
#: :meth:`Bootstrap.sums` calls (one byte each): a suite's second batch of estimates reuses
#: the resamples of its first instead of drawing them again.
_KEEP: Final = 256 * 2**20
METHOD: Final = (f"percentile bootstrap over patients ({REPLICATES} resamples, seed {SEED}); "
                 f"{LEVEL:.0%} two-sided interval")


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with its confidence interval, over ``n`` patients."""

    estimate: float
    lower: float
    upper: float
    n: int
    level: float = LEVEL

    def to_dict(self) -> dict[str, Any]:
        return {"estimate": _finite(self.estimate), "lower": _finite(self.lower),
                "upper": _finite(self.upper), "n": self.n, "level": self.level}


def _finite(v: float) -> float | None:
    return v if np.isfinite(v) else None


def is_estimate(value: Any) -> bool:
    """Whether a report value is an estimate's dict (see :meth:`Estimate.to_dict`)."""
    return isinstance(value, Mapping) and "estimate" in value and "lower" in value


class Bootstrap:
    """Seeded patient resamples for ``n`` patients; see the module docstring."""

    def __init__(self, n: int, replicates: int = REPLICATES, seed: int = SEED) -> None:
        self.n = n
        self.replicates = replicates
        self.seed = seed
        self._kept: list[npt.NDArray[np.uint8]] | None = None
        """The weights of every chunk of resamples, once drawn (where they fit in bytes)."""

    def _weights(self) -> Iterator[tuple[int, int, F64]]:
        """(first, end, weights [end - first, n]) of each chunk of resamples: the same draws
        from the seed on every call (kept after the first where they fit)."""
        if self._kept is not None:
            for j, lo in enumerate(range(0, self.replicates, _CHUNK)):
                yield lo, min(lo + _CHUNK, self.replicates), self._kept[j].astype(np.float64)
            return
        keep = self.replicates * self.n <= _KEEP
        kept: list[npt.NDArray[np.uint8]] = []
        rng = np.random.default_rng(self.seed)
        for lo in range(0, self.replicates, _CHUNK):
            hi = min(lo + _CHUNK, self.replicates)
            counts = np.stack([np.bincount(rng.integers(0, self.n, self.n), minlength=self.n)
                               for _ in range(hi - lo)])
            keep = keep and int(counts.max()) <= np.iinfo(np.uint8).max
            if keep:
                kept.append(counts.astype(np.uint8))
            yield lo, hi, counts.astype(np.float64)
        if keep:
            self._kept = kept

    def sums(self, columns: F64) -> tuple[F64, F64]:
        """Column sums over all patients [k] and over each resample [replicates, k] of a
        per-patient matrix ``columns`` [n, k]."""
        cols = np.asarray(columns, dtype=np.float64)
        if cols.ndim != 2 or cols.shape[0] != self.n:
            raise ValueError(f"columns must be [{self.n}, k]")
        full = cols.sum(axis=0)
        out = np.empty((self.replicates, cols.shape[1]))
        if self.n == 0:
            out[:] = 0.0
            return full, out
        # one BLAS thread: OpenBLAS splits a product between its threads in a way that changes
        # its last bits, so the intervals would depend on the machine's core count; and on
        # shared cores threads that wait on each other made these products several times
        # slower (100,000 patients, 165 columns: 18 s on two threads, 3 s on one)
        with threadpool_limits(1, user_api="blas"):
            for lo, hi, w in self._weights():
                out[lo:hi] = w @ cols
        return full, out

    def ratio(self, num: F64, den: F64) -> Estimate:
        """``sum(num) / sum(den)`` with its interval; NaN where the denominator is 0."""
        batch = Batch(self)
        batch.ratio("r", num, den)
        return batch.run()["r"]

    def slope(self, count: F64, sx: F64, sy: F64, sxx: F64, sxy: F64) -> Estimate:
        """Slope of y on x from per-patient row counts and sums (see the module docstring)."""
        batch = Batch(self)
        batch.slope("s", count, sx, sy, sxx, sxy)
        return batch.run()["s"]


class Batch:
    """Several estimates over the same resamples, computed in one pass over the patients:
    declare them (:meth:`ratio`, :meth:`slope`), then :meth:`run`."""

    def __init__(self, boot: Bootstrap) -> None:
        self.boot = boot
        self._columns: list[F64] = []
        self._jobs: list[tuple[str, str, list[int], int]] = []

    def _add(self, *cols: F64) -> list[int]:
        at = len(self._columns)
        self._columns.extend(np.asarray(c, dtype=np.float64) for c in cols)
        return list(range(at, at + len(cols)))

    def ratio(self, key: str, num: F64, den: F64, n: int | None = None) -> None:
        """``sum(num) / sum(den)``; ``n``: the patients it is over (default: those with a
        non-zero ``den``)."""
        self._jobs.append(("ratio", key, self._add(num, den),
                           int(np.count_nonzero(np.asarray(den))) if n is None else n))

    def slope(self, key: str, count: F64, sx: F64, sy: F64, sxx: F64, sxy: F64) -> None:
        """Least-squares slope of y on x; ``n`` counts the patients with rows."""
        self._jobs.append(("slope", key, self._add(count, sx, sy, sxx, sxy),
                           int(np.count_nonzero(np.asarray(count)))))

    def run(self) -> dict[str, Estimate]:
        if not self._jobs:
            return {}
        full, boot = self.boot.sums(np.column_stack(self._columns))
        out: dict[str, Estimate] = {}
        for kind, key, idx, n in self._jobs:
            if kind == "ratio":
                out[key] = _estimate(_div(full[idx[0]], full[idx[1]]),
                                     _div(boot[:, idx[0]], boot[:, idx[1]]), n)
            else:
                out[key] = _estimate(float(_slope(full[None, idx])[0]), _slope(boot[:, idx]),
                                     n)
        return out


def _div(a: Any, b: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1.0), np.nan)


def _slope(s: F64) -> F64:
    n, sx, sy, sxx, sxy = (s[:, i] for i in range(5))
    with np.errstate(divide="ignore", invalid="ignore"):
        mx = sx / n
        var = sxx / n - mx * mx
        cov = sxy / n - mx * sy / n
        out: F64 = np.where((n >= 2) & (var > 1e-12), cov / np.where(var > 1e-12, var, 1.0),
                            np.nan)
    return out


def _estimate(point: Any, boot: Any, n: int) -> Estimate:
    point = float(point)
    b = np.asarray(boot, dtype=np.float64)
    b = b[np.isfinite(b)]
    if not np.isfinite(point) or len(b) < 0.9 * len(np.asarray(boot)):
        return Estimate(point, float("nan"), float("nan"), n)
    alpha = (1.0 - LEVEL) / 2.0
    lo, hi = np.quantile(b, [alpha, 1.0 - alpha])
    return Estimate(point, float(lo), float(hi), n)


def patient_sums(values: F64, starts: npt.NDArray[np.intp], n_rows: int) -> F64:
    """Sum of a per-row array within each patient's contiguous group of rows."""
    if len(starts) == 0:
        return np.zeros(0)
    out: F64 = np.add.reduceat(np.asarray(values, dtype=np.float64)[:n_rows], starts)
    return out

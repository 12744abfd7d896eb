"""Statistical tests used in the paper's evaluation.

* :func:`mcnemar` -- exact McNemar test on paired per-sample correctness, used to compare the
  class-based learning-rate method against its baseline on the same test set (Section 5, Tab. 2).
* :func:`ranksum_pvalues` / :func:`neuron_specialization` -- the Wilcoxon rank-sum
  "class-specialised neuron" statistic of Tab. 3 (p < 1e-7, one class vs. all other classes).

The rank-sum code is vectorised (one ranking per neuron, all class rank sums from one matrix
product) so a whole layer of a real network is analysed in well under a second or two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

__all__ = [
    "McNemarResult",
    "mcnemar",
    "neuron_specialization",
    "ranksum_pvalues",
]


def _to_numpy(x: Any) -> np.ndarray:
    """Convert a numpy array, torch tensor or array-like to a numpy array (no torch import)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, duck-typed
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_bool_vector(x: Any, name: str) -> np.ndarray:
    """Validate a 1-D correctness vector (bool, or integers 0/1) and return it as bool."""
    arr = _to_numpy(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or contain only 0/1)")
        arr = arr.astype(bool)
    return arr


# --------------------------------------------------------------------------------------------
# McNemar
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class McNemarResult:
    """Outcome of :func:`mcnemar`.

    a_only: samples classifier A got right and B got wrong (discordant count b).
    b_only: samples classifier B got right and A got wrong (discordant count c).
    p_value: exact two-sided p-value.
    """

    a_only: int
    b_only: int
    p_value: float


def mcnemar(correct_a: Any, correct_b: Any) -> McNemarResult:
    """Exact two-sided McNemar test comparing two classifiers on the same test samples.

    ``correct_a`` and ``correct_b`` are boolean arrays of shape (n_samples,) saying whether each
    classifier got each test sample right. Only the discordant pairs matter: with
    b = #(A right, B wrong) and c = #(A wrong, B right), under H0 b ~ Binom(b + c, 1/2), so
    p = min(1, 2 * BinomCDF(min(b, c); b + c, 1/2)), and p = 1 when b + c = 0.
    """
    a = _as_bool_vector(correct_a, "correct_a")
    b_arr = _as_bool_vector(correct_b, "correct_b")
    if a.shape != b_arr.shape:
        raise ValueError(
            f"correct_a and correct_b must have the same length, got {a.size} and {b_arr.size}"
        )
    b = int(np.count_nonzero(a & ~b_arr))
    c = int(np.count_nonzero(~a & b_arr))
    n = b + c
    if n == 0:
        p = 1.0
    else:
        p = min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), n, 0.5)))
    return McNemarResult(a_only=b, b_only=c, p_value=p)


# --------------------------------------------------------------------------------------------
# Wilcoxon rank-sum, one class vs. rest, vectorised over classes and neurons
# --------------------------------------------------------------------------------------------


def _average_ranks_columns(x: np.ndarray) -> np.ndarray:
    """Average (tie-aware, 1-based) ranks of each column of ``x`` (n_samples, n_neurons).

    Equivalent to ``scipy.stats.rankdata(x, axis=0, method="average")`` but fully vectorised:
    one argsort of the transposed array; tie groups are runs of equal sorted neighbours,
    and each element gets (first + last position of its run) / 2 + 1, where the run boundaries
    are propagated with running max/min accumulations along each row. Returns float64 (n, m).
    """
    n, m = x.shape
    xt = np.ascontiguousarray(x.T)  # (m, n): sort along the contiguous axis
    # Ties are averaged, so the sort need not be stable. Pick the faster argsort: numpy's
    # stable sort (timsort/radix) copes well with heavy ties (e.g. ReLU zeros), its SIMD
    # quicksort with mostly distinct values. Decide from the tie rate of a few columns.
    probe = np.sort(xt[:: max(1, m // 8)], axis=1)
    tie_rate = np.mean(probe[:, 1:] == probe[:, :-1]) if n > 1 else 0.0
    order = np.argsort(xt, axis=1, kind="stable" if tie_rate > 0.05 else "quicksort")
    xs = np.take_along_axis(xt, order, axis=1)
    differs = xs[:, 1:] != xs[:, :-1]  # (m, n - 1): a new tie run starts at position i + 1
    del xs
    pos = np.arange(n)
    if differs.all():  # no ties at all: ordinal ranks
        ranks_sorted = np.broadcast_to(pos + 1.0, (m, n))
    else:
        first = np.zeros((m, n), dtype=np.int64)  # first position of each element's run
        np.copyto(first[:, 1:], np.where(differs, pos[1:], 0))
        np.maximum.accumulate(first, axis=1, out=first)
        last = np.full((m, n), n - 1, dtype=np.int64)  # last position, filled right to left
        np.copyto(last[:, :-1], np.where(differs, pos[:-1], n - 1))
        last = np.minimum.accumulate(last[:, ::-1], axis=1)[:, ::-1]
        ranks_sorted = (first + last) * 0.5 + 1.0
    ranks_t = np.empty((m, n), dtype=np.float64)
    np.put_along_axis(ranks_t, order, ranks_sorted, axis=1)
    return ranks_t.T  # (n, m) view


def _tie_factors(x: np.ndarray) -> np.ndarray:
    """Per column of ``x`` (n, m): 1 - sum(t^3 - t) / (n^3 - n) over its tie groups of sizes t,
    the factor by which ties shrink the rank-sum variance (1: no ties, 0: a constant column)."""
    n, m = x.shape
    if n < 2:
        return np.ones(m)
    xs = np.sort(x, axis=0)
    new_run = np.ones((n, m), dtype=bool)
    new_run[1:] = xs[1:] != xs[:-1]
    run = np.cumsum(new_run, axis=0) - 1 + np.arange(m) * n  # a run id unique over columns
    sizes = np.bincount(run.ravel(), minlength=n * m).reshape(m, n).astype(np.float64)
    return 1.0 - (sizes ** 3 - sizes).sum(axis=1) / (n ** 3 - n)


def ranksum_pvalues(activations: Any, labels: Any, n_classes: int,
                    tie_correction: bool = False) -> np.ndarray:
    """Two-sided Wilcoxon rank-sum p-values of every neuron for every class vs. all others.

    ``activations`` is (n_samples, n_neurons) (numpy array or torch tensor), ``labels`` is
    (n_samples,) with integers in [0, n_classes). Entry [c, j] of the returned
    (n_classes, n_neurons) array equals ``scipy.stats.ranksums(x[labels == c, j],
    x[labels != c, j]).pvalue``: pooled average ranks, z = (R1 - n1 (n+1)/2) /
    sqrt(n1 n2 (n+1) / 12) without tie correction, p = 2 * Phi(-|z|) (accurate far below 1e-7).
    Rows of classes with no samples, or with all samples, are NaN.

    Each neuron is ranked once over all samples; all class rank sums then come from one
    matrix product one_hot(labels).T @ ranks.

    ``tie_correction=True`` divides the variance by the tie factor 1 - sum(t^3 - t) / (n^3 - n)
    of each neuron, as ``scipy.stats.mannwhitneyu(..., method="asymptotic",
    use_continuity=False)`` does; it matters where activations tie (ReLU zeros). A constant
    neuron gets p = 1 either way.
    """
    x = _to_numpy(activations)
    y = _to_numpy(labels)
    if x.ndim != 2:
        raise ValueError(f"activations must be 2-D (n_samples, n_neurons), got shape {x.shape}")
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D (n_samples,), got shape {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"labels has {y.shape[0]} entries but activations has {x.shape[0]} samples"
        )
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ValueError(f"n_classes must be an integer, got {n_classes!r}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise ValueError(f"activations must be numeric, got dtype {x.dtype}")
    if x.dtype == np.bool_:
        x = x.astype(np.uint8)
    # Ranks only depend on order, so float32/int inputs are ranked in their own dtype (faster
    # sort; upcasting to float64 is exact and would not change any tie).
    if not np.isfinite(x).all():
        raise ValueError("activations must be finite (no NaN/inf)")
    if y.size:
        if not np.issubdtype(y.dtype, np.integer):
            if np.issubdtype(y.dtype, np.floating) and np.array_equal(y, np.round(y)):
                pass
            else:
                raise ValueError(f"labels must be integers, got dtype {y.dtype}")
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"labels must lie in [0, {n_classes}), got [{y.min()}, {y.max()}]")
    y = y.astype(np.int64, copy=False)

    n, m = x.shape
    out = np.full((n_classes, m), np.nan, dtype=np.float64)
    if n == 0 or m == 0:
        return out

    ranks = _average_ranks_columns(x)  # (n, m)
    one_hot = np.zeros((n, n_classes), dtype=np.float64)
    one_hot[np.arange(n), y] = 1.0
    rank_sums = one_hot.T @ ranks  # (n_classes, m); exact: ranks are multiples of 1/2

    n1 = np.bincount(y, minlength=n_classes).astype(np.float64)  # (n_classes,)
    n2 = n - n1
    valid = (n1 > 0) & (n2 > 0)
    if not valid.any():
        return out
    n1v = n1[valid, None]
    n2v = n2[valid, None]
    expected = n1v * (n + 1) / 2.0
    z = (rank_sums[valid] - expected) / np.sqrt(n1v * n2v * (n + 1) / 12.0)
    if tie_correction:
        factor = _tie_factors(x)[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(factor > 0, z / np.sqrt(factor), 0.0)
    out[valid] = 2.0 * special.ndtr(-np.abs(z))
    return out


def neuron_specialization(
    activations: Any, labels: Any, n_classes: int, threshold: float = 1e-7,
    tie_correction: bool = False,
) -> float:
    """Tab. 3 statistic for one layer: mean over classes of the fraction of class-specific neurons.

    A neuron is specialised for class c when its one-vs-rest rank-sum p-value (see
    :func:`ranksum_pvalues`; ``activations`` (n_samples, n_neurons), ``labels`` (n_samples,))
    is below ``threshold`` (the paper uses 1e-7 to mitigate multiple testing). Classes with no
    samples (NaN rows) are ignored. Returns a fraction in [0, 1] (multiply by 100 for Tab. 3).
    Constant neurons (e.g. dead ReLUs) get z = 0, p = 1 and are never specialised.
    ``tie_correction``: see :func:`ranksum_pvalues` (the records use the uncorrected test).
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    p = ranksum_pvalues(activations, labels, n_classes, tie_correction)
    if p.shape[1] == 0:
        raise ValueError("activations has no neurons")
    valid = ~np.isnan(p).any(axis=1)
    if not valid.any():
        raise ValueError("need samples from at least two classes to compute specialisation")
    return float((p[valid] < threshold).mean(axis=1).mean())

"""Comparing methods over seeds and data sets: is a difference an effect or noise?

Sibling of `companion.statistics` (the paper's own tests). Everything here takes plain
numbers (accuracies in %, one per seed or one per data set) and leans on scipy and
scikit-posthocs:

* :func:`summarize` / :func:`format_cell` -- mean, standard deviation and number of seeds of one
  table cell, shown as ``84.7 ± 0.4 (3)``;
* :func:`paired_change` -- the change of a method over its baseline, paired by seed, with a
  Student t 95% interval (``scipy.stats.ttest_1samp(...).confidence_interval``);
  :func:`paired_by_seed` takes the two as mappings from seed to accuracy;
* :func:`prediction_band` -- how far one more run may land from the mean of n runs (the
  half-width of the t prediction interval): where another lab's single run should fall;
* :func:`median_change` / :func:`mean_change` -- median (percentile) or mean (BCa) over data
  sets with a seeded bootstrap 95% interval (``scipy.stats.bootstrap``);
* :func:`binomial_se` / :func:`accuracy_difference` -- the test-set noise of one accuracy, and
  the Wald interval of the difference of two accuracies measured on independent test sets;
  :func:`test_accuracy_difference` pairs two runs image by image when both records keep which
  test images were right (the same test set), and falls back to the Wald interval otherwise;
* :func:`wilcoxon_over_datasets` -- Wilcoxon signed-rank test over data sets (Demsar 2006);
* :func:`sign_counts` / :func:`sign_test` -- better / worse / equal counts, and the sign test of
  such a split (Demsar 2006: ties split evenly, ``scipy.stats.binomtest``);
* :func:`average_ranks` / :func:`nemenyi` / :func:`cd_diagram` -- Friedman average ranks and the
  Nemenyi critical-difference diagram (Demsar 2006) of many methods over many data sets.

Numbers in sentences: :func:`signed` ('+0.31'), :func:`describe_interval` and :func:`plural`
('seed' after 1, 'seeds' after 5).

With too few numbers a statistic is not invented: intervals and p-values are NaN and
:func:`describe_interval` says why ("n = 1: no interval").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from companion.records import unpack_bits

__all__ = [
    "CellSummary",
    "Interval",
    "accuracy_difference",
    "average_ranks",
    "binomial_se",
    "cd_diagram",
    "describe_interval",
    "format_cell",
    "friedman",
    "mean_change",
    "median_change",
    "nemenyi",
    "paired_change",
    "plural",
    "prediction_band",
    "sign_counts",
    "sign_test",
    "summarize",
    "test_accuracy_difference",
    "wilcoxon_over_datasets",
]

# Changes smaller than this (percentage points) count as "equal": float noise, not a sample.
EQUAL_TOLERANCE = 1e-9


def _finite_vector(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (drop missing seeds or data sets first)")
    return arr


@dataclass(frozen=True)
class CellSummary:
    """Mean and sample standard deviation (ddof = 1; NaN when n = 1) over n seeds."""

    mean: float
    sd: float
    n: int


def summarize(values: Any) -> CellSummary:
    """Mean, sd (ddof = 1) and n of one cell's values over seeds; n = 0 gives NaNs."""
    arr = _finite_vector(values, "values")
    if arr.size == 0:
        return CellSummary(math.nan, math.nan, 0)
    sd = float(np.std(arr, ddof=1)) if arr.size > 1 else math.nan
    return CellSummary(float(np.mean(arr)), sd, int(arr.size))


def format_cell(summary: CellSummary, digits: int = 1) -> str:
    """'84.7 ± 0.4 (3)'; one seed gives '84.7 (1)', no seed an empty string."""
    if summary.n == 0:
        return ""
    if summary.n == 1:
        return f"{summary.mean:.{digits}f} (1)"
    return f"{summary.mean:.{digits}f} ± {summary.sd:.{digits}f} ({summary.n})"


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95% interval over n numbers (low = high = NaN when n is too small)."""

    estimate: float
    low: float
    high: float
    n: int
    method: str

    @property
    def excludes_zero(self) -> bool:
        return bool(self.low > 0 or self.high < 0)  # False with NaN bounds


def paired_change(baseline: Any, treated: Any, confidence: float = 0.95) -> Interval:
    """Mean of treated - baseline over seeds (paired), with a t interval when n >= 2.

    ``baseline[i]`` and ``treated[i]`` come from the same seed. n = 1 has no interval (NaN);
    identical differences give a zero-width interval (the t interval's limit, scipy gives NaN).
    """
    a = _finite_vector(baseline, "baseline")
    b = _finite_vector(treated, "treated")
    if a.shape != b.shape:
        raise ValueError(f"baseline and treated need one value per seed each, got "
                         f"{a.size} and {b.size}")
    diff = b - a
    if diff.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "t")
    mean = float(diff.mean())
    if diff.size == 1:
        return Interval(mean, math.nan, math.nan, 1, "t")
    if np.ptp(diff) == 0:
        return Interval(mean, mean, mean, int(diff.size), "t")
    ci = stats.ttest_1samp(diff, 0.0).confidence_interval(confidence)
    return Interval(mean, float(ci.low), float(ci.high), int(diff.size), "t")


def paired_by_seed(baseline: Mapping[int, float], treated: Mapping[int, float],
                   confidence: float = 0.95) -> Interval:
    """:func:`paired_change` of two runs' accuracies keyed by seed, over the seeds both have."""
    seeds = sorted(baseline.keys() & treated.keys())
    return paired_change([baseline[seed] for seed in seeds], [treated[seed] for seed in seeds],
                         confidence)


def prediction_band(spread: float, runs: int, confidence: float = 0.95) -> float:
    """Half-width of the prediction interval of one more run around the mean of `runs` runs
    with standard deviation `spread` (normal runs): t(runs - 1) * spread * sqrt(1 + 1/runs).
    NaN below two runs (no spread to scale)."""
    if runs < 2 or not math.isfinite(spread):
        return math.nan
    quantile = float(stats.t.ppf(0.5 + confidence / 2, runs - 1))
    return quantile * spread * math.sqrt(1 + 1 / runs)


def _bootstrap(changes: Any, statistic: Any, method: str, confidence: float,
               n_resamples: int, seed: int) -> Interval:
    """`statistic` of the changes with a seeded scipy bootstrap interval (n >= 2); one change
    has no interval (NaN), identical changes a zero-width one (scipy gives NaN there)."""
    x = _finite_vector(changes, "changes")
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "bootstrap")
    estimate = float(statistic(x))
    if x.size == 1:
        return Interval(estimate, math.nan, math.nan, 1, "bootstrap")
    if np.ptp(x) == 0:
        return Interval(estimate, estimate, estimate, int(x.size), "bootstrap")
    result = stats.bootstrap((x,), statistic, confidence_level=confidence,
                             n_resamples=n_resamples, method=method,
                             rng=np.random.default_rng(seed))
    ci = result.confidence_interval
    return Interval(estimate, float(ci.low), float(ci.high), int(x.size), "bootstrap")


def median_change(changes: Any, confidence: float = 0.95, n_resamples: int = 9999,
                  seed: int = 0) -> Interval:
    """Median of per-data-set changes with a percentile bootstrap interval (n >= 2).

    Percentile rather than BCa: BCa's jackknife of a median is degenerate on small samples
    with ties. The resampling is seeded, so the interval is reproducible.
    """
    return _bootstrap(changes, np.median, "percentile", confidence, n_resamples, seed)


def mean_change(changes: Any, confidence: float = 0.95, n_resamples: int = 9999,
                seed: int = 0) -> Interval:
    """Mean of per-data-set changes with a BCa bootstrap interval (n >= 2, seeded).

    The mean's interval bounds the average effect: a mean change outside it is ruled out at
    the given confidence. BCa corrects the skew that a few far-off data sets give the mean.
    """
    return _bootstrap(changes, np.mean, "BCa", confidence, n_resamples, seed)


def binomial_se(accuracy: Any, n: Any) -> Any:
    """Standard error (points) of an accuracy (%) measured on n independent test examples:
    100 * sqrt(p (1 - p) / n). Works elementwise on arrays; a missing (NaN) accuracy or n gives
    NaN, so a table column with gaps goes through whole."""
    p = np.asarray(accuracy, dtype=float) / 100
    count = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):  # NaN compares False: gaps are not errors
        if np.any((p < 0) | (p > 1)):
            raise ValueError(f"accuracy must be a percentage in [0, 100], got {accuracy}")
        if np.any(count < 1):
            raise ValueError(f"n must be a number of test examples >= 1, got {n}")
    se = 100 * np.sqrt(p * (1 - p) / count)
    return float(se) if se.ndim == 0 else se


def accuracy_difference(first: float, n_first: int, second: float, n_second: int,
                        confidence: float = 0.95) -> Interval:
    """first - second (points) of two accuracies (%) on independent test sets of n_first and
    n_second examples, with the Wald interval (normal quantile times the two binomial SEs in
    quadrature). It holds test-set noise only: a second training seed would add its own."""
    se = math.hypot(binomial_se(first, n_first), binomial_se(second, n_second))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    difference = float(first - second)
    return Interval(difference, difference - z * se, difference + z * se,
                    int(min(n_first, n_second)), "wald")


def test_accuracy_difference(first: dict[str, Any], second: dict[str, Any],
                             confidence: float = 0.95) -> Interval:
    """first - second test accuracy (points) of two run records. When both keep which test
    images were right (`test_correct`, `records.pack_bits`) on the same number of images, the
    difference is paired image by image (`paired_change` of the per-image 0/100 scores: a t
    interval, method "paired t"), which holds only the test-set noise that two runs scored on
    the same images have; otherwise the Wald interval of `accuracy_difference` ("wald"), as
    if over two independent test sets. Neither holds seed noise."""
    n = first["n_test"]
    if first.get("test_correct") and second.get("test_correct") and second["n_test"] == n:
        scores = [100.0 * unpack_bits(record["test_correct"], n) for record in (second, first)]
        paired = paired_change(*scores, confidence=confidence)
        return Interval(paired.estimate, paired.low, paired.high, paired.n, "paired t")
    return accuracy_difference(100 * first["test_accuracy"], n, 100 * second["test_accuracy"],
                               second["n_test"], confidence)


def signed(value: float, digits: int = 2) -> str:
    """'+0.31' with `digits` decimals; a nonzero value that would round to 0 keeps one
    significant digit ('-0.0002'), so that a bound just below 0 does not read as '-0.00'."""
    if value != 0 and round(value, digits) == 0 and math.isfinite(value):
        return f"{value:+.1g}"
    return f"{value:+.{digits}f}"


def plural(word: str, count: int) -> str:
    """`word` as it reads after the number `count`: 'seed' for 1, 'seeds' otherwise (0 too)."""
    return word if count == 1 else word + "s"


def describe_interval(interval: Interval, digits: int = 2, unit: str = "") -> str:
    """'+0.31 (95% interval -0.10 to +0.70, n = 12)', or why there is no interval."""
    if interval.n == 0:
        return "no data"
    estimate = f"{interval.estimate:+.{digits}f}{unit}"
    if math.isnan(interval.low):
        return f"{estimate} (n = 1: no interval)"
    return (f"{estimate} (95% interval {signed(interval.low, digits)} to "
            f"{signed(interval.high, digits)}{unit}, n = {interval.n})")


def wilcoxon_over_datasets(changes: Any) -> tuple[float, float]:
    """(statistic, two-sided p) of the Wilcoxon signed-rank test of changes over data sets.

    Zero changes are split evenly between the positive and negative rank sums, as Demsar (2006)
    recommends (scipy's ``zero_method="zsplit"``). Fewer than two changes, or only zeros, give
    NaN: no test.
    """
    x = _finite_vector(changes, "changes")
    if x.size < 2 or not np.any(np.abs(x) > EQUAL_TOLERANCE):
        return math.nan, math.nan
    result = stats.wilcoxon(x, zero_method="zsplit")
    return float(result.statistic), float(result.pvalue)


def sign_counts(changes: Any) -> dict[str, int]:
    """{'better', 'worse', 'equal'}: changes above, below and at zero (within float noise)."""
    x = _finite_vector(changes, "changes")
    return {
        "better": int(np.sum(x > EQUAL_TOLERANCE)),
        "worse": int(np.sum(x < -EQUAL_TOLERANCE)),
        "equal": int(np.sum(np.abs(x) <= EQUAL_TOLERANCE)),
    }


def sign_test(better: int, worse: int, equal: int = 0) -> float:
    """Two-sided p of the sign test of a better / worse / equal split over data sets.

    As Demsar (2006) recommends, ties support the null hypothesis and are split evenly between
    wins and losses (an odd one is dropped); the wins are then tested against a fair coin with
    ``scipy.stats.binomtest``. NaN when nothing is left to test.
    """
    counts = (better, worse, equal)
    if any(int(c) != c or c < 0 for c in counts):
        raise ValueError(f"better, worse and equal must be counts >= 0, got {counts}")
    half_ties = int(equal) // 2
    wins, total = int(better) + half_ties, int(better) + int(worse) + 2 * half_ties
    if total == 0:
        return math.nan
    return float(stats.binomtest(wins, total, 0.5).pvalue)


# --------------------------------------------------------------------------------------------
# Many methods over many data sets: Friedman, Nemenyi, critical-difference diagram
# --------------------------------------------------------------------------------------------


def _complete(scores: pd.DataFrame) -> pd.DataFrame:
    """Rows (data sets) with a score for every column (method); ranks need complete blocks."""
    if not isinstance(scores, pd.DataFrame):
        raise ValueError("scores must be a DataFrame: data sets as rows, methods as columns")
    return scores.dropna(axis=0, how="any")


def average_ranks(scores: pd.DataFrame) -> pd.Series:
    """Mean rank of each method over data sets; rank 1 = highest score, ties averaged."""
    complete = _complete(scores)
    return complete.rank(axis=1, ascending=False, method="average").mean(axis=0)


def friedman(scores: pd.DataFrame) -> tuple[float, float]:
    """(chi-square, p) of scipy's Friedman test over complete data sets; NaN when < 2 rows
    or < 3 methods (scipy's minimum)."""
    complete = _complete(scores)
    if len(complete) < 2 or complete.shape[1] < 3:
        return math.nan, math.nan
    result = stats.friedmanchisquare(*(complete[c].to_numpy() for c in complete.columns))
    return float(result.statistic), float(result.pvalue)


def describe_friedman(scores: pd.DataFrame, alpha: float = 0.05) -> str:
    """One sentence on Friedman's test over `scores` (data sets x methods): the statistic, p,
    the average ranks and what they mean; computed, never typed."""
    chi2, p = friedman(scores)
    complete = _complete(scores)
    if math.isnan(p):
        return (f"Friedman test: needs at least 2 data sets with every one of at least 3 "
                f"methods; here {len(complete)} data sets x {complete.shape[1]} methods.")
    ranks = ", ".join(f"{method} {rank:.2f}" for method, rank
                      in average_ranks(scores).sort_values().items())
    reading = ("the methods' ranks differ beyond chance; the critical-difference diagram "
               "shows which pairs the Nemenyi test separates" if p < alpha else
               "no evidence that the methods' ranks differ")
    return (f"Friedman test over {len(complete)} data sets with all {complete.shape[1]} "
            f"methods: chi2 = {chi2:.1f}, p = {p:.2g}; average rank (1 = best) {ranks}. "
            f"At p {'<' if p < alpha else '>='} {alpha}: {reading}.")


def nemenyi(scores: pd.DataFrame) -> pd.DataFrame:
    """Pairwise Nemenyi p-values after Friedman (scikit-posthocs), methods x methods."""
    import scikit_posthocs as sp

    complete = _complete(scores)
    return sp.posthoc_nemenyi_friedman(complete.to_numpy())\
        .set_axis(complete.columns, axis=0).set_axis(complete.columns, axis=1)


def cd_diagram(scores: pd.DataFrame, title: str = "", alpha: float = 0.05) -> Any:
    """Critical-difference diagram (scikit-posthocs): average ranks on an axis, methods that
    Nemenyi cannot tell apart at `alpha` joined by a bar. Returns the matplotlib Figure, or
    None when fewer than two complete data sets exist."""
    import matplotlib.pyplot as plt
    import scikit_posthocs as sp

    complete = _complete(scores)
    if len(complete) < 2 or complete.shape[1] < 2:
        return None
    ranks = average_ranks(complete)
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(ranks) + 1.2))
    sp.critical_difference_diagram(ranks, nemenyi(complete), ax=axis, alpha=alpha,
                                   label_fmt_left="{label} ({rank:.2f})",
                                   label_fmt_right="({rank:.2f}) {label}")
    axis.set_title(title or f"average rank over {len(complete)} data sets (1 = best); "
                   f"bars: Nemenyi p >= {alpha}")
    figure.tight_layout()
    return figure

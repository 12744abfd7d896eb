"""Tests for companion.statistics: McNemar test and vectorised Wilcoxon rank-sum statistics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from companion.statistics import (
    McNemarResult,
    mcnemar,
    neuron_specialization,
    ranksum_pvalues,
)

# --------------------------------------------------------------------------------------------
# McNemar
# --------------------------------------------------------------------------------------------


def test_mcnemar_hand_computed_case() -> None:
    # Discordant: A-only at 4 positions, B-only at 1 position, 3 concordant pairs.
    a = np.array([1, 1, 1, 1, 0, 1, 0, 1], dtype=bool)
    b = np.array([0, 0, 0, 0, 1, 1, 0, 1], dtype=bool)
    res = mcnemar(a, b)
    assert isinstance(res, McNemarResult)
    assert (res.a_only, res.b_only) == (4, 1)
    # 2 * P(Binom(5, 1/2) <= 1) = 2 * (1 + 5) / 32 = 0.375
    assert res.p_value == pytest.approx(0.375, rel=1e-12)
    # Symmetric in the roles of A and B.
    swapped = mcnemar(b, a)
    assert (swapped.a_only, swapped.b_only) == (1, 4)
    assert swapped.p_value == pytest.approx(res.p_value, rel=1e-12)


def test_mcnemar_no_discordant_pairs_and_balanced() -> None:
    a = np.array([True, False, True])
    assert mcnemar(a, a).p_value == 1.0
    assert mcnemar(a, a).a_only == 0
    # b == c: p capped at 1.
    assert mcnemar([True, False], [False, True]).p_value == 1.0


def test_mcnemar_frozen() -> None:
    res = mcnemar([True], [False])
    with pytest.raises(AttributeError):
        res.p_value = 0.0  # type: ignore[misc]


@pytest.mark.parametrize("seed", range(20))
def test_mcnemar_matches_scipy_binomtest(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    a = rng.random(n) < rng.uniform(0.3, 0.95)
    b = rng.random(n) < rng.uniform(0.3, 0.95)
    res = mcnemar(a, b)
    bb = int(np.sum(a & ~b))
    cc = int(np.sum(~a & b))
    assert (res.a_only, res.b_only) == (bb, cc)
    expected = 1.0 if bb + cc == 0 else stats.binomtest(bb, bb + cc, 0.5).pvalue
    assert res.p_value == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert 0.0 <= res.p_value <= 1.0


def test_mcnemar_accepts_torch_and_01_ints() -> None:
    res_t = mcnemar(torch.tensor([1, 1, 0, 1]), torch.tensor([0, 1, 0, 0]))
    res_n = mcnemar(np.array([1, 1, 0, 1]), np.array([0, 1, 0, 0]))
    assert res_t == res_n
    assert (res_t.a_only, res_t.b_only) == (2, 0)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (np.ones(3, bool), np.ones(4, bool)),  # length mismatch
        (np.ones((2, 2), bool), np.ones((2, 2), bool)),  # not 1-D
        (np.array([0, 2, 1]), np.array([0, 1, 1])),  # not boolean
    ],
)
def test_mcnemar_invalid_inputs(a: np.ndarray, b: np.ndarray) -> None:
    with pytest.raises(ValueError):
        mcnemar(a, b)


# --------------------------------------------------------------------------------------------
# Rank-sum p-values
# --------------------------------------------------------------------------------------------


def _reference_pvalues(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.full((n_classes, x.shape[1]), np.nan)
    for c in range(n_classes):
        mask = y == c
        if mask.all() or not mask.any():
            continue
        for j in range(x.shape[1]):
            out[c, j] = stats.ranksums(x[mask, j], x[~mask, j]).pvalue
    return out


def _assert_matches_reference(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    p = ranksum_pvalues(x, y, n_classes)
    ref = _reference_pvalues(x, y, n_classes)
    assert p.shape == (n_classes, x.shape[1])
    np.testing.assert_array_equal(np.isnan(p), np.isnan(ref))
    np.testing.assert_allclose(p, ref, rtol=1e-9, atol=0, equal_nan=True)
    return p


@pytest.mark.parametrize("seed", range(3))
def test_ranksum_matches_scipy_continuous(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m, k = 150, 12, 4
    y = rng.integers(0, k, size=n)
    x = rng.normal(size=(n, m))
    x[:, :4] += 0.8 * y[:, None]  # some class-dependent neurons, so p spans many decades
    p = _assert_matches_reference(x, y, k)
    assert np.nanmin(p) < 1e-6


def test_ranksum_matches_scipy_with_ties_and_constant_column() -> None:
    rng = np.random.default_rng(42)
    n, m, k = 200, 8, 5
    y = rng.integers(0, k, size=n)
    x = np.round(rng.normal(size=(n, m)) + 0.5 * y[:, None], 0)  # heavy ties
    x[:, 2] = 3.0  # constant column
    x[:, 3] = np.maximum(x[:, 3], 0.0)  # ReLU-like: many exact zeros
    x[:, 4] = rng.integers(0, 2, size=n)  # binary
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = ranksum_pvalues(x, y, k)
    _assert_matches_reference(x, y, k)
    np.testing.assert_array_equal(p[:, 2], 1.0)


def test_tie_corrected_ranksum_matches_scipy_mannwhitneyu() -> None:
    """The tie-corrected variant against scipy's asymptotic Mann-Whitney U (tie-corrected, no
    continuity correction), on ReLU-like columns with many exact zeros."""
    rng = np.random.default_rng(7)
    n, m, k = 150, 6, 3
    y = rng.integers(0, k, size=n)
    x = np.maximum(rng.normal(size=(n, m)) + 0.4 * y[:, None] - 0.3, 0.0)  # ReLU zeros
    x[:, 1] = np.round(x[:, 1])  # more ties
    x[:, 5] = 0.0  # a dead neuron
    p = ranksum_pvalues(x, y, k, tie_correction=True)
    for c in range(k):
        for j in range(m - 1):
            expected = stats.mannwhitneyu(x[y == c, j], x[y != c, j], method="asymptotic",
                                          use_continuity=False).pvalue
            assert p[c, j] == pytest.approx(expected, rel=1e-9)
    np.testing.assert_array_equal(p[:, 5], 1.0)
    # ties shrink the variance, so correcting them can only make p smaller
    assert (p[:, :5] <= ranksum_pvalues(x, y, k)[:, :5] + 1e-15).all()
    # without ties the correction changes nothing
    smooth = rng.normal(size=(n, m))
    np.testing.assert_allclose(ranksum_pvalues(smooth, y, k, tie_correction=True),
                               ranksum_pvalues(smooth, y, k), rtol=1e-12)


def test_ranksum_empty_and_full_classes_are_nan() -> None:
    rng = np.random.default_rng(1)
    n, m = 60, 5
    y = rng.integers(0, 2, size=n)  # classes 2 and 3 are empty
    x = rng.normal(size=(n, m))
    p = _assert_matches_reference(x, y, 4)
    assert np.isnan(p[2:]).all() and not np.isnan(p[:2]).any()
    # Two-class case: both rows carry the same p-value (one-vs-rest is symmetric).
    np.testing.assert_allclose(p[0], p[1], rtol=1e-12)
    # All samples in one class -> every row NaN.
    assert np.isnan(ranksum_pvalues(x, np.zeros(n, dtype=int), 3)).all()


def test_ranksum_extreme_separation_resolves_tiny_pvalues() -> None:
    rng = np.random.default_rng(0)
    per_class, m = 300, 6
    y = np.repeat([0, 1], per_class)
    x = rng.normal(size=(2 * per_class, m)) * 0.01 + 100.0 * y[:, None]
    p = ranksum_pvalues(x, y, 2)
    np.testing.assert_allclose(p, _reference_pvalues(x, y, 2), rtol=1e-9)
    # Perfect separation: z = -300 * 300 / 2 / sqrt(300 * 300 * 601 / 12) ~ -21.2, p ~ 1e-99:
    # resolved (not underflowed to 0, not rounded to 1 - ...), and far below 1e-7.
    z = per_class * per_class / 2 / np.sqrt(per_class * per_class * (2 * per_class + 1) / 12)
    np.testing.assert_allclose(p, 2 * stats.norm.sf(z), rtol=1e-9)
    assert (p > 0).all() and p.max() < 1e-90
    assert neuron_specialization(x, y, 2) == 1.0


def test_neuron_specialization_one_indicator_neuron_per_class() -> None:
    rng = np.random.default_rng(1)
    k, per_class = 3, 200
    y = np.repeat(np.arange(k), per_class)
    x = rng.normal(size=(k * per_class, k)) * 0.01
    x[np.arange(k * per_class), y] += 100.0  # neuron j fires only for class j
    p = ranksum_pvalues(x, y, k)
    np.testing.assert_allclose(p, _reference_pvalues(x, y, k), rtol=1e-9)
    assert (np.diag(p) < 1e-40).all()  # the indicator neuron of each class
    assert (p < 1e-7).all()  # other classes sit in the low group -> also significant
    assert neuron_specialization(x, y, k) == 1.0


def test_ranksum_torch_input_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(80, 7)).astype(np.float32)
    y = rng.integers(0, 3, size=80)
    p_np = ranksum_pvalues(x, y, 3)
    p_t = ranksum_pvalues(torch.from_numpy(x).requires_grad_(), torch.from_numpy(y), 3)
    np.testing.assert_array_equal(p_t, p_np)
    _assert_matches_reference(x.astype(np.float64), y, 3)


def test_ranksum_is_fast_on_layer_sized_input() -> None:
    # Vectorisation check: a loop over neurons would take far longer than this.
    import time

    rng = np.random.default_rng(0)
    n, m, k = 4000, 256, 26
    x = np.maximum(rng.normal(size=(n, m)), 0.0).astype(np.float32)
    y = rng.integers(0, k, size=n)
    t0 = time.perf_counter()
    p = ranksum_pvalues(x, y, k)
    assert time.perf_counter() - t0 < 3.0
    assert p.shape == (k, m) and np.isfinite(p).all()


@pytest.mark.parametrize(
    ("x", "y", "k"),
    [
        (np.zeros(10), np.zeros(10, int), 2),  # activations not 2-D
        (np.zeros((10, 3)), np.zeros((10, 1), int), 2),  # labels not 1-D
        (np.zeros((10, 3)), np.zeros(9, int), 2),  # length mismatch
        (np.zeros((10, 3)), np.full(10, 2), 2),  # label out of range
        (np.zeros((10, 3)), np.full(10, -1), 2),  # negative label
        (np.zeros((10, 3)), np.full(10, 0.5), 2),  # non-integer labels
        (np.zeros((10, 3)), np.zeros(10, int), 0),  # n_classes < 1
        (np.full((10, 3), np.nan), np.zeros(10, int), 2),  # non-finite activations
    ],
)
def test_ranksum_invalid_inputs(x: np.ndarray, y: np.ndarray, k: int) -> None:
    with pytest.raises(ValueError):
        ranksum_pvalues(x, y, k)


# --------------------------------------------------------------------------------------------
# Neuron specialisation
# --------------------------------------------------------------------------------------------


def test_neuron_specialization_counts_fraction_per_class() -> None:
    rng = np.random.default_rng(5)
    k, per_class, m = 4, 100, 10
    y = np.repeat(np.arange(k), per_class)
    x = rng.normal(size=(k * per_class, m))
    # Neuron 0 fires only for class 0, neuron 1 only for class 1; neurons 2-9 are noise
    # except neuron 9 which is dead (constant zero).
    x[:, 0] += 50.0 * (y == 0)
    x[:, 1] += 50.0 * (y == 1)
    x[:, 9] = 0.0
    p = ranksum_pvalues(x, y, k)
    specialised = p < 1e-7
    # Compare with the explicit definition (neuron 0 is also low for classes 1-3, so it may be
    # specialised for them too).
    expected = specialised.mean(axis=1).mean()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = neuron_specialization(x, y, k)
    assert got == pytest.approx(expected)
    assert specialised[0, 0] and specialised[1, 1]
    assert not specialised[:, 9].any()
    assert 0.0 < got < 0.5


def test_neuron_specialization_ignores_empty_classes_and_dead_layer() -> None:
    rng = np.random.default_rng(6)
    y = np.repeat([0, 1], 50)
    x = rng.normal(size=(100, 4))
    x[:, 0] += 100.0 * y
    # Classes 2..4 empty -> ignored: each of the 2 present classes has 1/4 neurons specialised.
    assert neuron_specialization(x, y, 5) == pytest.approx(0.25)
    # Entirely dead layer: nothing specialised, no NaN, no warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert neuron_specialization(np.zeros((100, 4)), y, 2) == 0.0
    # The threshold matters: the separated neuron has p ~ 1e-17 (z ~ 8.6 with 50 vs 50 samples).
    assert neuron_specialization(x, y, 2, threshold=1e-30) == 0.0


def test_neuron_specialization_invalid() -> None:
    x = np.zeros((10, 3))
    with pytest.raises(ValueError):
        neuron_specialization(x, np.zeros(10, int), 2)  # one class only
    with pytest.raises(ValueError):
        neuron_specialization(np.zeros((10, 0)), np.repeat([0, 1], 5), 2)  # no neurons
    with pytest.raises(ValueError):
        neuron_specialization(x, np.repeat([0, 1], 5), 2, threshold=0.0)

"""The significance ceiling of the paper's Table 2 (class_lr.paper_checks), against statsmodels
and scipy on known inputs."""

from __future__ import annotations

import math

import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from companion.class_lr import paper_checks, registry


def test_smallest_p_by_hand():
    # k rows one way, none the other: exact two-sided p = 2 * 0.5**k; chi-square statistic = k
    assert paper_checks.smallest_p(6) == pytest.approx(2 * 0.5 ** 6)
    assert paper_checks.smallest_p(5) == pytest.approx(0.0625)  # five rows: not < 0.05
    assert paper_checks.smallest_p(4, "chi-square") == pytest.approx(stats.chi2.sf(4, 1))
    assert paper_checks.smallest_p(0) == 1.0
    assert paper_checks.smallest_p(-6) == paper_checks.smallest_p(6)


@pytest.mark.parametrize("variant", ["exact", "chi-square"])
def test_no_split_with_the_same_difference_beats_the_one_sided_split(variant):
    """The bound's premise: for c - b = k fixed, b = 0 gives the smallest McNemar p."""
    options = paper_checks.VARIANTS[variant]
    for k in range(1, 12):
        for b in range(0, 30):
            p_value = mcnemar([[0, b], [b + k, 0]], **options).pvalue
            assert p_value >= paper_checks.smallest_p(k, variant) - 1e-12


def test_most_rows_rounds_up_for_the_printed_decimals():
    # 0.95 points on 105 rows is exactly one row; +0.01 of print rounding still one row
    assert paper_checks.most_rows(0.95, 105) == 1
    # 1.39 points on 2,217 rows: (1.39 + 0.01) * 22.17 = 31.04 -> 31 rows
    assert paper_checks.most_rows(-1.39, 2217) == 31
    assert paper_checks.most_rows(0.0, 500) == 0


def _brute_force(test_rows, activation, side):
    """Count the paper's changes whose one-sided split reaches p < 0.05 (exact or chi-square)."""
    count = 0
    for name in registry.datasets():
        base = registry.paper_value(2, name, activation, "baseline")
        treated = registry.paper_value(2, name, activation, "class_lr")
        if base is None or treated is None or treated == base:
            continue
        if (treated > base) != (side == "better"):
            continue
        n_test = test_rows.get(name)
        if n_test is None:
            count += 1
            continue
        k = math.floor((abs(treated - base) + 0.01) * n_test / 100 + 1e-9)
        exact = stats.binomtest(k, k).pvalue if k else 1.0
        chi_square = stats.chi2.sf(k, 1) if k else 1.0
        count += min(exact, chi_square) < 0.05
    return count


def test_ceiling_matches_a_brute_force_count_on_small_test_sets():
    # every test set 100 rows: a change needs 4 rows (chi-square) or 6 (exact) to be possible
    rows = dict.fromkeys(registry.datasets(), 100)
    ceiling = paper_checks.significance_ceiling(rows)
    for activation in registry.ACTIVATIONS:
        row = ceiling.loc[activation]
        for side in ("better", "worse"):
            assert max(row[f"at most {side} (exact)"], row[f"at most {side} (chi-square)"]) == \
                _brute_force(rows, activation, side)
        assert row["unknown test size"] == 0


def test_unknown_test_sizes_count_every_change_as_possible():
    ceiling = paper_checks.significance_ceiling(dict.fromkeys(registry.datasets()))
    counts = registry.paper_counts()
    for activation in registry.ACTIVATIONS:
        assert ceiling.loc[activation, "at most better (exact)"] == counts[activation]["better"]
        assert ceiling.loc[activation, "at most worse (chi-square)"] == counts[activation]["worse"]
        assert ceiling.loc[activation, "changed"] == (counts[activation]["better"]
                                                      + counts[activation]["worse"])


def test_the_papers_selu_counts_exceed_what_its_table_allows(uci_dir):
    rows = paper_checks.paper_test_rows()
    assert rows["connect-4"] is None and rows["image-segmentation"] == 105
    ceiling = paper_checks.significance_ceiling(rows)
    selu = ceiling.loc["selu"]
    assert selu["paper: significantly better"] == 13
    assert max(selu["at most better (exact)"], selu["at most better (chi-square)"]) == \
        _brute_force(rows, "selu", "better") < 13
    text = paper_checks.describe(ceiling)
    assert text.startswith("selu: of the paper's 35 nonzero Table 2 changes")
    assert "cannot come from McNemar's test" in text
    assert "relu" not in text  # the paper states significance counts for SELU only

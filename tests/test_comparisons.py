"""companion.comparisons against scipy / statsmodels on known inputs and small hand cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.libqsturng import psturng

from companion import comparisons as cmp


def test_cell_summary_and_format_by_hand():
    # mean 84.7, deviations -0.4, 0, +0.4: sd = sqrt(0.32 / 2) = 0.4
    summary = cmp.summarize([84.3, 84.7, 85.1])
    assert summary.n == 3
    assert summary.mean == pytest.approx(84.7)
    assert summary.sd == pytest.approx(0.4)
    assert cmp.format_cell(summary) == "84.7 ± 0.4 (3)"
    assert cmp.format_cell(cmp.summarize([84.66])) == "84.7 (1)"
    assert math.isnan(cmp.summarize([84.66]).sd)
    assert cmp.format_cell(cmp.summarize([])) == ""
    with pytest.raises(ValueError, match="finite"):
        cmp.summarize([1.0, float("nan")])


def test_paired_change_t_interval_by_hand_and_scipy():
    baseline = np.array([80.0, 81.0, 82.0])
    treated = baseline + np.array([1.0, 2.0, 3.0])  # differences 1, 2, 3: mean 2, sd 1
    change = cmp.paired_change(baseline, treated)
    half = stats.t.ppf(0.975, df=2) * 1.0 / math.sqrt(3)  # 4.3027 / sqrt(3) = 2.484
    assert change.estimate == pytest.approx(2.0)
    assert (change.low, change.high) == pytest.approx((2.0 - half, 2.0 + half))
    assert half == pytest.approx(2.4841, abs=1e-4)
    ci = stats.ttest_rel(treated, baseline).confidence_interval()
    assert (change.low, change.high) == pytest.approx((ci.low, ci.high))
    assert not change.excludes_zero  # -0.48 to 4.48


def test_paired_change_small_and_degenerate_cases():
    one = cmp.paired_change([80.0], [81.5])
    assert one.estimate == pytest.approx(1.5) and one.n == 1
    assert math.isnan(one.low) and math.isnan(one.high)
    assert cmp.describe_interval(one) == "+1.50 (n = 1: no interval)"
    same = cmp.paired_change([80.0, 70.0], [81.0, 71.0])  # both seeds gain exactly 1
    assert (same.low, same.estimate, same.high) == pytest.approx((1.0, 1.0, 1.0))
    assert same.excludes_zero
    with pytest.raises(ValueError, match="one value per seed"):
        cmp.paired_change([1.0, 2.0], [1.0])


def test_paired_by_seed_pairs_on_the_common_seeds_only():
    baseline = {0: 80.0, 1: 81.0, 2: 82.0, 7: 50.0}  # seed 7 has no treated run
    treated = {2: 85.0, 0: 81.0, 1: 83.0, 9: 99.0}  # keys out of order; seed 9 unpaired
    change = cmp.paired_by_seed(baseline, treated)
    ci = stats.ttest_rel([81.0, 83.0, 85.0], [80.0, 81.0, 82.0]).confidence_interval()
    assert change.n == 3 and change.estimate == pytest.approx(2.0)
    assert (change.low, change.high) == pytest.approx((ci.low, ci.high))
    assert cmp.paired_by_seed({0: 1.0}, {1: 2.0}).n == 0


def test_prediction_band_matches_statsmodels_prediction_interval():
    import statsmodels.api as sm

    runs = np.array([82.1, 80.9, 83.4, 81.7, 82.6])
    fit = sm.OLS(runs, np.ones((len(runs), 1))).fit()  # the mean as a regression on 1
    frame = fit.get_prediction(np.ones((1, 1))).summary_frame(alpha=0.05)
    half_width = float(frame["obs_ci_upper"].iloc[0] - frame["mean"].iloc[0])
    assert cmp.prediction_band(runs.std(ddof=1), len(runs)) == pytest.approx(half_width)
    assert math.isnan(cmp.prediction_band(1.0, 1)) and math.isnan(cmp.prediction_band(math.nan, 5))


def test_median_change_matches_scipy_bootstrap():
    changes = np.array([-0.5, 0.2, 0.4, 0.9, 1.3, 2.0, -0.1, 0.7])
    result = cmp.median_change(changes, seed=3)
    reference = stats.bootstrap((changes,), np.median, method="percentile",
                                rng=np.random.default_rng(3)).confidence_interval
    assert result.estimate == pytest.approx(np.median(changes))
    assert (result.low, result.high) == pytest.approx((reference.low, reference.high))
    assert result.low <= result.estimate <= result.high
    assert "95% interval" in cmp.describe_interval(result)
    positive = cmp.median_change([1.0, 1.2, 0.8, 1.5, 0.9, 1.1])
    assert positive.excludes_zero and positive.low >= 0.8
    single = cmp.median_change([0.3])
    assert math.isnan(single.low) and single.n == 1


def test_mean_change_matches_scipy_bca_bootstrap():
    changes = np.array([-0.5, 0.2, 0.4, 0.9, 1.3, 2.0, -0.1, 0.7, 4.5])  # one far-off data set
    result = cmp.mean_change(changes, seed=5)
    reference = stats.bootstrap((changes,), np.mean, method="BCa",
                                rng=np.random.default_rng(5)).confidence_interval
    assert result.estimate == pytest.approx(changes.mean())
    assert (result.low, result.high) == pytest.approx((reference.low, reference.high))
    assert result.low < result.estimate < result.high
    # same seed, same interval; a resampling that drifts would break the committed scorecard
    assert cmp.mean_change(changes, seed=5) == result
    assert cmp.mean_change([0.5, 0.5, 0.5]) == cmp.Interval(0.5, 0.5, 0.5, 3, "bootstrap")
    single = cmp.mean_change([0.3])
    assert math.isnan(single.high) and single.n == 1 and single.estimate == 0.3
    with pytest.raises(ValueError, match="finite"):
        cmp.mean_change([0.1, math.nan])


def test_binomial_se_by_hand_elementwise_and_bad_input():
    # 90% on 100 examples: sqrt(0.9 * 0.1 / 100) = 0.03 -> 3 points
    assert cmp.binomial_se(90.0, 100) == pytest.approx(3.0)
    both = cmp.binomial_se(np.array([50.0, np.nan, 100.0]), np.array([400, 10, 7]))
    assert both[0] == pytest.approx(2.5) and math.isnan(both[1]) and both[2] == 0.0
    with pytest.raises(ValueError, match="percentage"):
        cmp.binomial_se(0.9 * 1000, 100)
    with pytest.raises(ValueError, match="test examples"):
        cmp.binomial_se(90.0, 0)


def test_accuracy_difference_matches_statsmodels_wald_interval():
    from statsmodels.stats.proportion import confint_proportions_2indep

    # fixed 8,527 of 10,000 right, learned 8,538 of 10,000 (CIFAR-10 sized)
    interval = cmp.accuracy_difference(85.27, 10_000, 85.38, 10_000)
    low, high = confint_proportions_2indep(8527, 10_000, 8538, 10_000, method="wald",
                                           compare="diff")
    assert interval.estimate == pytest.approx(-0.11)
    assert (interval.low, interval.high) == pytest.approx((100 * low, 100 * high))
    assert not interval.excludes_zero
    # unequal test sets, 90% interval
    interval = cmp.accuracy_difference(70.0, 200, 60.0, 50, confidence=0.90)
    low, high = confint_proportions_2indep(140, 200, 30, 50, method="wald", compare="diff",
                                           alpha=0.10)
    assert (interval.low, interval.high) == pytest.approx((100 * low, 100 * high))


def test_test_accuracy_difference_pairs_runs_on_the_same_images():
    from statsmodels.stats.weightstats import DescrStatsW

    from companion import records

    rng = np.random.default_rng(0)
    learned = rng.random(10_000) < 0.85
    fixed = learned.copy()
    flip = rng.choice(10_000, 800, replace=False)  # the two nets disagree on 8% of images
    fixed[flip] = ~fixed[flip]

    def record(correct, packed=True):
        return {"n_test": len(correct), "test_accuracy": correct.mean(),
                "test_correct": records.pack_bits(correct) if packed else None}

    paired = cmp.test_accuracy_difference(record(fixed), record(learned))
    difference = 100.0 * (fixed.astype(float) - learned.astype(float))
    low, high = DescrStatsW(difference).tconfint_mean()  # statsmodels' paired t interval
    assert paired.method == "paired t" and paired.n == 10_000
    assert paired.estimate == pytest.approx(100 * (fixed.mean() - learned.mean()))
    assert (paired.low, paired.high) == (pytest.approx(low), pytest.approx(high))
    # Without per-image flags: the Wald interval over two test sets, much wider here.
    wald = cmp.test_accuracy_difference(record(fixed), record(learned, packed=False))
    assert wald.method == "wald" and wald.estimate == pytest.approx(paired.estimate)
    assert wald.high - wald.low > 1.5 * (paired.high - paired.low)


def test_packed_flags_round_trip_and_refuse_a_wrong_count():
    from companion import records

    flags = np.array([True, False, True, True, False, False, True, False, True, True])
    text = records.pack_bits(flags)
    np.testing.assert_array_equal(records.unpack_bits(text, 10), flags)
    with pytest.raises(ValueError, match="16 bits, not 17"):
        records.unpack_bits(text, 17)
    with pytest.raises(ValueError, match="not 9"):
        records.unpack_bits(text, 9)  # the 10th flag is set: the text holds more


def test_wilcoxon_over_datasets_by_hand_and_scipy():
    # Five positive changes: exact two-sided p = 2 / 2**5 (all signs +)
    statistic, p_value = cmp.wilcoxon_over_datasets([1.0, 2.0, 3.0, 4.0, 5.0])
    assert p_value == pytest.approx(2 / 32)
    changes = [0.0, 0.5, -1.0, 2.0, 0.0, 1.5, -0.2, 3.0]
    reference = stats.wilcoxon(changes, zero_method="zsplit")
    assert cmp.wilcoxon_over_datasets(changes) == pytest.approx(
        (reference.statistic, reference.pvalue))
    assert all(math.isnan(v) for v in cmp.wilcoxon_over_datasets([0.0, 0.0, 0.0]))
    assert all(math.isnan(v) for v in cmp.wilcoxon_over_datasets([1.0]))


def test_plural_is_singular_for_one_only():
    assert [f"{n} {cmp.plural('data set', n)}" for n in (0, 1, 2)] == [
        "0 data sets", "1 data set", "2 data sets"]


def test_sign_counts():
    assert cmp.sign_counts([0.5, -0.2, 0.0, 1e-12, 3.0]) == {
        "better": 2, "worse": 1, "equal": 2}


def _scores() -> pd.DataFrame:
    return pd.DataFrame(
        {"A": [90.0, 80.0, 70.0, 60.0], "B": [85.0, 85.0, 65.0, 55.0],
         "C": [80.0, 75.0, 65.0, 50.0]},
        index=["d1", "d2", "d3", "d4"])


def test_sign_test_splits_ties_as_demsar_and_matches_scipy():
    # 21 better, 14 worse, 10 equal (the paper's SELU split): 5 ties to each side -> 26 of 45
    assert cmp.sign_test(21, 14, 10) == pytest.approx(stats.binomtest(26, 45).pvalue)
    # an odd tie is dropped: 3 better, 0 worse, 3 equal -> 4 of 5
    assert cmp.sign_test(3, 0, 3) == pytest.approx(stats.binomtest(4, 5).pvalue)
    # by hand: 5 of 5 wins, two-sided p = 2 / 2**5
    assert cmp.sign_test(5, 0) == pytest.approx(2 / 32)
    assert cmp.sign_test(4, 4, 2) == pytest.approx(1.0)
    assert math.isnan(cmp.sign_test(0, 0, 1))
    with pytest.raises(ValueError, match="counts"):
        cmp.sign_test(2.5, 1)


def test_average_ranks_by_hand():
    ranks = cmp.average_ranks(_scores())
    # d1: A1 B2 C3; d2: B1 A2 C3; d3: A1 B2.5 C2.5; d4: A1 B2 C3
    assert ranks.to_dict() == pytest.approx({"A": 5 / 4, "B": 7.5 / 4, "C": 11.5 / 4})
    with_gap = _scores().assign(D=[99.0, np.nan, 1.0, 1.0])  # d2 lacks D: dropped
    assert cmp.average_ranks(with_gap)["D"] == pytest.approx((1 + 4 + 4) / 3)


def test_friedman_and_nemenyi_against_scipy_and_statsmodels():
    scores = _scores()
    reference = stats.friedmanchisquare(scores["A"], scores["B"], scores["C"])
    assert cmp.friedman(scores) == pytest.approx((reference.statistic, reference.pvalue))
    p = cmp.nemenyi(scores)
    ranks = cmp.average_ranks(scores)
    k, n = 3, 4
    q = abs(ranks["A"] - ranks["C"]) / math.sqrt(k * (k + 1) / (6 * n)) * math.sqrt(2)
    assert p.loc["A", "C"] == pytest.approx(np.ravel(psturng(q, k, np.inf))[0], abs=1e-3)
    assert p.loc["A", "C"] == pytest.approx(p.loc["C", "A"])
    assert all(math.isnan(v) for v in cmp.friedman(scores.iloc[:1]))


def test_describe_friedman_reports_scipy_numbers_and_reading():
    scores = _scores()
    reference = stats.friedmanchisquare(scores["A"], scores["B"], scores["C"])
    text = cmp.describe_friedman(scores)
    assert f"chi2 = {reference.statistic:.1f}, p = {reference.pvalue:.2g}" in text
    assert "over 4 data sets with all 3 methods" in text
    assert text.index("A 1.25") < text.index("B 1.88") < text.index("C 2.88")  # best first
    expected = "differ beyond chance" if reference.pvalue < 0.05 else "no evidence"
    assert expected in text
    assert "differ beyond chance" in cmp.describe_friedman(scores, alpha=1.0)
    assert "needs at least 2 data sets" in cmp.describe_friedman(scores.iloc[:1])


def test_cd_diagram_draws_or_declines(tmp_path):
    figure = cmp.cd_diagram(_scores())
    assert figure is not None
    figure.savefig(tmp_path / "cd.png")
    assert (tmp_path / "cd.png").stat().st_size > 0
    assert cmp.cd_diagram(_scores().iloc[:1]) is None

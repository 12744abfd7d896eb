"""The scorecard: verdict rules, swappable estimates, and the README block it generates."""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
from synthetic_records import class_lr_record

from companion import estimates, scorecard
from companion.estimates import Estimate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
VERDICTS = {scorecard.REPRODUCED, scorecard.NOT_REPRODUCED, scorecard.INCONCLUSIVE,
            scorecard.NOT_RUN}


def _estimate(low: float, high: float, **details: float) -> Estimate:
    return Estimate((low + high) / 2, low, high, "", "test", "test", details)


@pytest.fixture(scope="module")
def committed() -> object:
    """The scorecard of the committed records (built once: it counts five networks)."""
    return scorecard.scorecard(RESULTS)


def test_positive_rule():
    assert scorecard.positive_verdict(_estimate(0.1, 0.9)) == scorecard.REPRODUCED
    assert scorecard.positive_verdict(_estimate(-0.9, -0.1)) == scorecard.NOT_REPRODUCED
    assert scorecard.positive_verdict(_estimate(-0.1, 0.9)) == scorecard.INCONCLUSIVE


def test_equivalence_rule():
    rule = scorecard.within_verdict(1.0)
    assert rule(_estimate(-0.9, 0.9)) == scorecard.REPRODUCED
    assert rule(_estimate(-1.5, 0.5)) == scorecard.INCONCLUSIVE
    assert rule(_estimate(1.2, 2.0)) == scorecard.NOT_REPRODUCED


def test_log_growth_rule_needs_both_slope_and_straight_line():
    rule = scorecard.log_growth_verdict
    assert rule(_estimate(0.5, 1.0, r_squared=0.95)) == scorecard.REPRODUCED
    assert rule(_estimate(0.5, 1.0, r_squared=0.5)) == scorecard.INCONCLUSIVE
    assert rule(_estimate(-1.0, -0.5, r_squared=0.95)) == scorecard.NOT_REPRODUCED


def test_every_claim_has_a_row_and_a_verdict(committed):
    assert list(committed["key"]) == [claim.key for claim in scorecard.CLAIMS]
    assert set(committed["verdict"]) <= VERDICTS
    ran = committed[committed["verdict"] != scorecard.NOT_RUN]
    assert (ran["ours (95% interval)"] != "").all() and (ran["profile"] != "").all()


def test_cifar_row_is_the_committed_run_with_its_binomial_error():
    runs = {}
    for path in (RESULTS / "fixed-classifier-cifar10-paper").glob("*.json"):
        record = json.loads(path.read_text())
        runs[record["config"]["classifier"]] = record
    learned, fixed = runs["learned"]["test_accuracy"], runs["fixed"]["test_accuracy"]
    found = estimates.fixed_classifier_records(RESULTS)
    estimate = estimates.fixed_minus_learned_accuracy(found)
    se = 100 * math.sqrt(learned * (1 - learned) / 10_000 + fixed * (1 - fixed) / 10_000)
    assert estimate.value == pytest.approx(100 * (fixed - learned))
    z = NormalDist().inv_cdf(0.975)  # 1.96 to three figures
    assert estimate.high - estimate.low == pytest.approx(2 * z * se)
    assert "resnet20" in estimate.profile and "30 epochs" in estimate.profile


def test_class_lr_rows_average_each_data_set_over_its_paired_seeds(committed):
    from companion.class_lr import tables

    found = estimates.class_lr_records(RESULTS)
    chosen = tables.selected(found)
    per_dataset: dict[str, list[float]] = {}
    for (name, activation, method, seed), record in chosen.items():
        partner = chosen.get((name, activation, "baseline", seed))
        if activation == "selu" and method == "class_lr" and partner is not None:
            per_dataset.setdefault(name, []).append(
                100 * (record["test_accuracy"] - partner["test_accuracy"]))
    means = [np.mean(changes) for changes in per_dataset.values()]
    estimate = estimates.class_lr_accuracy_change("selu")(found)
    assert estimate.value == pytest.approx(np.mean(means))
    assert estimate.low < np.mean(means) < estimate.high
    assert f"{len(means)} data sets" in estimate.profile
    seeds = sorted(len(changes) for changes in per_dataset.values())
    assert estimates.seeds_text(seeds) in estimate.profile


def test_class_lr_paper_column_gives_the_papers_split_and_its_sign_test(committed):
    from scipy import stats

    from companion.class_lr.registry import paper_counts

    row = committed.set_index("key").loc["class_lr_selu"]
    counts = paper_counts()["selu"]  # 21/14/10: five ties to each side -> 26 wins of 45
    p_value = stats.binomtest(counts["better"] + counts["equal"] // 2,
                              counts["better"] + counts["worse"]
                              + 2 * (counts["equal"] // 2)).pvalue
    assert (f"better/worse/equal {counts['better']}/{counts['worse']}/{counts['equal']}, "
            f"sign test p = {p_value:.2g}") in row["paper"]


def test_seeds_text_says_how_many_seeds_back_each_data_set():
    assert estimates.seeds_text([1, 1]) == "1 seed"
    assert estimates.seeds_text([5, 5, 5]) == "5 seeds"
    assert estimates.seeds_text([1, 5, 3, 5]) == "1-5 seeds (2 with 5)"


def test_an_estimate_can_be_swapped(tmp_path):
    def fixed_answer(found):
        return _estimate(0.5, 1.5)

    table = scorecard.scorecard(tmp_path, estimators={"class_lr_selu": fixed_answer,
                                                      "parameter_savings": lambda found: None})
    verdicts = dict(zip(table["key"], table["verdict"]))
    assert verdicts["class_lr_selu"] == scorecard.REPRODUCED
    # no records under tmp_path: every other claim is not run here
    assert {v for k, v in verdicts.items() if k != "class_lr_selu"} == {scorecard.NOT_RUN}


def test_a_verdict_that_missing_data_sets_could_turn_says_so():
    claim = scorecard.CLAIMS_BY_KEY["class_lr_selu"]
    fills = {"smallest fill: low": -0.3, "smallest fill: high": -0.01,  # below 0: not reproduced
             "largest fill: low": -0.1, "largest fill: high": 0.2}  # still inconclusive
    estimate = _estimate(-0.2, 0.1, missing=1.0, **fills)
    assert scorecard._could_turn(claim, estimate) == (
        " (could turn the verdict: not reproduced at the smallest change recorded)")
    steady = _estimate(-0.2, 0.1, missing=1.0, **{**fills, "smallest fill: high": 0.05})
    assert scorecard._could_turn(claim, steady) == ""
    assert scorecard._could_turn(claim, _estimate(-0.2, 0.1)) == ""  # nothing missing


def test_class_lr_estimate_names_the_data_sets_without_a_change(tmp_path):
    found = []
    for seed in range(3):  # three data sets with both methods, one with its baseline only
        for dataset, gain in (("car", 1), ("abalone", 0), ("yeast", 2)):
            found += [class_lr_record(dataset, "selu", "baseline", seed, [1, 0, 0, 0, 0]),
                      class_lr_record(dataset, "selu", "class_lr", seed,
                              [1] * (1 + gain) + [0] * (4 - gain))]
        found.append(class_lr_record("titanic", "selu", "baseline", seed, [1, 1, 0, 0, 0]))
    estimate = estimates.class_lr_accuracy_change("selu")(found)
    assert estimate.profile.endswith("; missing: titanic")
    assert estimate.details["missing"] == 1
    changes = [100 * gain / 5 for gain in (1, 0, 2)]  # points, the same at every seed
    low = estimates.comparisons.mean_change([*changes, min(changes)])
    assert (estimate.details["smallest fill: low"], estimate.details["smallest fill: high"]
            ) == pytest.approx((low.low, low.high))


def test_a_verdict_that_data_sets_short_of_seeds_could_turn_says_so():
    found = []
    for dataset, gains in (("car", (1, 1, 1)), ("abalone", (0, 1, 0)), ("yeast", (2, 1, 2)),
                           ("titanic", (-4,))):  # titanic: one seed, a large loss
        for seed, gain in enumerate(gains):
            found += [class_lr_record(dataset, "selu", "baseline", seed, [1] * 4 + [0] * 6),
                      class_lr_record(dataset, "selu", "class_lr", seed,
                                      [1] * (4 + gain) + [0] * (6 - gain))]
    estimate = estimates.class_lr_accuracy_change("selu")(found)
    full = estimates.comparisons.mean_change([10, 10 / 3, 50 / 3])  # the 3-seed data sets
    assert (estimate.details["most seeds: low"], estimate.details["most seeds: high"]
            ) == pytest.approx((full.low, full.high))
    assert (estimate.details["most seeds: n"], estimate.details["most seeds: seeds"]) == (3, 3)
    claim = scorecard.CLAIMS_BY_KEY["class_lr_selu"]
    assert claim.verdict(estimate) == scorecard.INCONCLUSIVE  # titanic's -40 pulls it down
    assert scorecard._could_turn(claim, estimate) == (
        " (could turn the verdict: reproduced over the 3 data sets with 3 seeds only)")
    even = [r for r in found if r["config"]["dataset"] != "titanic"]
    assert "most seeds: low" not in estimates.class_lr_accuracy_change("selu")(even).details


def test_readme_shows_the_scorecard_of_the_committed_records(committed):
    readme = (ROOT / "README.md").read_text()
    block = readme.split(scorecard.README_BEGIN, 1)[1].split(scorecard.README_END, 1)[0]
    assert block.strip() == scorecard.to_markdown(committed).strip(), (
        "README's scorecard is stale: run `python -m companion.scorecard --readme README.md`")


def test_readme_block_replacement_keeps_the_rest():
    text = f"top\n{scorecard.README_BEGIN}\nold\n{scorecard.README_END}\nbottom\n"
    new = scorecard.replace_readme_block(text, "new\n")
    assert new == f"top\n{scorecard.README_BEGIN}\nnew\n{scorecard.README_END}\nbottom\n"
    with pytest.raises(ValueError, match="markers"):
        scorecard.replace_readme_block("no markers", "x")


def test_cli_reads_the_results_directory_the_environment_names(tmp_path, capsys):
    # conftest points $COMPANION_RESULTS_DIR at an empty directory: nothing is recorded there,
    # so every claim but the parameter counts (no records needed) is "not run here"
    scorecard.main(["--output", str(tmp_path / "scorecard.md")])
    text = (tmp_path / "scorecard.md").read_text()
    assert text.count(f"**{scorecard.NOT_RUN}**") == len(scorecard.CLAIMS) - 1
    assert capsys.readouterr().out.count(f"**{scorecard.NOT_RUN}**") == len(scorecard.CLAIMS) - 1

"""The README's generated fixed-classifier results, against the committed records."""

from __future__ import annotations

from pathlib import Path

from companion import comparisons, estimates
from companion.fixed_classifier import results_summary

ROOT = Path(__file__).resolve().parents[1]


def _records() -> list[dict]:
    return estimates.fixed_classifier_records(ROOT / "results")


def test_readme_shows_the_fixed_classifier_results_of_the_committed_records():
    readme = (ROOT / "README.md").read_text()
    block = readme.split(results_summary.README_BEGIN, 1)[1].split(
        results_summary.README_END, 1)[0]
    assert block.strip() == results_summary.markdown(_records()).strip(), (
        "README's fixed-classifier results are stale: run "
        "`python -m companion.scorecard --results results --readme README.md`")


def test_lines_read_the_records_numbers():
    runs = estimates.by_classifier([r for r in _records()
                                    if estimates.budget_of(r) == ("resnet20", 30)])
    assert {"learned", "fixed"} <= set(runs)
    line = results_summary.accuracy_line(runs)
    for kind, record in runs.items():
        value = 100 * record["test_accuracy"]
        se = comparisons.binomial_se(value, record["n_test"])
        assert f"{results_summary.LABELS[kind]} {value:.2f}% (SE {se:.2f})" in line
    gap = comparisons.test_accuracy_difference(runs["fixed"], runs["learned"])
    assert f"fixed orthonormal - learned {gap.estimate:+.2f} points" in (
        results_summary.difference_line(runs))
    error = 100 * runs["learned"]["history"]["train_error"][-1]
    assert f"learned {error:.2f}%" in results_summary.training_error_line(runs)


def test_budgets_put_the_papers_run_first_then_the_most_epochs():
    def record(network: str, epochs: int) -> dict:
        return {"config": {"network": network, "epochs": epochs}}

    found = [record("resnet20", 30), record("resnet56", 164), record("resnet8", 60)]
    assert estimates.budgets_in_order(found) == [("resnet56", 164), ("resnet8", 60),
                                                 ("resnet20", 30)]


def test_block_without_records_says_so():
    assert results_summary.markdown([]).startswith("- No paper-profile CIFAR-10 records")

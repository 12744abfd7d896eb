"""The README's generated class-lr results: coverage of seeds, unfinished class-lr groups, and
the block itself against the committed records."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from synthetic_records import class_lr_record

from companion import budget, comparisons, estimates, scorecard
from companion.class_lr import registry, results_summary, sweep, verdict
from companion.class_lr.registry import ACTIVATIONS
from companion.fixed_classifier import results_summary as fixed_summary
from companion.records import config_dict

ROOT = Path(__file__).resolve().parents[1]
CUTOFFS = (10, 20, 30)


def _complete(dataset: str, seeds: range = range(5)) -> list[dict]:
    """Every column of `dataset` at every seed, class-lr at every cutoff."""
    found = []
    for activation in ACTIVATIONS:
        for seed in seeds:
            found.append(class_lr_record(dataset, activation, "baseline", seed, [1, 0, 1, 0]))
            found += [class_lr_record(dataset, activation, "class_lr", seed, [1, 1, 1, 0],
                                      cutoff=cutoff) for cutoff in CUTOFFS]
    return found


def test_coverage_lists_only_data_sets_short_of_a_seed_and_unfinished_groups():
    found = _complete("car")
    found += [class_lr_record("abalone", "selu", "baseline", seed, [1, 0]) for seed in (0, 1)]
    # abalone SELU class lr, seed 0: two of the three cutoffs, so not yet in the tables
    found += [class_lr_record("abalone", "selu", "class_lr", 0, [1, 1], cutoff=cutoff)
              for cutoff in (10, 20)]
    coverage = results_summary.seed_coverage(verdict.long_accuracies(found))
    assert coverage.loc["car"].tolist() == [(0, 1, 2, 3, 4)] * 6
    assert coverage.loc["abalone", "SELU"] == (0, 1)
    assert coverage.loc["abalone", "SELU+class lr"] == ()  # left out until cutoff 30 is in
    assert list(results_summary.incomplete(coverage).index) == ["abalone"]

    waiting = results_summary.unfinished_groups(found)
    assert waiting[["dataset", "activation", "seed", "cutoff"]].values.tolist() == [
        ["abalone", "selu", 0, 10], ["abalone", "selu", 0, 20]]
    assert waiting["test accuracy"].tolist() == [100.0, 100.0]

    lines = results_summary.coverage_lines(found, coverage)
    assert lines[0].startswith(f"{len(found)} settled-protocol records")
    assert "all 5 seeds of all six columns on 1 of 2 data sets" in lines[0]
    assert "SELU 0-1; SELU+class lr none; ReLU none" in lines[1]
    assert "seed 0, cutoffs 10: 100.00%, 20: 100.00%." in lines[2]  # no alpha_mu recorded

    # one cutoff with its alpha_mu, one without (pandas reads the missing one as NaN), in
    # the same format as the run-by-run lines' retries
    found[-1]["alpha_mu_used"] = 1e4
    lines = results_summary.coverage_lines(found, coverage)
    assert "cutoffs 10: 100.00%, 20: 100.00% (alpha_mu 1e+04)." in lines[2]
    # one cutoff in: in the singular
    lines = results_summary.coverage_lines(found[:-1], coverage)
    assert lines[2].endswith("seed 0, cutoff 10: 100.00%.")


def test_run_by_run_lists_every_seed_and_cutoff_of_a_data_set_short_of_seeds():
    found = [class_lr_record("abalone", "selu", "baseline", seed, [1, 0, 0, 0])
             for seed in (0, 1)]
    # seed 0: cutoff 20 has the best validation accuracy; seed 1: cutoff 30 not in yet
    found += [class_lr_record("abalone", "selu", "class_lr", 0, correct, val=val, cutoff=cutoff)
              for cutoff, correct, val in ((10, [1, 1, 0, 0], 0.5), (20, [1, 1, 1, 0], 0.9),
                                           (30, [0, 0, 0, 0], 0.1))]
    found += [class_lr_record("abalone", "selu", "class_lr", 1, [1, 0, 0, 0], cutoff=cutoff)
              for cutoff in (10, 20)]
    retried = found[4]  # cutoff 30 of seed 0 ran at alpha_mu 1e4 after 1e5 overflowed
    retried.update(alpha_mu_used=1e4,
                   attempts=[{"alpha_mu": 1e5, "reason": "non-finite training loss"}])
    found.append(class_lr_record("abalone", "tanh", "baseline", 0, [1, 1, 0, 0]))
    changes = verdict.paired_changes(verdict.long_accuracies(found))
    [line] = results_summary.run_by_run_lines(found, changes, ["abalone"])
    se = comparisons.binomial_se(275 / 8, 4)  # at the mean of the 8 accuracies listed
    assert line.startswith(f"Abalone, run by run (4 test rows; binomial SE of one accuracy "
                           f"{se:.2f} points): SELU: baseline 25.00% (seed 0), 25.00% (seed 1)")
    assert ("class lr seed 0: 50.00 / 75.00 / 0.00% at cutoffs 10 / 20 / 30, validation picks 20 "
            "(alpha_mu 1e+04 at cutoff 30 after 1e+05: non-finite training loss)") in line
    assert ("class lr seed 1: 25.00 / 25.00% at cutoffs 10 / 20, waiting for its other "
            "cutoffs") in line
    # the change pairs seed 0 only (seed 1 has no selected class-lr run yet), beside the paper's
    paper = registry.paper_change(2, "abalone", "selu")
    assert f"change +50.00 points over 1 paired seed (the paper: {paper:+.2f})" in line
    assert line.endswith("tanh: baseline 50.00% (seed 0).")
    assert results_summary.run_by_run_lines(found, changes, ["car"]) == []  # no record
    found.remove(found[6])  # seed 1's cutoff 20: one cutoff in, in the singular
    [line] = results_summary.run_by_run_lines(found, changes, ["abalone"])
    assert "class lr seed 1: 25.00% at cutoff 10, waiting for its other cutoffs" in line


def test_mean_over_complete_data_sets_leaves_out_those_short_of_seeds():
    found = _complete("car") + _complete("abalone") + _complete("yeast")
    found += _complete("titanic", seeds=range(1))  # one seed only: left out of the line
    long = verdict.long_accuracies(found)
    changes = verdict.paired_changes(long)
    line = results_summary.complete_only_line(changes)
    assert "without Titanic" in line
    # every change is +25 points
    assert line.count("(+25.00 to +25.00, 3 data sets with 5 seeds)") == 3
    assert results_summary.complete_only_line(changes[changes["dataset"] != "titanic"]) is None


def test_distance_line_gives_each_columns_mean_gap_with_its_bootstrap_interval():
    gaps = {column: [1.0 + i, -2.0, 0.5 * i, float("nan")]
            for i, column in enumerate(results_summary.COLUMNS)}
    frame = pd.DataFrame({(column, "diff"): values for column, values in gaps.items()})
    line = results_summary.distance_line(frame)
    for column, values in gaps.items():
        interval = comparisons.mean_change([abs(v) for v in values[:3]])  # NaN: not compared
        assert (f"{column} {interval.estimate:.2f} ({interval.low:.2f} to "
                f"{interval.high:.2f})") in line


def test_signed_keeps_a_bound_just_below_zero_visible():
    assert comparisons.signed(-0.0002) == "-0.0002"
    assert comparisons.signed(0.0) == "+0.00"
    assert comparisons.signed(-0.234) == "-0.23"


def test_readme_block_replacement_with_other_markers_keeps_the_rest():
    begin, end = results_summary.README_BEGIN, results_summary.README_END
    text = f"a\n{scorecard.README_BEGIN}\nx\n{scorecard.README_END}\nb\n{begin}\nold\n{end}\nc\n"
    new = scorecard.replace_readme_block(text, "new\n", begin, end)
    assert new == text.replace("\nold\n", "\nnew\n")


def test_readme_shows_the_class_lr_results_of_the_committed_records(uci_dir):
    readme = (ROOT / "README.md").read_text()
    block = readme.split(results_summary.README_BEGIN, 1)[1].split(
        results_summary.README_END, 1)[0]
    expected = results_summary.markdown(estimates.class_lr_records(ROOT / "results"))
    assert block.strip() == expected.strip(), (
        "README's class-lr results are stale: run "
        "`python -m companion.scorecard --results results --readme README.md`")


def test_readme_class_lr_block_is_kept_where_the_data_files_are_missing(tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.setenv("COMPANION_UCI_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path / "cache"))
    begin, end = results_summary.README_BEGIN, results_summary.README_END
    fixed = (fixed_summary.README_BEGIN, fixed_summary.README_END)
    text = (f"{scorecard.README_BEGIN}\n{scorecard.README_END}\n{fixed[0]}\n{fixed[1]}\n"
            f"{begin}\nkept\n{end}\n")
    table = pd.DataFrame(columns=["claim", "paper item", "paper", "ours (95% interval)",
                                  "profile", "verdict", "rule", "notebook"])  # no rows
    monkeypatch.setattr(scorecard, "class_lr_records",
                        lambda results: [class_lr_record("car", "selu", "baseline", 0, [1])])
    assert "\nkept\n" in scorecard.refresh_readme(text, table, tmp_path)
    assert "no data files here for car" in capsys.readouterr().err


def test_readme_refresh_reuses_the_records_the_scorecard_read(tmp_path, monkeypatch):
    begin, end = results_summary.README_BEGIN, results_summary.README_END
    fixed = (fixed_summary.README_BEGIN, fixed_summary.README_END)
    text = (f"{scorecard.README_BEGIN}\n{scorecard.README_END}\n{fixed[0]}\n{fixed[1]}\n"
            f"{begin}\nold\n{end}\n")
    reads = []

    def counted(source):
        def read(results):
            reads.append(source.__name__)
            return source(results)
        return read

    for name in ("class_lr_records", "fixed_classifier_records"):
        monkeypatch.setattr(scorecard, name, counted(getattr(scorecard, name)))
    monkeypatch.setattr(scorecard, "CLAIMS", [replace(claim, source=getattr(
        scorecard, claim.source.__name__, claim.source)) for claim in scorecard.CLAIMS])
    sources: dict = {}
    table = scorecard.scorecard(tmp_path, sources=sources)  # an empty results folder
    assert sorted(reads) == ["class_lr_records", "fixed_classifier_records"]
    refreshed = scorecard.refresh_readme(text, table, tmp_path, sources)
    assert len(reads) == 2  # read once each, by the scorecard
    assert "No paper-profile class-lr records" in refreshed
    scorecard.refresh_readme(text, table, tmp_path)  # without them: read again
    assert len(reads) == 4


def test_still_to_run_counts_the_configs_without_a_record(uci_dir):
    grid = estimates.paper_profile_configs(sweep.available_datasets())
    left = [c for c in grid if c.dataset == "car" and c.seed == 1 and c.method == "class_lr"]
    found = [{"config": config_dict(c)} for c in grid if c not in left]
    line = results_summary.still_to_run_line(found)
    assert line.startswith(f"Still to run: {len(left)} of {len(grid):,} configs (Car seed 1: 9)")
    hours = budget.class_lr_hours(len(left), len(left) * sweep.training_cost("car", "paper"))
    assert f"about {hours:.0f} CPU-hours" in line
    assert "by the median wall time" not in line  # no record has a wall time
    everything = [{"config": config_dict(c)} for c in grid]
    assert results_summary.still_to_run_line(everything).startswith("Nothing left to run")


def test_still_to_run_prices_configs_by_the_wall_times_recorded_for_them(uci_dir):
    grid = estimates.paper_profile_configs(sweep.available_datasets())
    left = [c for c in grid if c.dataset == "car" and c.seed == 1]  # 3 baselines, 9 class lr
    found = [{"config": config_dict(c)} for c in grid if c not in left]
    timed = [c for c in grid if c.dataset == "car" and c.seed == 0 and c.method == "class_lr"]
    for config, seconds in zip(timed[:3], (3600.0, 7200.0, 36000.0)):
        record = next(r for r in found if r["config"] == config_dict(config))
        record.update(device="cpu", wall_time_s=seconds)  # median 7,200 s
    gpu = next(r for r in found if r["config"] == config_dict(timed[3]))
    gpu.update(device="NVIDIA H200", wall_time_s=10.0)  # not a CPU time: left out
    hours, unpriced = budget.class_lr_recorded_hours(left, found)
    assert hours == pytest.approx(9 * 2.0) and [c.method for c in unpriced] == ["baseline"] * 3
    baselines = budget.class_lr_hours(3, 3 * sweep.training_cost("car", "paper"))
    line = results_summary.still_to_run_line(found)
    assert f"about {18 + baselines:.0f} by the median wall time" in line
    assert "9 of them, the rest by the model" in line


def test_block_without_records_says_so():
    assert results_summary.markdown([]).startswith("- No paper-profile class-lr records")

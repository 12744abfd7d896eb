"""Table 2 over seeds, with context columns, and a verdict that can tell an effect from noise.

From the run records (MLPs: `results/class-lr-uci-<profile>/`, class-lr at its
best-validation cutoff as in `tables.selected`; context models: `class_lr.context`):

* :func:`seed_table` -- Table 2 with ``mean ± sd (n)`` cells, the paper's numbers and the GBT / RF
  context columns;
* :func:`paired_changes` -- per data set and activation, the class-lr change paired by seed;
* :func:`null_calibration` -- the paper's McNemar test applied to two seeds of the *same*
  method (baseline seed 0 vs 1, and 2 vs 3): what noise alone makes "significant";
* :func:`across_datasets` -- per activation: median and mean change with bootstrap intervals
  (the mean's bounds what average effect is ruled out), Wilcoxon signed-rank p over data sets,
  better / worse / equal counts with their sign test and McNemar counts, beside the paper's and
  beside noise alone;
* :func:`verdicts` -- one sentence per activation, written from those numbers;
* :func:`missing_sensitivity` -- whether the data sets still without a class-lr change could
  turn a verdict (filled with the extremes of the recorded changes);
* :func:`change_summary` -- the same over-data-set numbers for any measure (Table 3);
* :func:`rank_scores` -> `comparisons.cd_diagram` -- the critical-difference diagram.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from companion import comparisons
from companion.class_lr import context
from companion.class_lr.registry import (
    ACTIVATIONS,
    METHODS,
    architecture,
    datasets,
    paper_change,
    paper_counts,
    paper_value,
)
from companion.class_lr.tables import (
    ACTIVATION_LABELS,
    _correct,
    _measure,
    column_name,
    selected,
)
from companion.statistics import mcnemar

ALPHA = 0.05
NULL_SEED_PAIRS = ((0, 1), (2, 3))  # disjoint: each noise comparison is independent
CONTEXT_COLUMNS = tuple(context.MODEL_LABELS[m] for m in context.MODELS)


def long_accuracies(records: Iterable[dict[str, Any]],
                    context_records: Iterable[dict[str, Any]] = (), table: int = 2
                    ) -> pd.DataFrame:
    """One row per selected run: dataset, column, activation, method, seed and `value`, the
    measure of Table `table` (2: test accuracy %; 3: % class-specialised neurons, MLPs only).
    Diverged runs are left out."""
    rows = []
    for (dataset, activation, method, seed), record in selected(records).items():
        rows.append({"dataset": dataset, "column": column_name(activation, method),
                     "activation": activation, "method": method, "seed": seed,
                     "value": _measure(record, table)})
    for record in context_records if table == 2 else ():
        config = record["config"]
        rows.append({"dataset": config["dataset"],
                     "column": context.MODEL_LABELS[config["model"]], "activation": None,
                     "method": config["model"], "seed": config["seed"],
                     "value": 100 * record["test_accuracy"]})
    columns = ["dataset", "column", "activation", "method", "seed", "value"]
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs["table"] = table
    return frame


def _paper_order(names: Iterable[str]) -> list[str]:
    present = set(names)
    return [name for name in datasets() if name in present]


def seed_table(long: pd.DataFrame) -> pd.DataFrame:
    """Table 2 (or 3, after `long_accuracies(..., table=3)`) rows, data sets with any run in the
    paper's order: per column `ours` as ``mean ± sd (n seeds)`` and, for the six MLP columns,
    the paper's number. Context columns appear in Table 2 only."""
    table = long.attrs.get("table", 2)
    extra = list(CONTEXT_COLUMNS) if table == 2 else []
    mlp_columns = [column_name(a, m) for a in ACTIVATIONS for m in METHODS]
    rows = []
    for name in _paper_order(long["dataset"]):
        runs = long[long["dataset"] == name]
        row: dict[Any, Any] = {"dataset": architecture(name).paper_name}
        for label in mlp_columns + extra:
            values = runs.loc[runs["column"] == label, "value"]
            row[(label, "ours")] = comparisons.format_cell(comparisons.summarize(values))
            if label in mlp_columns:
                activation, method = _column_parts(label)
                paper = paper_value(table, name, activation, method)
                row[(label, "paper")] = np.nan if paper is None else paper
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.set_index("dataset")
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def seed_spread(long: pd.DataFrame) -> pd.DataFrame:
    """Standard deviation (ddof = 1) of every cell over its seeds, data sets (paper names, the
    tables' index) x columns; NaN where a cell has fewer than two seeds. The error bars of the
    ours-against-paper plots."""
    if long.empty:
        return pd.DataFrame()
    spread = (long.dropna(subset=["value"]).groupby(["dataset", "column"])["value"]
              .agg(lambda values: comparisons.summarize(values).sd).unstack("column"))
    spread = spread.reindex(_paper_order(spread.index))
    spread.index = [architecture(name).paper_name for name in spread.index]
    return spread


def _column_parts(label: str) -> tuple[str, str]:
    for activation in ACTIVATIONS:
        for method in METHODS:
            if column_name(activation, method) == label:
                return activation, method
    raise ValueError(f"{label!r} is not an MLP column of Table 2")


def paired_changes(long: pd.DataFrame) -> pd.DataFrame:
    """Per data set and activation: class-lr minus baseline accuracy over the seeds that have
    both, mean with its 95% t interval (NaN bounds for one seed)."""
    rows = []
    mlp = long[long["activation"].notna()]
    for (name, activation), runs in mlp.groupby(["dataset", "activation"], sort=False):
        by_seed = runs.pivot_table(index="seed", columns="method", values="value")
        if not set(METHODS) <= set(by_seed.columns):
            continue
        both = by_seed.dropna(subset=list(METHODS))
        if both.empty:
            continue
        change = comparisons.paired_change(both["baseline"], both["class_lr"])
        rows.append({"dataset": name, "activation": activation, "seeds": change.n,
                     "change": change.estimate, "low": change.low, "high": change.high,
                     "change (95% interval)": comparisons.describe_interval(change)})
    columns = ["dataset", "activation", "seeds", "change", "low", "high",
               "change (95% interval)"]
    return pd.DataFrame(rows, columns=columns)


def with_most_seeds(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`paired_changes` for one activation whose data sets have as many
    paired seeds as any. A change from fewer seeds carries more seed noise, so the README and
    the scorecard both show the mean change without them: this is their one definition."""
    return rows[rows["seeds"] == rows["seeds"].max()]


def null_calibration(records: Iterable[dict[str, Any]],
                     pairs: Sequence[tuple[int, int]] = NULL_SEED_PAIRS,
                     method: str = "baseline") -> pd.DataFrame:
    """The paper's McNemar test between two seeds of one method, per data set, activation and
    seed pair (disjoint pairs, so the comparisons are independent).

    Both runs are the same method, so every "significant" outcome is noise (seed: validation
    split, initialisation, dropout, batch order). Rows only where both seeds of a pair ran.
    """
    chosen = selected(records)
    rows = []
    for name in datasets():
        for activation in ACTIVATIONS:
            for seeds in pairs:
                first = chosen.get((name, activation, method, seeds[0]))
                second = chosen.get((name, activation, method, seeds[1]))
                if first is None or second is None:
                    continue
                test = mcnemar(_correct(first), _correct(second))
                rows.append({"dataset": name, "activation": activation,
                             "seeds": f"{seeds[0]} vs {seeds[1]}",
                             "change": 100 * (second["test_accuracy"]
                                              - first["test_accuracy"]),
                             "p_value": test.p_value})
    return pd.DataFrame(rows, columns=["dataset", "activation", "seeds", "change", "p_value"])


def _mcnemar_counts(tests: pd.DataFrame) -> dict[str, int]:
    significant = tests["p_value"] < ALPHA
    return {"n": len(tests),
            "significantly better": int((significant & (tests["change"] > 0)).sum()),
            "significantly worse": int((significant & (tests["change"] < 0)).sum())}


def across_datasets(changes: pd.DataFrame, tests: pd.DataFrame, null: pd.DataFrame
                    ) -> pd.DataFrame:
    """Per activation: the effect over data sets and its noise calibration (one row each).

    `changes` from :func:`paired_changes`, `tests` from `tables.mcnemar_tests` (one seed),
    `null` from :func:`null_calibration`.
    """
    paper = paper_counts()
    effect = change_summary(changes)
    rows = []
    for activation in ACTIVATIONS:
        ours_mc = _mcnemar_counts(tests[tests["activation"] == activation]) if len(tests) \
            else {"n": 0, "significantly better": 0, "significantly worse": 0}
        noise = null[null["activation"] == activation]
        noise_counts = comparisons.sign_counts(noise["change"].to_numpy())
        noise_mc = _mcnemar_counts(noise)
        p = paper[activation]
        rows.append({
            "activation": activation, **effect.loc[activation].to_dict(),
            "paper mean change": _paper_mean_change(changes, activation),
            "paper better": p["better"], "paper worse": p["worse"], "paper equal": p["equal"],
            "paper sign test p": comparisons.sign_test(p["better"], p["worse"], p["equal"]),
            "paper data sets": p["data sets"],
            "mcnemar data sets": ours_mc["n"],
            "significantly better": ours_mc["significantly better"],
            "significantly worse": ours_mc["significantly worse"],
            "paper significantly better": p["significantly better"],
            "paper significantly worse": p["significantly worse"],
            "noise comparisons": noise_mc["n"],
            "noise data sets": noise["dataset"].nunique(),
            "noise better": noise_counts["better"], "noise worse": noise_counts["worse"],
            "noise equal": noise_counts["equal"],
            "noise significant": noise_mc["significantly better"]
            + noise_mc["significantly worse"],
        })
    return pd.DataFrame(rows).set_index("activation")


def _paper_mean_change(changes: pd.DataFrame, activation: str) -> float:
    """The paper's Table 2 class-lr - baseline change, averaged over the data sets of ours
    that have it (NaN when none): the like-for-like reference for our mean change."""
    names = changes.loc[changes["activation"] == activation, "dataset"]
    differences = [d for d in (paper_change(2, name, activation) for name in names)
                   if d is not None]
    return float(np.mean(differences)) if differences else float("nan")


def change_summary(changes: pd.DataFrame) -> pd.DataFrame:
    """Per activation, from :func:`paired_changes` of any measure (Table 3's share of
    specialised neurons, say): data sets, seeds per data set, median change with its percentile
    bootstrap interval, mean change with its BCa bootstrap interval (what bounds the average
    effect), Wilcoxon signed-rank p over data sets, the better / worse / equal counts and their
    sign test."""
    rows = []
    for activation in ACTIVATIONS:
        own = changes.loc[changes["activation"] == activation, "change"].to_numpy()
        median = comparisons.median_change(own)
        mean = comparisons.mean_change(own)
        _, p_value = comparisons.wilcoxon_over_datasets(own)
        counts = comparisons.sign_counts(own)
        rows.append({"activation": activation, "data sets": median.n,
                     "seeds per data set": _seed_range(changes, activation),
                     "median change": median.estimate, "low": median.low, "high": median.high,
                     "mean change": mean.estimate, "mean low": mean.low,
                     "mean high": mean.high,
                     "wilcoxon p": p_value, **counts,
                     "sign test p": comparisons.sign_test(**counts)})
    return pd.DataFrame(rows).set_index("activation")


def _seed_range(changes: pd.DataFrame, activation: str) -> str:
    seeds = changes.loc[changes["activation"] == activation, "seeds"]
    if seeds.empty:
        return ""
    low, high = int(seeds.min()), int(seeds.max())
    return str(low) if low == high else f"{low}-{high}"


def _share(count: int, total: int) -> str:
    return f"{count} of {total} ({100 * count / total:.0f}%)" if total else "none"


def verdict(activation: str, row: pd.Series) -> str:
    """One plain-words sentence from a row of :func:`across_datasets`."""
    label = ACTIVATION_LABELS[activation]
    n = int(row["data sets"])
    if n == 0:
        return f"{label}: no data set has both a baseline and a class-lr run yet."
    interval = comparisons.Interval(row["median change"], row["low"], row["high"], n,
                                    "bootstrap")
    p_text = "no test (too few data sets or no change)" if np.isnan(row["wilcoxon p"]) \
        else f"{row['wilcoxon p']:.3g}"
    text = (f"{label}: on {n} {comparisons.plural('data set', n)} "
            f"({row['seeds per data set']} seed{'' if row['seeds per data set'] == '1' else 's'}"
            " each), class-lr changes accuracy by a "
            f"median of {comparisons.describe_interval(interval, unit=' points')}; "
            f"Wilcoxon signed-rank p = {p_text}. "
            f"Better/worse/equal: {row['better']}/{row['worse']}/{row['equal']} "
            f"(paper: {row['paper better']}/{row['paper worse']}/{row['paper equal']} of "
            f"{row['paper data sets']}); sign test with ties split: "
            f"p = {_p_text(row['sign test p'])} for ours, "
            f"{_p_text(row.get('paper sign test p', np.nan))} for the paper's split.")
    ours_sig = int(row["significantly better"]) + int(row["significantly worse"])
    text += (f" McNemar p < {ALPHA} (seed 0): {row['significantly better']} better, "
             f"{row['significantly worse']} worse, "
             f"{_share(ours_sig, int(row['mcnemar data sets']))} significant")
    if not pd.isna(row["paper significantly better"]):
        paper_sig = int(row["paper significantly better"] + row["paper significantly worse"])
        text += (f" (paper: {int(row['paper significantly better'])} vs "
                 f"{int(row['paper significantly worse'])}, "
                 f"{_share(paper_sig, int(row['paper data sets']))})")
    noise_n = int(row["noise comparisons"])
    if noise_n:
        text += (f"; noise alone (two seeds of the baseline, seed 0 vs 1 and 2 vs 3 where "
                 f"recorded: {noise_n} comparisons on {int(row['noise data sets'])} data "
                 f"sets): {_share(int(row['noise significant']), noise_n)} significant, "
                 f"split {row['noise better']}/{row['noise worse']}/{row['noise equal']}.")
    else:
        text += "; noise alone: not measured (needs baseline seeds 0 and 1)."
    return text + " " + _bounds(row) + _conclusion(interval, row["wilcoxon p"])


def _p_text(p_value: float) -> str:
    return "not defined (no data set)" if pd.isna(p_value) else f"{p_value:.2g}"


def _bounds(row: pd.Series) -> str:
    """What the data rule out: the mean change's interval, beside the paper's mean on the same
    data sets. Empty without an interval."""
    low, high = row["mean low"], row["mean high"]
    if pd.isna(low) or pd.isna(high):
        return ""
    low, high = comparisons.signed(low), comparisons.signed(high)
    text = (f"Mean change over data sets: {row['mean change']:+.2f} points (95% interval "
            f"{low} to {high} points, n = {int(row['data sets'])}), so an average "
            f"change below {low} or above {high} points is ruled out at 95%")
    paper = row.get("paper mean change", np.nan)
    if not pd.isna(paper):
        text += f" (the paper's mean on the same data sets: {paper:+.2f})"
    return text + ". "


def _conclusion(interval: comparisons.Interval, p_value: float) -> str:
    if np.isnan(interval.low) or np.isnan(p_value):
        return "Too few numbers for a verdict."
    # The smallest p the test can give with n data sets (all changes of one sign).
    best_possible = stats.wilcoxon(np.arange(1.0, interval.n + 1)).pvalue
    if best_possible >= ALPHA:
        return (f"Too few data sets for a verdict: with {interval.n} the Wilcoxon test cannot "
                f"reach p < {ALPHA}.")
    if interval.excludes_zero and p_value < ALPHA:
        direction = "gain" if interval.estimate > 0 else "loss"
        return f"Verdict: a {direction} distinguishable from noise."
    if not interval.excludes_zero and p_value >= ALPHA:
        return "Verdict: no effect distinguishable from noise."
    return "Verdict: mixed evidence (interval and Wilcoxon test disagree)."


# How :func:`missing_sensitivity` fills the data sets still without a change: each with the
# smallest, then the largest, change recorded for its activation.
MISSING_FILLS = {"smallest": np.min, "largest": np.max}


def missing_sensitivity(changes: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Could the data sets still missing a class-lr change turn the verdict? Per activation
    (`changes` from :func:`paired_changes`, `names` the data sets the table covers): the
    missing data sets, and the mean change (BCa interval) and verdict after filling each of
    them with the smallest, then the largest, change recorded for that activation: the
    extremes within what the recorded data sets span."""
    rows = []
    for activation in ACTIVATIONS:
        own = changes[changes["activation"] == activation]
        recorded = set(own["dataset"])
        missing = [name for name in names if name not in recorded]
        values = own["change"].to_numpy()
        row: dict[str, Any] = {"activation": activation, "missing": len(missing),
                               "missing data sets": ", ".join(missing)}
        for end, fill in MISSING_FILLS.items():
            filled = np.append(values, [fill(values)] * len(missing)) if len(values) else values
            mean = comparisons.mean_change(filled)
            median = comparisons.median_change(filled)
            _, p_value = comparisons.wilcoxon_over_datasets(filled)
            row.update({f"{end} fill": fill(values) if len(values) else np.nan,
                        f"{end}: mean change": mean.estimate, f"{end}: mean low": mean.low,
                        f"{end}: mean high": mean.high,
                        f"{end}: verdict": _conclusion(median, p_value).removeprefix(
                            "Verdict: ").rstrip(".")})
        rows.append(row)
    return pd.DataFrame(rows).set_index("activation")


def describe_missing_sensitivity(frame: pd.DataFrame) -> str:
    """One sentence per activation from :func:`missing_sensitivity`."""
    sentences = []
    for activation, row in frame.iterrows():
        label = ACTIVATION_LABELS[activation]
        if row["missing"] == 0:
            sentences.append(f"{label}: every data set of the table has its class-lr change.")
            continue
        if pd.isna(row["smallest fill"]):
            sentences.append(f"{label}: no data set has a class-lr change yet.")
            continue
        ends = [f"with the {end} ({row[f'{end} fill']:+.2f}) the mean change would be "
                f"{row[f'{end}: mean change']:+.2f} points (95% interval "
                f"{row[f'{end}: mean low']:+.2f} to {row[f'{end}: mean high']:+.2f}"
                f"{_side_of_zero(row[f'{end}: mean low'], row[f'{end}: mean high'])}), "
                f"verdict: {row[f'{end}: verdict'].lower()}" for end in MISSING_FILLS]
        count = int(row["missing"])
        sentences.append(
            f"{label}: {count} {comparisons.plural('data set', count)} without a class-lr change "
            f"yet ({row['missing data sets']}); filled with the smallest or the largest change "
            f"recorded for {label}: {ends[0]}; {ends[1]}.")
    return "\n".join(sentences)


def _side_of_zero(low: float, high: float) -> str:
    """', above 0' or ', below 0' when an interval excludes 0 (the scorecard's rule reads the
    mean's interval so), else ''."""
    return ", above 0" if low > 0 else ", below 0" if high < 0 else ""


def verdicts(summary: pd.DataFrame) -> dict[str, str]:
    """{activation: verdict sentence} for every row of :func:`across_datasets`."""
    return {activation: verdict(activation, row) for activation, row in summary.iterrows()}


def rank_scores(long: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean accuracy over seeds, data sets (paper names) x methods, for average ranks and
    the critical-difference diagram; data sets missing a method are dropped there."""
    if long.empty:
        return pd.DataFrame()
    scores = long.pivot_table(index="dataset", columns="column", values="value",
                              aggfunc="mean")
    order = [c for c in (columns or [column_name(a, m) for a in ACTIVATIONS for m in METHODS]
                         + list(CONTEXT_COLUMNS)) if c in scores.columns]
    scores = scores.reindex(_paper_order(scores.index))[order]
    scores.index = [architecture(name).paper_name for name in scores.index]
    return scores

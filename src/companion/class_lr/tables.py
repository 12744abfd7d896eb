"""Tables 2 and 3 of the class-lr paper: our numbers from run records beside the paper's.

Both tables have one row per data set of the paper (45) and, for each activation and method,
three columns: `ours`, `paper` and `diff` (ours - paper, percentage points). A cell without a
record says why in the row's `status` (no data file in our copy, left out by the profile).

The "+class lr" columns use, per data set, activation and seed, the cutoff (10, 20 or 30 epochs
at the paper profile) whose run has the best final validation accuracy, ties going to the
earlier cutoff: the paper's "cross-validation" of the cutoff.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from companion import comparisons, provenance, verify
from companion.class_lr.registry import (
    ACTIVATIONS,
    METHODS,
    architecture,
    canonical_name,
    datasets,
    paper_counts,
    paper_value,
)
from companion.data import uci
from companion.statistics import mcnemar

COLUMN_LABELS = {"baseline": "", "class_lr": "+class lr"}
ACTIVATION_LABELS = {"selu": "SELU", "relu": "ReLU", "tanh": "tanh"}


def column_name(activation: str, method: str) -> str:
    """'SELU', 'SELU+class lr', ... as in the paper."""
    return ACTIVATION_LABELS[activation] + COLUMN_LABELS[method]


def _measure(record: dict[str, Any], table: int) -> float | None:
    """Table 2: test accuracy %; Table 3: % class-specialised hidden neurons."""
    if record.get("diverged"):
        return None
    if table == 2:
        return 100 * record["test_accuracy"]
    return 100 * record["neuron_specialization"]["overall"]


def selected(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str, int], dict]:
    """{(data set, activation, method, seed): record}, class-lr at its best-validation cutoff.

    Diverged runs are never selected. A class-lr run counts only once it has a record for
    every cutoff that the class-lr records of its profile have: a sweep split into one job
    per cutoff (`sweep --cutoffs`) leaves a run out until its last cutoff is in, since its
    best cutoff is not known before.
    """
    records = list(records)
    chosen: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for record in records:
        config = record["config"]
        if record.get("diverged"):
            continue
        key = (config["dataset"], config["activation"], config["method"], config["seed"])
        best = chosen.get(key)
        rank = (record["val_accuracy"], -config.get("cutoff", 0))
        if best is None or rank > (best["val_accuracy"], -best["config"].get("cutoff", 0)):
            chosen[key] = record
    waiting = waiting_for_cutoffs(records)
    return {key: record for key, record in chosen.items() if key not in waiting}


def waiting_for_cutoffs(records: Iterable[dict[str, Any]]
                        ) -> dict[tuple[str, str, str, int], list[int]]:
    """{(data set, activation, "class_lr", seed): cutoffs recorded} of the class-lr runs that
    lack a cutoff which other class-lr records of their profile have (diverged records count:
    they are recorded). `selected` leaves these runs out until the rest is in."""
    cutoffs: dict[tuple[str, str, str, int], set[int]] = {}
    profile_of: dict[tuple[str, str, str, int], str | None] = {}
    profile_cutoffs: dict[str | None, set[int]] = {}
    for record in records:
        config = record["config"]
        if config["method"] != "class_lr":
            continue
        key = (config["dataset"], config["activation"], config["method"], config["seed"])
        cutoffs.setdefault(key, set()).add(config["cutoff"])
        profile_of[key] = config.get("profile")
        profile_cutoffs.setdefault(config.get("profile"), set()).add(config["cutoff"])
    return {key: sorted(found) for key, found in cutoffs.items()
            if not found >= profile_cutoffs[profile_of[key]]}


def ours(records: Iterable[dict[str, Any]], table: int) -> dict[tuple[str, str, str], float]:
    """{(data set, activation, method): mean over seeds} of a table's measure."""
    values: dict[tuple[str, str, str], list[float]] = {}
    for (dataset, activation, method, _), record in selected(records).items():
        values.setdefault((dataset, activation, method), []).append(_measure(record, table))
    return {key: float(np.mean(v)) for key, v in values.items()}


def mcnemar_tests(records: Iterable[dict[str, Any]], seed: int = 0) -> pd.DataFrame:
    """Baseline vs class-lr per data set and activation: accuracy change and McNemar's p.

    One row per (data set, activation) that has both runs for `seed`, with the paper's
    change beside ours (percentage points).
    """
    chosen = selected(records)
    rows = []
    for name in datasets():
        for activation in ACTIVATIONS:
            base = chosen.get((name, activation, "baseline", seed))
            with_class_lr = chosen.get((name, activation, "class_lr", seed))
            if base is None or with_class_lr is None:
                continue
            test = mcnemar(_correct(base), _correct(with_class_lr))
            paper_base = paper_value(2, name, activation, "baseline")
            paper_class_lr = paper_value(2, name, activation, "class_lr")
            rows.append({
                "dataset": architecture(name).paper_name,
                "activation": activation,
                "cutoff": with_class_lr["config"]["cutoff"],
                "baseline": 100 * base["test_accuracy"],
                "class_lr": 100 * with_class_lr["test_accuracy"],
                "change": 100 * (with_class_lr["test_accuracy"] - base["test_accuracy"]),
                "paper_change": paper_class_lr - paper_base,
                "baseline_only_right": test.a_only,
                "class_lr_only_right": test.b_only,
                "p_value": test.p_value,
            })
    return pd.DataFrame(rows)


def _correct(record: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(record["test_correct"].encode(), dtype=np.uint8) == ord("1")


def outcome_counts(tests: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per activation: data sets where class-lr is better / worse / equal, and significantly so.

    "Equal" means the same test accuracy; "significant" means McNemar p < `alpha`.
    """
    rows = []
    for activation, group in tests.groupby("activation", sort=False):
        significant = group["p_value"] < alpha
        rows.append({
            "activation": activation,
            "data sets": len(group),
            "better": int((group["change"] > 0).sum()),
            "worse": int((group["change"] < 0).sum()),
            "equal": int((group["change"] == 0).sum()),
            "significantly better": int((significant & (group["change"] > 0)).sum()),
            "significantly worse": int((significant & (group["change"] < 0)).sum()),
        })
    return pd.DataFrame(rows).set_index("activation")


def paper_outcome_counts() -> pd.DataFrame:
    """Better / worse / equal counts recomputed from the paper's own Table 2 numbers."""
    rows = []
    for name in datasets():
        for activation in ACTIVATIONS:
            base = paper_value(2, name, activation, "baseline")
            class_lr = paper_value(2, name, activation, "class_lr")
            rows.append({"activation": activation, "change": class_lr - base, "p_value": np.nan})
    return outcome_counts(pd.DataFrame(rows)).drop(
        columns=["significantly better", "significantly worse"])


# The paper's own summary (section 4): better / worse / equal, and p < 0.05 counts for SELU.
PAPER_COUNTS = pd.DataFrame.from_dict(paper_counts(), orient="index").astype("Int64").rename_axis(
    "activation")


def notes(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], str]:
    """{(data set, activation, method): why the cell needs a second look}, for the selected
    runs that did not converge under their protocol's rule or stand in from the pre-study
    protocol (see `sweep.recorded`)."""
    found: dict[tuple[str, str, str], set[str]] = {}
    for (name, activation, method, _), record in selected(records).items():
        marks = found.setdefault((name, activation, method), set())
        if record.get("non_convergence"):
            marks.add("did not converge")
        if record.get("protocol") == "pre-study":
            marks.add("pre-study protocol")
    return {key: ", ".join(sorted(marks)) for key, marks in found.items() if marks}


def code_summary(records: Iterable[dict[str, Any]]) -> str:
    """One line under a table: how many of its records the checkout's run code computed.

    Records of earlier run code (`provenance.code_status`) are shown all the same (their
    configs match the table's); said once here rather than on every row, where it would mark
    nearly all of them, with what the per-version reruns of `companion.verify` found: whether
    each earlier version computes what this code computes.
    """
    records = list(records)
    other = [r for r in records
             if provenance.code_status(r, r.get("experiment", "")) != "this code"]
    if not other:
        return f"Run code: all {len(records)} records were computed by this checkout's run code."
    names = sorted({r["config"]["dataset"] for r in other})
    where = ", ".join(names) if len(names) <= 5 else f"{len(names)} data sets"
    return (f"Run code: {len(other)} of {len(records)} records ({where}) were computed by other "
            "run code than this checkout's (provenance.code_status); their configs are the "
            f"table's, so they are shown. {verify.summary(other)}")


def device_summary(records: Iterable[dict[str, Any]]) -> str:
    """One line under a table: where its records were trained (the record's `device`).

    A run's device is not part of its config (`experiment.run`), so a GPU record fills the same
    cell as a CPU one would; this line says how many did. Records from before devices were
    recorded trained on a CPU.
    """
    records = list(records)
    devices = Counter(r.get("device") or "cpu" for r in records)
    elsewhere = {name: n for name, n in devices.items() if name != "cpu"}
    if not elsewhere:
        return f"Devices: all {len(records)} records were trained on CPUs."
    listed = ", ".join(f"{n} on {name}" for name, n in sorted(elsewhere.items()))
    return (f"Devices: {devices['cpu']} of {len(records)} records were trained on CPUs, {listed} "
            "(same configs; a GPU draws its own dropout masks, see README 'On a GPU').")


def build(
    records: Iterable[dict[str, Any]], table: int, covered: Iterable[str] | None = None,
    shown: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Table `table` (2 or 3) with ours/paper/diff per column and a status per row.

    `covered` are the data sets the profile ran; others are marked as left out. `shown`
    limits the rows to those data sets (either naming; None: all 45, in the paper's order).
    `notes` lists the cells to read with care (runs that did not converge, pre-study
    stand-ins). Table 2 adds per row the test-set size and the binomial standard error (points)
    of one accuracy measured on it at the paper's SELU value: the gap noise alone can make.
    """
    records = list(records)
    measured = ours(records, table)
    test_rows = {architecture(r["config"]["dataset"]).paper_name: r["n_test"]
                 for r in records if r.get("n_test")}
    cell_notes = notes(records)
    covered = set(datasets() if covered is None else covered)
    wanted = None if shown is None else {canonical_name(n) for n in shown}
    rows = []
    for name in datasets():
        if wanted is not None and name not in wanted:
            continue
        row: dict[str, Any] = {"dataset": architecture(name).paper_name}
        if not uci.is_available(name):
            row["status"] = "no data file in our copy"
        elif name not in covered:
            row["status"] = "no runs at this profile"
        else:
            row["status"] = ""
        for activation in ACTIVATIONS:
            for method in METHODS:
                label = column_name(activation, method)
                value = measured.get((name, activation, method), np.nan)
                paper = paper_value(table, name, activation, method)
                paper = np.nan if paper is None else paper
                row[(label, "ours")] = value
                row[(label, "paper")] = paper
                row[(label, "diff")] = value - paper  # NaN when either is missing
        row["notes"] = "; ".join(f"{column_name(a, m)}: {cell_notes[(name, a, m)]}"
                                 for a in ACTIVATIONS for m in METHODS
                                 if (name, a, m) in cell_notes)
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("dataset")
    status, row_notes = frame.pop("status"), frame.pop("notes")
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    frame.insert(0, ("", "status"), status)
    if table == 2:
        rows_tested = pd.Series(frame.index.map(test_rows), index=frame.index, dtype=float)
        paper_selu = frame[(column_name("selu", "baseline"), "paper")]
        frame.insert(1, ("", "test rows"), rows_tested.astype("Int64"))  # counts, not 2,088.00
        frame.insert(2, ("", "binomial SE"), comparisons.binomial_se(paper_selu.to_numpy(float),
                                                         rows_tested.to_numpy(float)))
    frame[("", "notes")] = row_notes
    return frame


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per column: data sets compared and mean absolute difference to the paper, with its 95%
    bootstrap interval over data sets (`comparisons.mean_change`)."""
    rows = []
    for label in dict.fromkeys(c[0] for c in frame.columns if c[0] and (c[0], "diff") in frame):
        diff = frame[(label, "diff")]
        interval = comparisons.mean_change(diff.dropna().abs().to_numpy(float))
        rows.append(
            {
                "column": label,
                "data sets compared": int(diff.notna().sum()),
                "mean |ours - paper|": diff.abs().mean(),
                "95% interval: low": interval.low,
                "95% interval: high": interval.high,
                "mean ours - paper": diff.mean(),
            }
        )
    return pd.DataFrame(rows).set_index("column")


def seed_scores(long: pd.DataFrame, method: str = "baseline") -> pd.DataFrame:
    """Accuracy of `method`, data sets x seeds, each data set's value the mean over its
    activations that ran every seed.

    Why the mean: a seed draws one validation split per data set, shared by the three
    activations, so the activations of one data set are not independent blocks of a test.
    `long` as from `verdict.long_accuracies`; data sets missing a seed are dropped.
    """
    runs = long[long["method"] == method]
    if runs.empty:
        return pd.DataFrame()
    per_activation = runs.pivot_table(index=["dataset", "activation"], columns="seed",
                                      values="value", aggfunc="mean").dropna(axis=0, how="any")
    return per_activation.groupby(level="dataset").mean()


def seed_exchangeability(long: pd.DataFrame, method: str = "baseline") -> dict[str, Any]:
    """Are the seeds interchangeable, as the noise calibration assumes? Friedman's test
    (scipy, via `comparisons.friedman`) over data sets (blocks) of the accuracy per seed
    (treatments), with each seed's average rank (1 = best).

    A small p would mean that some seed draws systematically better splits or nets, and a
    comparison of two fixed seeds (the null calibration) would then lean one way.
    """
    scores = seed_scores(long, method)
    chi2, p_value = comparisons.friedman(scores)  # NaN under 2 data sets or 3 seeds
    return {"method": method, "data sets": len(scores), "seeds": [int(s) for s in scores.columns],
            "chi2": chi2, "p_value": p_value, "mean rank": comparisons.average_ranks(scores)}


def describe_seed_exchangeability(result: dict[str, Any], alpha: float = 0.05) -> str:
    """One sentence on :func:`seed_exchangeability`'s result, computed from it."""
    if not result["data sets"] or np.isnan(result["p_value"]):
        return ("Seed exchangeability: too few data sets with every seed of "
                f"the {result['method']} runs to test.")
    ranks = ", ".join(f"seed {seed} {rank:.2f}" for seed, rank in result["mean rank"].items())
    exchangeable = result["p_value"] >= alpha
    reading = ("no evidence that any seed is systematically better, so a lean in the noise "
               "split (two fixed seeds compared) is within chance" if exchangeable
               else "some seeds are systematically better, so a comparison of two fixed seeds "
               "leans one way and the noise calibration is biased")
    return (f"Seed exchangeability ({result['method']}, {result['data sets']} data sets with "
            f"seeds {result['seeds'][0]}-{result['seeds'][-1]}, each the mean over its "
            f"activations): Friedman chi2 = {result['chi2']:.2f}, p = {result['p_value']:.3f}; "
            f"average rank (1 = best) {ranks}. At p {'>=' if exchangeable else '<'} "
            f"{alpha}: {reading}.")

"""The evidence of the protocol study (`protocol`), as tables: what the findings notebook shows.

Every function reads the committed paper-profile records under `<repo>/results/` (runs
nothing; the study's records are part of the repository, so this works in any checkout and
under any `COMPANION_RESULTS_DIR`) and returns a DataFrame; accuracies are in %, gaps in
percentage points. "Paper" is the published Table 2 value.

Kept whole (over 300 lines): one function per section of the findings notebook, in its order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import cached_property, wraps
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from companion import comparisons, records
from companion.class_lr import (
    batch_size,
    convergence,
    experiment,
    minibatch_reading,
    protocol,
    registry,
    sweep,
    tables,
)
from companion.class_lr.registry import ACTIVATIONS, paper_value
from companion.comparisons import binomial_se, prediction_band
from companion.data.sources import REPO_ROOT

EXPERIMENT = "class-lr-uci-paper"
# An sd from two runs has one degree of freedom (its 95% interval spans 0.45x to 32x the true
# one): seed noise is a diagnosis only from three seeds on.
MIN_SEEDS_FOR_NOISE = 3
# How a class-lr outlier whose gap is its baseline's (`_inherited`) is diagnosed.
INHERITED = "its baseline's gap"
T = TypeVar("T")
RULES = {"nonfinite": "non-finite loss only", "blowup": "non-finite, or collapse with grown mu",
         "collapse": "non-finite, or any collapse to one class",
         "mu_bound_1e3": "non-finite, or mu above 1,000"}


def _fails(record: dict[str, Any], rule: str) -> bool:
    """The candidate rules of the study (the library keeps "nonfinite" and "blowup")."""
    if rule in convergence.RULES:
        return convergence.non_convergence(record, rule) is not None
    if record["diverged"]:
        return True
    if rule == "collapse":
        return convergence.collapsed(record)
    largest = convergence.largest_multiplier(record)
    return largest is not None and largest > 1e3


@contextmanager
def committed_records() -> Iterator[None]:
    """Within the block, record look-ups read the repository's committed `results/` and
    configs are made at the paper profile whatever `COMPANION_PROFILE` forces (the tests set
    it to smoke: the study's records are paper-profile records)."""
    saved = {name: os.environ.pop(name, None)
             for name in ("COMPANION_RESULTS_DIR", "COMPANION_PROFILE")}
    os.environ["COMPANION_RESULTS_DIR"] = str(REPO_ROOT / "results")
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


def _paper(function: Callable[..., T]) -> Callable[..., T]:
    """Run `function` inside `committed_records()`."""
    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with committed_records():
            return function(*args, **kwargs)
    return wrapper


def _read(config: experiment.UCIRunConfig) -> dict[str, Any] | None:
    with committed_records():
        found = records.recorded(EXPERIMENT, [config])
    return found[0] if found else None


@_paper
def table2(datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """Table 2 from the committed records under the settled protocol, each cell the mean over
    the recorded seeds 0-4 (pre-study stand-ins marked in `notes`)."""
    names = list(datasets or sweep.available_datasets())
    grid = sweep.configs(names, methods=list(registry.METHODS), seeds=sweep.TABLE2_SEEDS,
                         profile="paper")
    with committed_records():
        found = sweep.recorded(grid)
    return tables.build(found, table=2, covered=names)


def _accuracy(record: dict[str, Any] | None) -> float:
    return math.nan if record is None or record["diverged"] else 100 * record["test_accuracy"]


def _baseline(dataset: str, activation: str, **overrides: Any) -> dict[str, Any] | None:
    """Seed-0 baseline as the study's runs were made (LeCun init, the ladder's layers)."""
    config = experiment.make_config(dataset, activation, profile="paper",
                                    **{"init": None, **overrides})
    return _read(config)


@_paper
def ladder_runs(datasets: Sequence[str] = protocol.EQ6_DATASETS) -> pd.DataFrame:
    """One row per Eq. 6 study run: reading, alpha_mu, cutoff, outcome and its evidence."""
    rows = []
    for config in protocol.eq6_grid(datasets):
        record = _read(config)
        if record is None:
            continue
        trace = record.get("multiplier_trace") or []
        first = record.get("first_nonfinite")
        rows.append({
            "dataset": config.dataset, "activation": config.activation,
            "reading": config.statistic, "alpha_mu": config.alpha_mu, "cutoff": config.cutoff,
            "accuracy": _accuracy(record), "val_accuracy": record["val_accuracy"],
            "diverged": record["diverged"], "collapsed": convergence.collapsed(record),
            "largest_mu": convergence.largest_multiplier(record),
            "nonfinite_epoch": first["epoch"] if first else None,
            "mu_after_first_half_epoch": max((m for m in trace[0]["max_per_layer"]
                                              if m is not None), default=math.inf)
            if trace else None,
            "record": record,
        })
    return pd.DataFrame(rows)


def _protocol_choice(runs: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Per (data set, activation, reading): the retry protocol under `rule` read off the
    ladder (first rung that converges, per cutoff), then the cutoff of best validation."""
    rows = []
    for (dataset, activation, reading), group in runs.groupby(
            ["dataset", "activation", "reading"], sort=False):
        per_cutoff = []
        for _, at_cutoff in group.groupby("cutoff"):
            ladder = at_cutoff.sort_values("alpha_mu", ascending=False)
            passing = [r for r in ladder.itertuples() if not _fails(r.record, rule)]
            per_cutoff.append((passing[0] if passing else list(ladder.itertuples())[-1],
                               bool(passing)))
        finite = [(run, ok) for run, ok in per_cutoff if not run.diverged]
        if not finite:
            continue
        run, converged = max(finite, key=lambda pair: (pair[0].val_accuracy, -pair[0].cutoff))
        start = experiment.ALPHA_MU[activation]
        base = _accuracy(_baseline(dataset, activation))
        paper_base = paper_value(2, dataset, activation, "baseline")
        paper = paper_value(2, dataset, activation, "class_lr")
        rows.append({"dataset": dataset, "activation": activation, "reading": reading,
                     "rung": round(math.log10(start / run.alpha_mu)), "converged": converged,
                     "accuracy": run.accuracy, "paper": paper, "gap": abs(run.accuracy - paper),
                     "change": run.accuracy - base, "paper_change": paper - paper_base})
    return pd.DataFrame(rows)


@_paper
def reading_comparison(runs: pd.DataFrame, rules: Sequence[str] = tuple(RULES)) -> pd.DataFrame:
    """Per rule and reading: which alpha_mu converged, |ours - paper| of the class-lr columns,
    and how often the class-lr change has the paper's sign (where both moved)."""
    rows = []
    for rule in rules:
        choice = _protocol_choice(runs, rule)
        for reading, group in choice.groupby("reading", sort=False):
            moved = group[(group["change"] != 0) & (group["paper_change"] != 0)]
            row = {"rule": rule, "reading": reading, "cells": len(group)}
            for rung in range(protocol.LADDER_STEPS):
                row[f"alpha_mu / {10**rung:,}"] = int((group["rung"] == rung).sum())
            row.update({
                "none converged": int((~group["converged"]).sum()),
                "mean |ours - paper|": group["gap"].mean(),
                "median |ours - paper|": group["gap"].median(),
                "same sign as paper": (np.sign(moved["change"]) == np.sign(
                    moved["paper_change"])).mean(),
                "cells moved": len(moved),
            })
            rows.append(row)
    return pd.DataFrame(rows).set_index(["rule", "reading"])


@_paper
def divergence_anatomy(runs: pd.DataFrame) -> pd.DataFrame:
    """SELU runs at the paper's alpha_mu = 1e5: where and how fast they blow up."""
    start = runs[(runs["activation"] == "selu") & (runs["alpha_mu"] == experiment.ALPHA_MU[
        "selu"]) & (runs["cutoff"] == experiment.CUTOFFS["paper"][-1])]
    rows = []
    for run in start.itertuples():
        trace = run.record.get("multiplier_trace") or []
        layer_of_max = None
        for half in trace:  # the layer whose multipliers were largest, last finite half epoch
            values = half["max_per_layer"]
            if None not in values:
                layer_of_max = int(np.argmax(values))
        rows.append({"dataset": run.dataset, "reading": run.reading,
                     "outcome": "non-finite" if run.diverged else (
                         "collapsed" if run.collapsed else "trained"),
                     "non-finite in epoch": run.nonfinite_epoch,
                     "largest mu after half an epoch": run.mu_after_first_half_epoch,
                     "largest mu": run.largest_mu, "layer of largest mu": layer_of_max,
                     "accuracy": run.accuracy})
    return pd.DataFrame(rows)


@_paper
def errata(datasets: Sequence[str] = tuple(protocol.ERRATA)) -> pd.DataFrame:
    """Baselines of the printed and of Klambauer et al.'s row, beside the paper."""
    rows = []
    for dataset, change in protocol.ERRATA.items():
        if dataset not in datasets:
            continue
        printed = registry.architecture(dataset, printed=True)
        as_printed = {"layers": printed.layers, "dropout": printed.dropout}
        for activation in ACTIVATIONS:
            paper = paper_value(2, dataset, activation, "baseline")
            row = {"dataset": dataset, "activation": activation, "paper": paper}
            for label, variant in (("printed", as_printed), ("Klambauer", {**as_printed,
                                                                           **change})):
                name = f"{label} ({variant['layers']} layers, dropout {variant['dropout']:g})"
                row[name] = _accuracy(_baseline(dataset, activation, **variant))
            rows.append(row)
    return pd.DataFrame(rows)


@_paper
def initialisation(datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """ReLU and tanh baselines with LeCun init (the paper's reading) and the usual one."""
    rows = []
    for config in protocol.init_grid(datasets):
        lecun = _read(replace(config, init=None))
        paper = paper_value(2, config.dataset, config.activation, "baseline")
        usual = _read(config)
        rows.append({"dataset": config.dataset, "activation": config.activation,
                     "init": config.init, "paper": paper, "LeCun": _accuracy(lecun),
                     "usual": _accuracy(usual),
                     "LeCun collapsed": lecun is not None and convergence.collapsed(lecun),
                     "usual collapsed": usual is not None and convergence.collapsed(usual)})
    frame = pd.DataFrame(rows)
    frame["|LeCun - paper|"] = (frame["LeCun"] - frame["paper"]).abs()
    frame["|usual - paper|"] = (frame["usual"] - frame["paper"]).abs()
    return frame


@_paper
def original_split() -> pd.DataFrame:
    """image-segmentation's baselines per activation and seed: validation accuracy, test
    accuracy on the paper split (105 rows) and on the original 2,100-row test file, as shipped
    (raw features, see data.uci) and standardised by its own columns. Same nets as the study's
    (LeCun init) on both splits."""
    rows = []
    for config in protocol.split_grid():
        if config.method != "baseline" or config.original_test_scaling is not None:
            continue
        shipped = _read(config)
        if shipped is None:
            continue
        standardised = _read(replace(config, original_test_scaling="standardised"))
        paper_split = _baseline(config.dataset, config.activation, seed=config.seed)
        rows.append({"activation": config.activation, "seed": config.seed,
                     "validation accuracy": 100 * shipped["val_accuracy"],
                     "paper split (105 rows)": _accuracy(paper_split),
                     "original, as shipped": _accuracy(shipped),
                     "original, standardised": _accuracy(standardised),
                     "original test rows": shipped["n_test"]})
    return pd.DataFrame(rows)


def test_file_scales(dataset: str = "image-segmentation") -> pd.DataFrame:
    """Column scales of a data set's training file and original test file (`data.uci`)."""
    arrays = sweep.uci.arrays(dataset)
    return pd.DataFrame({"training file": sweep.uci.column_scales(arrays["x"]),
                         "original test file": sweep.uci.column_scales(
                             arrays["x_original_test"])}).T


def original_split_summary(frame: pd.DataFrame) -> str:
    """One sentence on `original_split()`: test accuracy as shipped and standardised."""
    mean = frame.mean(numeric_only=True)
    return (f"Original split, {len(frame)} baselines: test accuracy "
            f"{frame['original, as shipped'].min():.1f}-{frame['original, as shipped'].max():.1f}%"
            f" with the test file as shipped, {frame['original, standardised'].min():.1f}-"
            f"{frame['original, standardised'].max():.1f}% standardised (mean "
            f"{mean['original, standardised']:.1f}%, validation {mean['validation accuracy']:.1f}%"
            f"); the same nets on the paper split's 105 rows: "
            f"{mean['paper split (105 rows)']:.1f}% on average.")


@_paper
def batch_size_runs() -> pd.DataFrame:
    """The batch-size study's cells (`batch_size.cells`) from the committed records, batch 32
    (the Table 2 records of seeds 0-2) included."""
    grid = protocol.batch_grid((batch_size.OURS, *protocol.BATCH_SIZES))
    return batch_size.cells(records.recorded(EXPERIMENT, grid))


@_paper
def reading_runs() -> pd.DataFrame:
    """The reading study's cells (`minibatch_reading.cells`) from the committed records: the
    settled reading's changes from Table 2's seeds 0-2, the other reading's from the study."""
    seeds = set(protocol.READING_SEEDS)
    baselines, class_lr = {}, {}
    for dataset, activation in protocol.READING_CELLS:
        baselines[dataset, activation] = _seeds_of(
            _settled_by_seed(dataset, activation, "baseline"), seeds)
        class_lr[dataset, activation, minibatch_reading.SETTLED] = _seeds_of(
            _settled_by_seed(dataset, activation, "class_lr"), seeds)
    study = records.recorded(EXPERIMENT, protocol.reading_grid())
    for (dataset, activation, _, seed), record in tables.selected(study).items():
        class_lr.setdefault((dataset, activation, protocol.OTHER_READING), {})[seed] = (
            100 * record["test_accuracy"])
    return minibatch_reading.cells(baselines, class_lr)


def _seeds_of(by_seed: dict[int, float], seeds: set[int]) -> dict[int, float]:
    return {seed: value for seed, value in by_seed.items() if seed in seeds}


def reading_control() -> dict[str, float]:
    """Mean |ours - paper| of the class-lr columns per reading on the Eq. 6 study's cells,
    under the settled non-convergence rule: the reading study's control."""
    rule = experiment.SETTLED_CLASS_LR["divergence_rule"]
    gaps = reading_comparison(ladder_runs()).loc[rule, "mean |ours - paper|"]
    return {reading: float(gap) for reading, gap in gaps.items()}


def _settled_by_seed(dataset: str, activation: str, method: str) -> dict[int, float]:
    """Test accuracies (%) of a Table 2 cell's settled runs, by recorded seed."""
    grid = sweep.configs([dataset], [activation], [method], sweep.TABLE2_SEEDS, "paper")
    with committed_records():
        settled = sweep.recorded(grid, pre_study=False)
    return {seed: 100 * r["test_accuracy"] for (*_, seed), r in tables.selected(settled).items()}


def _settled_values(dataset: str, activation: str, method: str) -> list[float]:
    """Test accuracies (%) of a Table 2 cell's settled runs, one per recorded seed."""
    return list(_settled_by_seed(dataset, activation, method).values())


@_paper
def change_spread(dataset: str, activation: str) -> tuple[float, float, int]:
    """The class-lr change (points, class-lr - baseline, paired by seed): its mean, its
    standard deviation over seeds and the number of paired seeds."""
    base = _settled_by_seed(dataset, activation, "baseline")
    class_lr = _settled_by_seed(dataset, activation, "class_lr")
    changes = [class_lr[seed] - base[seed] for seed in sorted(base.keys() & class_lr.keys())]
    summary = comparisons.summarize(changes)
    return summary.mean, summary.sd, summary.n


@_paper
def seed_spread(dataset: str, activation: str, method: str = "baseline"
                ) -> tuple[float, int, str]:
    """Standard deviation (points) of a Table 2 cell over its recorded seeds (settled runs,
    class-lr at its best-validation cutoff), their count and whose runs they are: a class-lr
    cell with fewer than two seeds borrows the spread of its activation's baseline."""
    values, source = _settled_values(dataset, activation, method), method
    if len(values) < 2 and method != "baseline":
        values, source = _settled_values(dataset, activation, "baseline"), "baseline"
    return comparisons.summarize(values).sd, len(values), source


@_paper
def outliers(table: pd.DataFrame, threshold: float = 4.0) -> pd.DataFrame:
    """Table 2 cells with |ours - paper| > `threshold`, with the noise a reader should expect
    beside the gap: the binomial standard error of an accuracy on the test set, the spread of
    the cell over its seeds and the `seed band` that spread allows the paper's one run
    (:func:`noise_band`). `table` from :func:`table2`: ours is the mean over the recorded seeds."""
    rows = []
    shown = set(table.index)
    for name in registry.datasets():
        paper_name = registry.architecture(name).paper_name
        if paper_name not in shown or not sweep.uci.is_available(name):
            continue
        n_test = records_n_test(name)
        for activation in ACTIVATIONS:
            for method in registry.METHODS:
                column = tables.column_name(activation, method)
                gap = table.loc[paper_name, (column, "diff")]
                if not (abs(gap) > threshold):
                    continue
                paper = table.loc[paper_name, (column, "paper")]
                spread, seeds, source = seed_spread(name, activation, method)
                baseline_gap = (table.loc[paper_name, (tables.column_name(activation,
                                                                          "baseline"), "diff")]
                                if method == "class_lr" else math.nan)
                rows.append({"dataset": name, "column": column, "ours - paper": gap,
                             "test rows": n_test,
                             "binomial SE": binomial_se(paper, n_test),
                             "seed sd": spread, "seeds": seeds, "seed runs": source,
                             "baseline gap": baseline_gap})
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["gap / SE"] = frame["ours - paper"].abs() / frame["binomial SE"]
        frame["seed band"] = [noise_band(spread, seeds)
                              for spread, seeds in zip(frame["seed sd"], frame["seeds"])]
        studies = StudyEvidence()
        frame["diagnosis"] = [diagnose(row, studies) for row in frame.to_dict("records")]
    return frame


def noise_band(spread: float, runs: int) -> float:
    """How far the paper's one run may lie from the mean of our `runs` runs by seed noise
    alone: the half-width of the 95% prediction interval of one more run from a normal sample
    of `runs` runs with sd `spread` (`comparisons.prediction_band`). NaN below
    MIN_SEEDS_FOR_NOISE runs (no diagnosis then)."""
    if runs < MIN_SEEDS_FOR_NOISE:
        return math.nan
    return prediction_band(spread, runs)


def diagnose(cell: dict[str, Any], studies: StudyEvidence | None = None) -> str:
    """The explanation the evidence supports for one outlier cell, or "unexplained" with
    what was ruled out. Checks, in order: seed noise, a Table 1 erratum, a collapse of our
    baseline to one class and whether the usual initialisation lifts it, (ReLU and tanh
    baselines) whether the paper's value lies between our LeCun- and usually-initialised nets,
    and (baselines in the batch-size study) whether another batch size explains the cell; a
    class-lr cell first whether it is its baseline's gap and then (cells of the reading study)
    whether the other reading of Eq. 6 explains it.

    Test-set noise is no explanation: the paper tests on the same rows as we do (Fernandez-
    Delgado's split), so which rows were drawn moves its accuracy and ours alike; what differs
    between two runs on fixed rows is seed noise. The binomial SE stays in the table as the
    uncertainty of each accuracy about its net's accuracy on new data.

    `studies` holds the studies' tables (read on first use when not given)."""
    studies = studies if studies is not None else StudyEvidence()
    activation, dataset = cell["column"].split("+")[0].lower(), cell["dataset"]
    seeds, spread = cell["seeds"], cell["seed sd"]
    checked = [f"test-set sampling (the paper tests on our {cell['test rows']} rows)"]
    band = noise_band(spread, seeds)
    if abs(cell["ours - paper"]) <= band:
        return (f"seed noise: sd over {seeds} seeds is {spread:.1f} points "
                f"({cell['seed runs']} runs); the gap is within its 95% band {band:.1f}")
    if seeds >= MIN_SEEDS_FOR_NOISE:
        checked.append(f"seed noise (sd {spread:.1f} over {seeds} seeds)")
    if dataset in registry.ERRATA:
        return "Table 1 erratum (see the errata section)"
    if not math.isnan(cell.get("baseline gap", math.nan)):
        inherited, text = _inherited(cell, activation)
        if inherited:
            return text
        checked.append(text)
        if (dataset, activation) in protocol.READING_CELLS:
            found = minibatch_reading.explanation(studies.reading_runs, dataset, activation,
                                                  studies.reading_control)
            if (text := _study_explains(found, checked)) is not None:
                return text
    base, usual = _baseline(dataset, activation), protocol.USUAL_INIT.get(activation)
    usual_run = _read(replace(experiment.make_config(dataset, activation, profile="paper"),
                              init=usual)) if usual else None
    if base is not None and convergence.collapsed(base):
        if usual_run is not None and not convergence.collapsed(usual_run):
            return (f"our LeCun-initialised {activation} net collapses to one class; "
                    f"{usual} init trains ({_accuracy(usual_run):.1f}%)")
        return "our net collapses to one class at every initialisation tried"
    checked.append("collapse to one class")
    lecun_accuracy, usual_accuracy = _accuracy(base), _accuracy(usual_run)
    if (cell["column"] == tables.column_name(activation, "baseline")
            and not math.isnan(lecun_accuracy) and not math.isnan(usual_accuracy)):
        paper = paper_value(2, dataset, activation, "baseline")
        low, high = sorted((lecun_accuracy, usual_accuracy))
        if low <= paper <= high:
            return (f"initialisation (the paper names none): its {paper:.1f}% lies between our "
                    f"LeCun-initialised net ({lecun_accuracy:.1f}%) and the {usual}-initialised "
                    f"one ({usual_accuracy:.1f}%)")
        checked.append(f"initialisation (LeCun {lecun_accuracy:.1f}%, "
                       f"{usual} {usual_accuracy:.1f}%)")
    if (cell["column"] == tables.column_name(activation, "baseline")
            and (dataset, activation) in protocol.batch_cells()):
        found = batch_size.explanation(studies.batch_size_runs, dataset, activation)
        if (text := _study_explains(found, checked)) is not None:
            return text
    return "unexplained; ruled out: " + ", ".join(checked)


def _study_explains(found: tuple[bool, str] | None, checked: list[str]) -> str | None:
    """A study's `explanation` of a cell: its text when the study explains the cell; else
    None, with what the study checked added to `checked` (nothing when it has no rows)."""
    if found is None:
        return None
    explained, text = found
    if explained:
        return text
    checked.append(text)
    return None


class StudyEvidence:
    """The protocol studies' tables that :func:`diagnose` consults, each read from the
    committed records once, on first use (`outliers` shares one across all its cells)."""

    @cached_property
    def reading_runs(self) -> pd.DataFrame:
        return reading_runs()

    @cached_property
    def reading_control(self) -> dict[str, float]:
        return reading_control()

    @cached_property
    def batch_size_runs(self) -> pd.DataFrame:
        return batch_size_runs()


def outlier_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many outlier cells (from :func:`outliers`) have a diagnosis of their own, are their
    baseline's gap (class-lr cells whose change matches the paper's within noise), and stay
    unexplained."""
    diagnoses = frame["diagnosis"] if len(frame) else pd.Series(dtype=str)
    unexplained = int(diagnoses.str.startswith("unexplained").sum())
    inherited = int(diagnoses.str.startswith(INHERITED).sum())
    return {"cells": len(diagnoses), "diagnosed": len(diagnoses) - unexplained - inherited,
            "baseline's gap": inherited, "unexplained": unexplained}


# The kind of a diagnosis, by how `diagnose` starts its text (first match wins).
DIAGNOSIS_KINDS = (("seed noise", "seed noise"), ("Table 1 erratum", "erratum"),
                   ("our LeCun-initialised", "initialisation"),
                   ("initialisation", "initialisation"), ("our net collapses", "collapse"),
                   ("batch size", "batch size"), ("Eq. 6 reading", "Eq. 6 reading"))


def diagnosis_kinds(frame: pd.DataFrame) -> dict[str, int]:
    """How many outlier cells (from :func:`outliers`) each kind of diagnosis explains, most
    first; the cells that are their baseline's gap or unexplained are not counted."""
    kinds: dict[str, int] = {}
    for text in (frame["diagnosis"] if len(frame) else []):
        kind = next((name for prefix, name in DIAGNOSIS_KINDS if text.startswith(prefix)), None)
        if kind is None and not text.startswith((INHERITED, "unexplained")):
            kind = "other"
        if kind is not None:
            kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda item: -item[1]))


def _inherited(cell: dict[str, Any], activation: str) -> tuple[bool, str]:
    """Whether a class-lr cell's gap is its baseline's gap plus the noise of the class-lr change:
    ours - paper = (baseline's ours - paper) + (our change - the paper's change), and the
    paper's change is one run's, so against the mean of our n paired changes of sd s the
    second term has sd s * sqrt(1 + 1/n)."""
    dataset, baseline_gap = cell["dataset"], cell["baseline gap"]
    change, spread, pairs = change_spread(dataset, activation)
    if pairs < MIN_SEEDS_FOR_NOISE:
        return False, (f"inheriting the baseline's gap ({baseline_gap:+.1f}): too few paired "
                       f"seeds ({pairs})")
    paper_change = (paper_value(2, dataset, activation, "class_lr")
                    - paper_value(2, dataset, activation, "baseline"))
    band = noise_band(spread, pairs)
    changes = (f"class-lr changes ours by {change:+.2f} points ({pairs} seeds, sd "
               f"{spread:.2f}), the paper's by {paper_change:+.2f}")
    if abs(change - paper_change) <= band:
        return True, (f"{INHERITED} ({baseline_gap:+.1f} points) plus change noise: "
                      f"{changes}; the difference is within {band:.1f}")
    return False, (f"inheriting the baseline's gap ({baseline_gap:+.1f}): the change differs "
                   f"beyond its seed noise ({changes}; band {band:.1f})")


@_paper
def records_n_test(dataset: str) -> int:
    """Size of the paper split's test set."""
    return len(sweep.uci.load(dataset).test)

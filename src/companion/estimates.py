"""Our number for each claim of the scorecard, computed from the records: the records a claim
reads (`class_lr_records`, `fixed_classifier_records`, ...) and its estimate with a 95%
interval (`Estimate`). The claims, their verdict rules and the table are `companion.scorecard`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd

from companion import comparisons, records


@dataclass(frozen=True)
class Estimate:
    """Our number for a claim: value, 95% interval (None: exact), and where it comes from."""

    value: float
    low: float | None
    high: float | None
    text: str  # the value as the table shows it, interval included
    profile: str  # profile, network/budget, data sets, seeds
    method: str  # how the interval was computed
    details: Mapping[str, float] = field(default_factory=dict)  # extra numbers a rule uses


# ---------------------------------------------------------------- class-lr (Tables 2 and 3)

CLASS_LR_EXPERIMENT = "class-lr-uci-paper"


def paper_profile_configs(names: list[str]) -> list[Any]:
    """The default paper-protocol configs of `names` (whatever $COMPANION_PROFILE forces)."""
    from companion.class_lr import sweep
    from companion.class_lr.registry import ACTIVATIONS, METHODS

    with mock.patch.dict(os.environ, {"COMPANION_PROFILE": ""}):
        return sweep.configs(names, ACTIVATIONS, METHODS, sweep.TABLE2_SEEDS, "paper")


def class_lr_records(results: Path) -> list[dict[str, Any]]:
    """Committed paper-profile class-lr records of the default protocol, seeds 0-4."""
    from companion.class_lr.registry import datasets

    folder = results / CLASS_LR_EXPERIMENT
    paths = [folder / f"{records.config_hash(c)}.json"
             for c in paper_profile_configs(datasets())]
    return [json.loads(p.read_text()) for p in paths if p.is_file()]


def _profile(found: list[dict[str, Any]]) -> str:
    return "/".join(sorted({r["config"]["profile"] for r in found}))


def seeds_text(seeds: Any) -> str:
    """'1 seed', '5 seeds' or '1-5 seeds (12 with 5)' for the numbers of seeds per data set."""
    counts = np.asarray(seeds, dtype=int)
    low, high = int(counts.min()), int(counts.max())
    if low == high:
        return f"{low} {comparisons.plural('seed', low)}"
    return f"{low}-{high} seeds ({int((counts == high).sum())} with {high})"


def _mean_change(changes: pd.DataFrame, what: str, profile: str, units: str = "data sets"
                 ) -> Estimate | None:
    """Mean over the rows of `changes` (one per data set, or data set x activation, each the
    mean change over its paired seeds: `class_lr.verdict.paired_changes`)."""
    values = changes["change"].to_numpy(float)
    if len(values) < 3:
        return None
    interval = comparisons.mean_change(values)
    mean, low, high = interval.estimate, interval.low, interval.high
    text = f"{mean:+.2f} [{comparisons.signed(low)}, {comparisons.signed(high)}]"
    return Estimate(mean, low, high, text,
                    f"{profile}, {len(values)} {units}, {seeds_text(changes['seeds'])}",
                    f"mean {what} over data sets (each the mean over its seeds, paired), "
                    "95% bootstrap interval over data sets")


def class_lr_accuracy_change(activation: str
                             ) -> Callable[[list[dict[str, Any]]], Estimate | None]:
    """Mean test-accuracy change (points) from class-lr over data sets, one activation; a data
    set with several seeds counts once, with its change averaged over the paired seeds."""
    def estimate(found: list[dict[str, Any]]) -> Estimate | None:
        from companion.class_lr import verdict

        long = verdict.long_accuracies(found)
        changes = verdict.paired_changes(long)
        rows = changes[changes["activation"] == activation]
        mean = _mean_change(rows, "class-lr - baseline", _profile(found))
        if mean is None:
            return None
        details = _fewer_seeds_details(rows)
        # Data sets with records of this activation but no change yet (baselines only).
        names = long.loc[long["activation"] == activation, "dataset"].unique()
        sensitivity = verdict.missing_sensitivity(changes, names).loc[activation]
        if not sensitivity["missing"]:
            return replace(mean, details=details)
        return replace(mean, profile=f"{mean.profile}; missing: "
                       f"{sensitivity['missing data sets']}", details={
            **details, "missing": float(sensitivity["missing"]),
            **{f"{end} fill: {bound}": float(sensitivity[f"{end}: mean {bound}"])
               for end in verdict.MISSING_FILLS for bound in ("low", "high")}})
    return estimate


def _fewer_seeds_details(rows: pd.DataFrame) -> dict[str, float]:
    """The interval of the mean change over the data sets with the most paired seeds only
    ('most seeds: low/high/n/seeds'), where some data sets have fewer: a change from one
    seed carries its seed noise whole, so the scorecard says when leaving such data sets out
    would turn the verdict (`scorecard._could_turn`). {} when every data set has as many."""
    from companion.class_lr import verdict

    full = verdict.with_most_seeds(rows)
    most = int(full["seeds"].max())
    if len(full) == len(rows) or len(full) < 3:
        return {}
    interval = comparisons.mean_change(full["change"].to_numpy(float))
    return {"most seeds: low": interval.low, "most seeds: high": interval.high,
            "most seeds: n": float(len(full)), "most seeds: seeds": float(most)}


def specialisation_change(found: list[dict[str, Any]]) -> Estimate | None:
    """Mean change of the % of class-specialised neurons from class-lr, over data sets and
    activations (Table 3)."""
    from companion.class_lr import verdict

    changes = verdict.paired_changes(verdict.long_accuracies(found, table=3))
    return _mean_change(changes, "change", _profile(found), "data set x activation pairs")


# ---------------------------------------------------------------- fixed classifier (CIFAR-10)

FIXED_EXPERIMENT = "fixed-classifier-cifar10-paper"


def fixed_classifier_records(results: Path) -> list[dict[str, Any]]:
    """Finished paper-profile CIFAR-10 records (any network and epochs), seed 0."""
    folder = results / FIXED_EXPERIMENT
    found = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return [r for r in found if not r["diverged"] and r["config"]["seed"] == 0]


def budget_of(record: dict[str, Any]) -> tuple[str, int]:
    """(network, epochs) of a fixed-classifier record."""
    return record["config"]["network"], record["config"]["epochs"]


def budgets_in_order(found: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """The budgets (network, epochs) of the records, the paper's ResNet-56 at 164 epochs
    first, then the most epochs (ties by network name)."""
    return sorted({budget_of(r) for r in found},
                  key=lambda b: (b != ("resnet56", 164), -b[1], b[0]))


def _preferred(found: list[dict[str, Any]], needed: Callable[[list[dict]], bool]
               ) -> list[dict[str, Any]]:
    """The records of the first budget of `budgets_in_order` that satisfies `needed`."""
    for budget in budgets_in_order(found):
        group = [r for r in found if budget_of(r) == budget]
        if needed(group):
            return group
    return []


def _describe(record: dict[str, Any]) -> str:
    network, epochs = budget_of(record)
    return (f"{record['config']['profile']}: {network}, {record['n_train']:,} training images, "
            f"{epochs} epochs, 1 seed")


def by_classifier(group: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{classifier: record} of a group, learned scale only (Figure 3's fixed scales apart)."""
    return {r["config"]["classifier"]: r for r in group if r["config"].get("scale") is None}


def _learned_and_fixed(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
    """{classifier: record} of the preferred group holding a learned and a fixed run."""
    group = _preferred(found, lambda g: {"learned", "fixed"} <= set(by_classifier(g)))
    return by_classifier(group) if group else None


def fixed_minus_learned_accuracy(found: list[dict[str, Any]]) -> Estimate | None:
    """Test accuracy, fixed - learned orthonormal classifier (points), one run each."""
    runs = _learned_and_fixed(found)
    if runs is None:
        return None
    learned, fixed = runs["learned"], runs["fixed"]
    interval = comparisons.test_accuracy_difference(fixed, learned)
    difference, low, high = interval.estimate, interval.low, interval.high
    return Estimate(difference, low, high,
                    f"{difference:+.2f} [{low:+.2f}, {high:+.2f}] "
                    f"({100 * learned['test_accuracy']:.2f}% vs "
                    f"{100 * fixed['test_accuracy']:.2f}%)",
                    _describe(learned), _test_noise(interval, learned["n_test"]))


def _test_noise(interval: comparisons.Interval, n_test: int) -> str:
    """What an interval of `comparisons.test_accuracy_difference` holds, in words."""
    if interval.method == "paired t":
        return f"paired over the same {n_test:,} test images (t interval of per-image differences)"
    return f"binomial standard error on {n_test:,} test images per run"


def training_error_gap(found: list[dict[str, Any]]) -> Estimate | None:
    """Final training error, fixed - learned classifier (points), one run each."""
    runs = _learned_and_fixed(found)
    if runs is None:
        return None
    errors = {k: 100 * runs[k]["history"]["train_error"][-1] for k in ("learned", "fixed")}
    interval = comparisons.accuracy_difference(errors["fixed"], runs["fixed"]["n_train"],
                                               errors["learned"], runs["learned"]["n_train"])
    gap, low, high = interval.estimate, interval.low, interval.high
    return Estimate(gap, low, high, f"{gap:+.2f} [{low:+.2f}, {high:+.2f}]",
                    _describe(runs["learned"]),
                    f"binomial standard error on {runs['learned']['n_train']:,} training images")


def alpha_log_growth(found: list[dict[str, Any]]) -> Estimate | None:
    """Growth of the learned alpha per e-fold of steps before the first lr drop, and the R^2
    of that straight line against ln(step)."""
    from companion.fixed_classifier.figures import log_fit

    group = _preferred(found, lambda g: "fixed" in by_classifier(g))
    if not group:
        return None
    record = by_classifier(group)["fixed"]
    fit = log_fit(record, "alpha")
    low, high = fit.slope - 1.96 * fit.stderr, fit.slope + 1.96 * fit.stderr
    return Estimate(fit.slope, low, high,
                    f"{fit.slope:+.3f} per e-fold of steps (R^2 = {fit.rvalue ** 2:.3f}); alpha "
                    f"{record['steps']['alpha'][0]:g} -> {record['history']['alpha'][-1]:.2f}",
                    _describe(record), f"least squares on {fit.n} logged steps",
                    {"r_squared": fit.rvalue ** 2})


def fixed_scale_gap(found: list[dict[str, Any]]) -> Estimate | None:
    """Largest validation-accuracy loss of alpha fixed at 1 or 10 against a learned alpha."""
    def complete(group: list[dict]) -> bool:
        scales = {r["config"].get("scale") for r in group if r["config"]["classifier"] == "fixed"}
        return {1.0, 10.0, None} <= scales

    group = _preferred(found, complete)
    if not group:
        return None
    runs = {r["config"].get("scale"): r for r in group if r["config"]["classifier"] == "fixed"}
    learned = runs[None]
    gaps = {s: comparisons.test_accuracy_difference(runs[s], learned) for s in (1.0, 10.0)}
    worst = gaps[min(gaps, key=lambda s: gaps[s].estimate)]
    half_width = worst.high - worst.estimate
    return Estimate(worst.estimate, worst.low, worst.high,
                    f"alpha=1: {gaps[1.0].estimate:+.2f}, alpha=10: {gaps[10.0].estimate:+.2f} "
                    f"(+-{half_width:.2f})",
                    _describe(learned),
                    _test_noise(worst, learned["n_test"]) + ", worse of the two")


def parameter_savings(found: list[dict[str, Any]]) -> Estimate | None:
    """Networks whose fixed-classifier count (learned - N*C) is within 1 of the paper's."""
    from companion.fixed_classifier.tables import parameter_table

    table = parameter_table()
    off = (table["fixed, learned - N*C (ours)"] - table["fixed, learned - N*C (paper)"]).abs()
    matching = int((off <= 1).sum())
    shares = table["classifier share (ours)"]
    return Estimate(matching, None, None,
                    f"{matching} of {len(table)} counts within 1 (exact: {int((off == 0).sum())}); "
                    f"N*C is {shares.iloc[0]} to {shares.iloc[-1]} of the model",
                    "counts (no training)", "exact counts")


def no_records(results: Path) -> list[dict[str, Any]]:
    """For claims that need no records (parameter counts)."""
    return []


def larger_datasets_records(results: Path) -> list[dict[str, Any]]:
    """Paper-profile CIFAR-100 and ImageNet records (none committed: the data are not local)."""
    return [json.loads(p.read_text()) for name in ("cifar100", "imagenet")
            for p in sorted((results / f"fixed-classifier-{name}-paper").glob("*.json"))]


def larger_datasets_gap(found: list[dict[str, Any]]) -> Estimate | None:
    """Fixed - learned test accuracy on CIFAR-100/ImageNet: the CIFAR-10 estimate per data set
    (only when records exist)."""
    return fixed_minus_learned_accuracy(found) if found else None

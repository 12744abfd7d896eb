"""Figures 1-3 of "Fix your classifier" drawn from run records (see `experiment.run`).

- Figure 1: the learned scale alpha of a fixed classifier over training steps, beside the norm
  of a learned classifier's weights; log-x, where logarithmic growth is a straight line.
- Figure 2: training and validation (test) error (%, log-y) against epochs, per classifier.
- Figure 3: the same errors with alpha fixed at 0.1, 1 and 10 against a learned alpha.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter
from scipy import stats

Record = dict[str, Any]


def _steps(record: Record, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(step, value) of the per-step log, without step 0 (it has no place on a log axis)."""
    steps = np.asarray(record["steps"]["step"], dtype=float)
    values = np.asarray([np.nan if v is None else v for v in record["steps"][key]], dtype=float)
    keep = steps > 0
    return steps[keep], values[keep]


def _mark_epochs(axis: plt.Axes, record: Record) -> None:
    """Dotted vertical lines where the learning rate was divided."""
    per_epoch = record["steps_per_epoch"]
    for milestone in sorted(set(record["config"]["lr_milestones"])):
        if 0 < milestone < record["config"]["epochs"]:
            axis.axvline(milestone * per_epoch, color="grey", linestyle=":", linewidth=0.8)


def alpha_over_time(fixed: Mapping[str, Record], learned: Record | None,
                    title: str = "") -> plt.Figure:
    """Figure 1: alpha of each fixed-classifier run (left) and the learned W's norms (right).

    Args:
        fixed: label -> record of a run whose alpha is learned (fixed or Hadamard classifier).
        learned: record of the learned-classifier run (its `steps` log the norms of W), or None
            when only fixed classifiers were run (the right panel then says so).
        title: above both panels (network and profile).
    """
    reference = learned if learned is not None else next(iter(fixed.values()), None)
    if reference is None:
        raise ValueError("alpha_over_time needs at least one run")
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for label, record in fixed.items():
        left.plot(*_steps(record, "alpha"), label=label)
    _mark_epochs(left, reference)
    left.set(xscale="log", xlabel="training step", ylabel="alpha",
             title="learned scale alpha of a fixed classifier")
    if fixed:
        left.legend()
    if learned is not None:
        right.plot(*_steps(learned, "mean_row_norm"), label="mean per-class norm ||w_i||",
                   color="C3")
        right.plot(*_steps(learned, "weight_norm"), label="Frobenius norm ||W||", color="C4")
        right.legend()
    else:
        right.text(0.5, 0.5, "no learned-classifier run", ha="center", transform=right.transAxes)
    _mark_epochs(right, reference)
    right.set(xscale="log", xlabel="training step", ylabel="norm",
              title="norm of a learned classifier")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def error_curves(runs: Mapping[str, Record], title: str = "",
                 reference_error: float | None = None,
                 reference_label: str = "paper, ResNet-56: validation error about 7%"
                 ) -> plt.Figure:
    """Figures 2 and 3: training (dashed) and validation (solid) error in %, log-y.

    Dotted vertical lines mark the epochs after which the learning rate was divided;
    `reference_error` (%) draws the paper's level as a horizontal line.
    """
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for index, (label, record) in enumerate(runs.items()):
        history = record["history"]
        epochs = history["epoch"]
        color = f"C{index}"
        axis.plot(epochs, 100 * np.asarray(history["train_error"]), linestyle="--",
                  color=color, label=f"{label}: training")
        axis.plot(epochs, 100 * np.asarray(history["test_error"]), color=color,
                  label=f"{label}: validation")
    if runs:
        config = next(iter(runs.values()))["config"]
        for number, milestone in enumerate(sorted(set(config["lr_milestones"]))):
            if 0 < milestone < config["epochs"]:
                axis.axvline(milestone, color="grey", linestyle=":", linewidth=0.8,
                             label="lr divided by 10" if number == 0 else None)
    if reference_error is not None:
        axis.axhline(reference_error, color="black", linewidth=0.8, linestyle="-.",
                     label=reference_label)
    axis.set(yscale="log", xlabel="epoch", ylabel="error (%)", title=title)
    _plain_log_labels(axis)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _plain_log_labels(axis: plt.Axes) -> None:
    """Label a log y-axis 50, 60, 70 rather than 5 x 10^1 (only 1, 2, 5 over wide ranges)."""
    low, high = axis.get_ylim()
    every = high / max(low, 1e-12) < 10

    def label(value: float, _position: int) -> str:
        return f"{value:g}" if every or f"{value:g}"[0] in "125" else ""

    axis.yaxis.set_major_formatter(FuncFormatter(label))
    axis.yaxis.set_minor_formatter(FuncFormatter(label))


@dataclass(frozen=True)
class LogFit:
    """Least-squares line of a logged value against ln(step)."""

    slope: float  # growth per e-fold of steps
    stderr: float  # standard error of the slope (steps treated as independent)
    rvalue: float
    n: int  # logged steps in the window


def log_fit(record: Record, key: str = "alpha", first_epoch: int = 1) -> LogFit:
    """Straight line of `key` against ln(step) over the steps after `first_epoch` and before
    the first lr drop (scipy.stats.linregress); NaN fields when fewer than 3 steps are logged.
    """
    steps, values = _steps(record, key)
    per_epoch = record["steps_per_epoch"]
    first_drop = min(record["config"]["lr_milestones"]) * per_epoch
    keep = (steps >= first_epoch * per_epoch) & (steps <= first_drop) & np.isfinite(values)
    if keep.sum() < 3:
        return LogFit(float("nan"), float("nan"), float("nan"), int(keep.sum()))
    fit = stats.linregress(np.log(steps[keep]), values[keep])
    return LogFit(float(fit.slope), float(fit.stderr), float(fit.rvalue), int(keep.sum()))


def log_slope(record: Record, key: str = "alpha", first_epoch: int = 1) -> float:
    """Slope of `key` against ln(step) over the steps after `first_epoch` and before the first
    lr drop: how much the value grows per e-fold of steps (a straight line on Figure 1's axes).
    """
    steps, values = _steps(record, key)
    per_epoch = record["steps_per_epoch"]
    first_drop = min(record["config"]["lr_milestones"]) * per_epoch
    keep = (steps >= first_epoch * per_epoch) & (steps <= first_drop) & np.isfinite(values)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(steps[keep]), values[keep], 1)[0])

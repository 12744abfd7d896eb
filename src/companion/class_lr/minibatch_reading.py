"""The reading study: can the other minibatch reading of Eq. 6 bring our unexplained class-lr
changes to the paper's?

The paper derives the multiplier update for one sample; for a minibatch the library settled on
`class_gradient` (the protocol findings' Eq. 6 section), with `per_sample` one config field
away. `protocol.reading_grid` reruns, with `per_sample` (seeds 0-2, settled protocol otherwise),
the class-lr cells whose change from the baseline differed from the paper's beyond seed noise
once the seeds were in. The change is class-lr minus baseline, paired by seed with the
settled baseline of the same seed. The other reading explains a cell when three things hold:

1. the paper's change lies within the 95% prediction band of our per-seed changes under it
   (`comparisons.prediction_band`);
2. it moves our change toward the paper's beyond noise: the difference of the two readings'
   changes, paired by seed, has a 95% t interval on the paper's side of 0;
3. it does not fit the paper worse elsewhere: on the Eq. 6 study's 13 data sets x 3
   activations its mean |ours - paper| is within CONTROL_TOLERANCE points of the settled
   reading's (the study's controls, as the batch-size study has its own).

The rule was written after the first cell's rows (ringnorm, minutes to run) and before the
other two ran; it follows the batch-size study's rule (`batch_size`). The functions take the
accuracies (`findings.reading_runs` reads the committed records).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from companion.class_lr.batch_size import cell_rows
from companion.class_lr.experiment import SETTLED_CLASS_LR
from companion.class_lr.registry import paper_value
from companion.comparisons import Interval, paired_by_seed, prediction_band, summarize

SETTLED = SETTLED_CLASS_LR["statistic"]  # the reading of every Table 2 record
CONTROL_TOLERANCE = 1.0  # points of mean |ours - paper| the other reading may lose elsewhere
MIN_SEEDS = 3  # a reading's changes make a band from three seeds on (as `findings`)

# (data set, activation) -> {seed: test accuracy %}
BySeed = Mapping[int, float]


def cells(baselines: Mapping[tuple[str, str], BySeed],
          class_lr: Mapping[tuple[str, str, str], BySeed]) -> pd.DataFrame:
    """One row per (data set, activation, reading): the seeds paired with a baseline, the mean
    and sd of the class-lr change (points), the paper's change, the 95% prediction band of one
    more run's change, whether the paper's change lies within it, and the changes by seed.
    `class_lr` is keyed by (data set, activation, reading)."""
    rows = []
    for (dataset, activation, reading), accuracies in sorted(class_lr.items()):
        base = baselines.get((dataset, activation), {})
        by_seed = {seed: accuracies[seed] - base[seed]
                   for seed in sorted(accuracies.keys() & base.keys())}
        change = summarize(list(by_seed.values()))
        paper = (paper_value(2, dataset, activation, "class_lr")
                 - paper_value(2, dataset, activation, "baseline"))
        band = prediction_band(change.sd, change.n)
        rows.append({"dataset": dataset, "activation": activation, "reading": reading,
                     "seeds": change.n, "change": change.mean, "sd": change.sd,
                     "paper change": paper, "change - paper's": change.mean - paper,
                     "band": band, "paper within band": bool(abs(change.mean - paper) <= band),
                     "by seed": by_seed})
    return pd.DataFrame(rows)


def _rows(frame: pd.DataFrame, dataset: str, activation: str) -> dict[str, dict[str, Any]]:
    """The cell's rows by reading, each with at least MIN_SEEDS paired seeds."""
    return cell_rows(frame[frame["seeds"] >= MIN_SEEDS], dataset, activation, "reading")


def reading_difference(settled: dict[str, Any], other: dict[str, Any]) -> Interval:
    """The other reading's change minus the settled one's (points), paired by seed."""
    return paired_by_seed(settled["by seed"], other["by seed"])


def _compared(frame: pd.DataFrame, dataset: str, activation: str
              ) -> tuple[dict[str, Any], str, dict[str, Any], Interval] | None:
    """(the settled reading's row, the other reading, its row, their paired difference), or
    None when the cell lacks either reading (with MIN_SEEDS seeds)."""
    rows = _rows(frame, dataset, activation)
    if SETTLED not in rows or len(rows) < 2:
        return None
    settled = rows.pop(SETTLED)
    (reading, other), = rows.items()
    return settled, reading, other, reading_difference(settled, other)


def explains(frame: pd.DataFrame, dataset: str, activation: str,
             control: Mapping[str, float]) -> bool:
    """The study's rule (module docstring); `control` maps each reading to its mean
    |ours - paper| on the Eq. 6 study."""
    if (compared := _compared(frame, dataset, activation)) is None:
        return False
    settled, reading, other, difference = compared
    toward = difference.high < 0 if settled["change - paper's"] > 0 else difference.low > 0
    return bool(other["paper within band"] and toward
                and control[reading] < control[SETTLED] + CONTROL_TOLERANCE)


def explanation(frame: pd.DataFrame, dataset: str, activation: str,
                control: Mapping[str, float]) -> tuple[bool, str] | None:
    """By the study's rule: (True, "Eq. 6 reading ...") when the other reading explains the
    cell, else (False, what was checked, for the diagnosis's list); None when the cell was not
    in the study or either reading has fewer than MIN_SEEDS paired seeds."""
    if (compared := _compared(frame, dataset, activation)) is None:
        return None
    settled, reading, other, difference = compared
    if explains(frame, dataset, activation, control):
        return True, (f"Eq. 6 reading (the paper's minibatch form is open): with {reading} our "
                      f"class-lr change is {other['change']:+.1f} ± {other['band']:.1f} over "
                      f"{other['seeds']} seeds, the paper's {other['paper change']:+.1f}, "
                      f"against {settled['change']:+.1f} with {SETTLED} (a difference of "
                      f"{difference.estimate:+.1f}, 95% interval {difference.low:+.1f} to "
                      f"{difference.high:+.1f}); on the Eq. 6 study's cells {reading} is "
                      f"{control[reading]:.2f} from the paper on average, {SETTLED} "
                      f"{control[SETTLED]:.2f}")
    return False, (f"the other Eq. 6 reading ({reading}: change {other['change']:+.1f} over "
                   f"{other['seeds']} seeds, the paper's {other['paper change']:+.1f})")


def describe(frame: pd.DataFrame, control: Mapping[str, float]) -> str:
    """One sentence: which cells of the study the other reading explains, by its rule."""
    studied = frame[["dataset", "activation"]].drop_duplicates()
    complete = [(d, a) for d, a in studied.itertuples(index=False)
                if len(_rows(frame, d, a)) > 1]
    explained = [f"{d} {a}" for d, a in complete if explains(frame, d, a, control)]
    waiting = len(studied) - len(complete)
    return (f"Reading study (seeds 0-2): the other reading of Eq. 6 explains {len(explained)} "
            f"of {len(complete)} class-lr cells" + (" run so far" if waiting else "")
            + (": " + ", ".join(explained) if explained else "")
            + (f"; {waiting} not run yet" if waiting else "")
            + ". Eq. 6 study, mean |ours - paper| of the class-lr columns: "
            + ", ".join(f"{reading} {gap:.2f}" for reading, gap in control.items()) + ".")

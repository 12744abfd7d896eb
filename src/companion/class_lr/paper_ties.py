"""Can the paper's "equal" counts come from runs like ours? A check on the committed records.

The paper's Table 2 prints class-lr accuracies equal to their baselines (to the printed 0.01
points) on 10 (SELU), 11 (ReLU) and 21 (tanh) of its 45 data sets, and counts them as "equal".
Ties are not rare in our runs either: a class-lr run starts from its seed's baseline weights
and batch order, and often ends with the same test accuracy. Our "equal" counts in the
verdicts compare means over five seeds, which rarely tie, so they cannot be set beside the
paper's one-run counts; this check can.

Per data set and activation, the share of our seeds whose class-lr run (at the cutoff that
validation picks) ties its baseline estimates the chance that one run, like the paper's, ties.
The estimate is Jeffreys' (ties + 1/2) / (seeds + 1), so that a data set whose five seeds never
tie keeps a chance of a tie. The number of ties over data sets is then Poisson-binomial
(`scipy.stats.poisson_binom`), and its upper tail at the paper's count says whether the paper
tied more often than runs like ours can. A second reading tests one protocol that would make
ties common: the baseline competing with the cutoffs on validation accuracy (a plain-SGD
"cutoff 0"), where every seed whose baseline validates at least as well ties.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import poisson_binom

from companion.class_lr.registry import ACTIVATIONS, architecture, paper_change
from companion.class_lr.tables import ACTIVATION_LABELS, selected


def _printed(accuracy: float) -> float:
    """An accuracy (fraction) as the paper prints it: percent to two decimals."""
    return round(100 * accuracy, 2)


def tie_rates(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per data set and activation with a class-lr run and its baseline on the same
    seed: `seeds` paired, `ties` (equal printed accuracy), `ties if the baseline competes`
    (those, and the seeds whose baseline validates at least as well as the chosen cutoff),
    `test rows` and `paper tie` (the paper's change is 0.00)."""
    chosen = selected(records)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for (dataset, activation, method, seed), treated in chosen.items():
        baseline = chosen.get((dataset, activation, "baseline", seed))
        if method != "class_lr" or baseline is None:
            continue
        paper = paper_change(2, dataset, activation)
        row = rows.setdefault((dataset, activation), {
            "dataset": dataset, "activation": activation, "seeds": 0, "ties": 0,
            "ties if the baseline competes": 0, "test rows": len(treated["test_correct"]),
            "paper tie": paper is not None and abs(paper) < 0.005})
        tie = _printed(treated["test_accuracy"]) == _printed(baseline["test_accuracy"])
        row["seeds"] += 1
        row["ties"] += tie
        row["ties if the baseline competes"] += (
            tie or baseline["val_accuracy"] >= treated["val_accuracy"])
    columns = ["dataset", "activation", "seeds", "ties", "ties if the baseline competes",
               "test rows", "paper tie"]
    return pd.DataFrame(list(rows.values()), columns=columns)


def _jeffreys(successes: pd.Series, trials: pd.Series) -> np.ndarray:
    """Jeffreys' estimate of a chance from `successes` of `trials`: (k + 1/2) / (n + 1)."""
    return ((successes + 0.5) / (trials + 1)).to_numpy(float)


def _tails(chances: np.ndarray, observed: int) -> tuple[float, float]:
    """P(X >= observed) and P(X <= observed) for X Poisson-binomial with `chances`."""
    distribution = poisson_binom(chances)
    return float(distribution.sf(observed - 1)), float(distribution.cdf(observed))


CHECK_COLUMNS = ["activation", "data sets", "paper ties", "expected ties (ours)",
                 "P(paper's count or more)", "expected if the baseline competes",
                 "P(that many or more), baseline competes",
                 "P(that many or fewer), baseline competes",
                 "paper ties that none of our seeds has"]


def tie_check(rates: pd.DataFrame) -> pd.DataFrame:
    """Per activation (rows): data sets, the paper's ties on them, the ties that runs like ours
    would give (expected, Jeffreys' rate per data set) with the chance of the paper's count or
    more, and the same under the 'baseline competes' reading (expected, both tails)."""
    rows = []
    for activation in ACTIVATIONS:
        own = rates[rates["activation"] == activation]
        if own.empty:
            continue
        paper = int(own["paper tie"].sum())
        ours = _jeffreys(own["ties"], own["seeds"])
        competes = _jeffreys(own["ties if the baseline competes"], own["seeds"])
        above, _ = _tails(ours, paper)
        competes_above, competes_below = _tails(competes, paper)
        never = own[own["paper tie"] & (own["ties"] == 0)].sort_values("test rows")
        rows.append({"activation": activation, "data sets": len(own), "paper ties": paper,
                     "expected ties (ours)": ours.sum(), "P(paper's count or more)": above,
                     "expected if the baseline competes": competes.sum(),
                     "P(that many or more), baseline competes": competes_above,
                     "P(that many or fewer), baseline competes": competes_below,
                     "paper ties that none of our seeds has": ", ".join(
                         f"{architecture(name).paper_name} (n = {n:,})" for name, n
                         in zip(never["dataset"], never["test rows"]))})
    return pd.DataFrame(rows, columns=CHECK_COLUMNS).set_index("activation")


def describe(check: pd.DataFrame, alpha: float = 0.05) -> str:
    """The check in words, one sentence per activation and one on the second reading."""
    if check.empty:
        return "No class-lr run with the baseline of its seed here: nothing to compare."
    sentences = []
    for activation, row in check.iterrows():
        p_value = row["P(paper's count or more)"]
        verdict = ("more ties than runs like ours give" if p_value < alpha
                   else "within what runs like ours give")
        expected = row["expected ties (ours)"]
        text = (f"{ACTIVATION_LABELS[activation]}: the paper ties on {row['paper ties']} of these "
                f"{row['data sets']} data sets, runs like ours on {expected:.1f} expected "
                f"(P of {row['paper ties']} or more = {p_value:.2g}): {verdict}")
        if row["paper ties that none of our seeds has"]:
            text += (f"; the paper ties where none of our seeds does on "
                     f"{row['paper ties that none of our seeds has']}")
        sentences.append(text + ".")
    competes = []
    for activation, row in check.iterrows():
        fewer = row["P(that many or fewer), baseline competes"]
        competes.append(f"{ACTIVATION_LABELS[activation]} "
                        f"{row['expected if the baseline competes']:.1f} (P of "
                        f"{row['paper ties']} or fewer = {fewer:.2g}"
                        + (", ruled out)" if fewer < alpha else ")"))
    sentences.append("Had the baseline competed with the cutoffs on validation accuracy, the "
                     f"expected ties would be {', '.join(competes)}.")
    return " ".join(sentences)

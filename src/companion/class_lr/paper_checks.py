"""Can the paper's significance counts come from its own Table 2? A check that needs no runs.

The paper's text says that McNemar's test (p < 0.05, correct/incorrect per test sample) finds
class-lr significantly better than the SELU baseline on 13 data sets and worse on 6. McNemar's
test sees only the discordant test samples: b right only for the baseline, c right only for
class-lr. A change of d points on n test rows fixes c - b = k = |d| n / 100 (taken at its
largest given the two printed decimals); the most
significant split with that difference is b = 0, c = k (discordant rows both ways add to both
sides and only raise p). So each Table 2 change has a smallest possible p, and counting the
changes whose smallest p is below 0.05 bounds how many McNemar could ever call significant,
whatever the runs' disagreement was. Both the exact test and the asymptotic chi-square without
continuity correction (the most lenient common variant) are bounded, with statsmodels.

The test sets are the paper's: the Fernandez-Delgado train/test split, which this project uses
too (`companion.data.uci`). A data set without a test-set size here (no data file: connect-4,
miniboone) counts as possibly significant whenever its change is not zero, so the bound stays an
upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
from statsmodels.stats.contingency_tables import mcnemar

from companion.class_lr.findings import records_n_test
from companion.class_lr.registry import ACTIVATIONS, datasets, paper_change, paper_counts
from companion.data import uci

ALPHA = 0.05
PRINT_ROUNDING = 0.01  # points: two accuracies printed to 0.01, each off by at most 0.005
VARIANTS = {"exact": {"exact": True}, "chi-square": {"exact": False, "correction": False}}


def paper_test_rows() -> dict[str, int | None]:
    """{data set: test rows of the paper's split}, None where our copy has no data file."""
    return {name: records_n_test(name) if uci.is_available(name) else None
            for name in datasets()}


def smallest_p(rows_more_right: int, variant: str = "exact") -> float:
    """The smallest McNemar p that a difference of `rows_more_right` test rows can give: all
    discordant rows on one side (b = 0, c = k). 1.0 for no difference."""
    if rows_more_right == 0:
        return 1.0
    table = [[0, 0], [abs(rows_more_right), 0]]
    return float(mcnemar(table, **VARIANTS[variant]).pvalue)


def most_rows(change: float, n_test: int) -> int:
    """The largest number of test rows a printed change of `change` points can stand for: the
    paper prints accuracies to two decimals, so the true change may be up to PRINT_ROUNDING
    larger (each accuracy off by at most 0.005). Rounding up keeps the bound an upper bound."""
    return math.floor((abs(change) + PRINT_ROUNDING) * n_test / 100 + 1e-9)


def significance_ceiling(test_rows: Mapping[str, int | None], alpha: float = ALPHA
                         ) -> pd.DataFrame:
    """Per activation: how many of the paper's Table 2 changes could reach McNemar p < `alpha`
    at best (better / worse, exact and chi-square), beside the counts the paper states.

    `test_rows` maps data set names to test-set sizes (None: unknown, counted as possible).
    """
    stated = paper_counts()
    rows = []
    for activation in ACTIVATIONS:
        row: dict[str, object] = {"activation": activation, "changed": 0, "unknown test size": 0}
        for variant in VARIANTS:
            row[f"at most better ({variant})"] = row[f"at most worse ({variant})"] = 0
        for name in datasets():
            change = paper_change(2, name, activation)
            if not change:  # blank or zero: nothing to test
                continue
            row["changed"] += 1
            side = "better" if change > 0 else "worse"
            n_test = test_rows.get(name)
            row["unknown test size"] += n_test is None
            for variant in VARIANTS:
                possible = n_test is None or smallest_p(most_rows(change, n_test),
                                                        variant) < alpha
                row[f"at most {side} ({variant})"] += possible
        row["paper: significantly better"] = stated[activation]["significantly better"]
        row["paper: significantly worse"] = stated[activation]["significantly worse"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("activation").astype("Int64")  # counts; NA: not stated


def describe(ceiling: pd.DataFrame) -> str:
    """One sentence per activation with stated counts: is the paper's count reachable?"""
    sentences = []
    for activation, row in ceiling.iterrows():
        if pd.isna(row["paper: significantly better"]):
            continue
        count = {key: int(value) for key, value in row.items()}
        better = max(count["at most better (exact)"], count["at most better (chi-square)"])
        worse = max(count["at most worse (exact)"], count["at most worse (chi-square)"])
        stated = count["paper: significantly better"], count["paper: significantly worse"]
        verdict = ("cannot come from McNemar's test on the Table 2 accuracies of this test "
                   "split, whatever the runs' disagreement: they must come from other runs, other "
                   "samples or another test than the text describes (unexplained by the "
                   "paper)"
                   if stated[0] > better or stated[1] > worse
                   else "are within what its Table 2 allows")
        sentences.append(
            f"{activation}: of the paper's {count['changed']} nonzero Table 2 changes, at most "
            f"{better} gains and {worse} losses can reach p < {ALPHA} by McNemar's test "
            f"(exact or chi-square without continuity correction, all discordant rows one way; "
            f"{count['unknown test size']} data sets without a test size here counted as "
            f"possible); the paper states {stated[0]} significant gains and {stated[1]} "
            f"losses, which {verdict}.")
    return " ".join(sentences)

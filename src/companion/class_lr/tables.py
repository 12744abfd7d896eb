"""Tables 2 and 3 of the class-lr paper: our numbers from run records beside the paper's.

Both tables have one row per data set of the paper (45) and, for each activation and method,
three columns: `ours`, `paper` and `diff` (ours - paper, percentage points). A cell without a
record says why in the row's `status` (no data file in our copy, left out by the profile) or
shows as pending (the class-lr method is not implemented yet).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from companion.class_lr.registry import (
    ACTIVATIONS,
    METHODS,
    architecture,
    datasets,
    paper_value,
)
from companion.data import uci

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


def ours(records: Iterable[dict[str, Any]], table: int) -> dict[tuple[str, str, str], float]:
    """{(data set, activation, method): mean over seeds} of a table's measure."""
    values: dict[tuple[str, str, str], list[float]] = {}
    for record in records:
        config = record["config"]
        value = _measure(record, table)
        if value is not None:
            key = (config["dataset"], config["activation"], config["method"])
            values.setdefault(key, []).append(value)
    return {key: float(np.mean(v)) for key, v in values.items()}


def build(
    records: Iterable[dict[str, Any]], table: int, covered: Iterable[str] | None = None
) -> pd.DataFrame:
    """Table `table` (2 or 3) with ours/paper/diff per column and a status per row.

    `covered` are the data sets the profile ran; others are marked as left out.
    """
    measured = ours(records, table)
    covered = set(datasets() if covered is None else covered)
    rows = []
    for name in datasets():
        row: dict[str, Any] = {"dataset": architecture(name).paper_name}
        if not uci.is_available(name):
            row["status"] = "no data file in our copy"
        elif name not in covered:
            row["status"] = "left out by this profile"
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
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("dataset")
    status = frame.pop("status")
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    frame.insert(0, ("", "status"), status)
    return frame


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per column: data sets compared and mean absolute difference to the paper."""
    rows = []
    for label in dict.fromkeys(c[0] for c in frame.columns if c[0]):
        diff = frame[(label, "diff")]
        rows.append(
            {
                "column": label,
                "data sets compared": int(diff.notna().sum()),
                "mean |ours - paper|": diff.abs().mean(),
                "mean ours - paper": diff.mean(),
            }
        )
    return pd.DataFrame(rows).set_index("column")


def to_markdown(frame: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency); blanks for missing values."""
    columns = [" ".join(str(p) for p in c if p) if isinstance(c, tuple) else str(c)
               for c in frame.columns]
    header = [frame.index.name or ""] + columns
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, values in frame.iterrows():
        cells = [str(index)]
        for value in values:
            if isinstance(value, float | np.floating):
                cells.append("" if np.isnan(value) else f"{value:.{digits}f}")
            else:
                cells.append("" if value is None else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def save(frame: pd.DataFrame, stem: str, directory: str | Path) -> None:
    """Write `<stem>.csv` and `<stem>.md` under `directory` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_csv(directory / f"{stem}.csv")
    (directory / f"{stem}.md").write_text(to_markdown(frame))

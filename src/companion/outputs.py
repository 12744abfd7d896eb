"""Shared output helpers of both papers: the output directory, tables saved as CSV and
Markdown, and the ours-against-paper scatter plot."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from companion.data.sources import REPO_ROOT


def figures_dir() -> Path:
    """`$COMPANION_FIGURES_DIR` or `<repo>/figures` (created on demand)."""
    path = Path(os.environ.get("COMPANION_FIGURES_DIR", REPO_ROOT / "figures"))
    path.mkdir(parents=True, exist_ok=True)
    return path


LABEL_CHARACTER_WIDTH = 0.02  # one character of a 7-point label, as a share of a 4-inch panel


def label_outliers(axis: plt.Axes, x: pd.Series, y: pd.Series, distance: pd.Series,
                   count: int = 3) -> None:
    """Write the index label (the data set) beside the `count` points of largest `distance`;
    a label whose point lies close to already labelled ones goes a line lower per such
    neighbour, and to the left of its point when it would run past the right edge or, for
    every other neighbour, when there is room for it there. A long name that fits on neither
    side is centred on its point where it fits so, so that it runs past neither the left
    edge (into the tick labels) nor the right one."""
    span_x = float(x.max() - x.min()) or 1.0
    span_y = float(y.max() - y.min()) or 1.0
    placed: list[tuple[float, float]] = []  # labelled points, as fractions of the data ranges
    for name in distance.dropna().abs().sort_values(ascending=False).index[:count]:
        fx, fy = (x[name] - x.min()) / span_x, (y[name] - y.min()) / span_y
        # A label is about 40% of a panel wide and 4% high; a 7-point character about 2%.
        clashes = sum(abs(fx - qx) < 0.4 and abs(fy - qy) < 0.08 for qx, qy in placed)
        placed.append((fx, fy))
        width = LABEL_CHARACTER_WIDTH * len(str(name))
        fits_left, fits_right = fx >= width, fx + width <= 1.0
        centred = not (fits_left or fits_right) and width / 2 <= fx <= 1.0 - width / 2
        left = ((not fits_right and (fits_left or fx > 0.5))
                or (clashes % 2 == 1 and fits_left and fx > 0.3))
        side = "center" if centred else "right" if left else "left"  # matplotlib's ha
        axis.annotate(str(name), (x[name], y[name]), textcoords="offset points",
                      xytext=({"center": 0, "right": -4, "left": 4}[side], 4 - 9 * clashes),
                      ha=side, fontsize=7, color="C3")


def ours_vs_paper(frame: pd.DataFrame, labels: list[str], quantity: str, title: str = "",
                  outliers: int = 3, spread: pd.DataFrame | None = None) -> plt.Figure:
    """One scatter panel per column label (three to a row): ours (y) against the paper's (x).

    `frame` has ("<label>", "ours") and ("<label>", "paper") columns, as built by the tables,
    and the data set names as index; the `outliers` data sets farthest from the diagonal are
    labelled. `title` (e.g. network and profile) goes above all panels. `spread` (same index,
    one column per label), if given, draws each point's +-1 sd over seeds as a vertical bar.
    """
    columns = min(len(labels), 3)
    rows = -(-len(labels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 4 * rows), squeeze=False)
    for axis in axes.flat[len(labels):]:
        axis.set_visible(False)
    for axis, label in zip(axes.flat, labels):
        paper = frame[(label, "paper")].astype(float)
        ours = frame[(label, "ours")].astype(float)
        shown = paper.notna() & ours.notna()
        axis.scatter(paper[shown], ours[shown], s=14)
        if spread is not None and label in spread.columns:
            bars = spread[label].reindex(paper.index).astype(float)[shown]
            axis.errorbar(paper[shown], ours[shown], yerr=bars.fillna(0).to_numpy(), fmt="none",
                          ecolor="C0", alpha=0.5, linewidth=0.8)
        label_outliers(axis, paper[shown], ours[shown], (ours - paper)[shown], outliers)
        low = min(paper[shown].min(), ours[shown].min()) if shown.any() else 0
        high = max(paper[shown].max(), ours[shown].max()) if shown.any() else 100
        axis.plot([low, high], [low, high], color="grey", linewidth=0.8, linestyle="--")
        axis.set(title=f"{label} ({shown.sum()} data sets)", xlabel=f"paper {quantity}",
                 ylabel=f"ours {quantity}")
    if spread is not None:
        title = f"{title}; bars: +-1 sd over seeds" if title else "bars: +-1 sd over seeds"
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def listed(values: Mapping[Any, Any] | pd.Series) -> str:
    """'a 1, b 2' from a mapping or Series: a dict readable inside a printed sentence."""
    return ", ".join(f"{key} {value}" for key, value in dict(values).items())


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
                cells.append("" if np.isnan(value) else f"{value:,.{digits}f}")
            elif isinstance(value, int | np.integer):
                cells.append(f"{value:,}")  # thousands separators (parameter counts)
            else:
                cells.append("" if value is None or value is pd.NA else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def save(frame: pd.DataFrame, stem: str, directory: str | Path) -> None:
    """Write `<stem>.csv` and `<stem>.md` under `directory` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_csv(directory / f"{stem}.csv")
    (directory / f"{stem}.md").write_text(to_markdown(frame))

"""Shared plotting helpers and the `figures/` output directory."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from companion.data.sources import REPO_ROOT


def figures_dir() -> Path:
    """`$COMPANION_FIGURES_DIR` or `<repo>/figures` (created on demand)."""
    path = Path(os.environ.get("COMPANION_FIGURES_DIR", REPO_ROOT / "figures"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def ours_vs_paper(frame: pd.DataFrame, labels: list[str], quantity: str) -> plt.Figure:
    """One scatter panel per column label (three to a row): ours (y) against the paper's (x).

    `frame` has ("<label>", "ours") and ("<label>", "paper") columns, as built by the tables.
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
        low = min(paper[shown].min(), ours[shown].min()) if shown.any() else 0
        high = max(paper[shown].max(), ours[shown].max()) if shown.any() else 100
        axis.plot([low, high], [low, high], color="grey", linewidth=0.8, linestyle="--")
        axis.set(title=f"{label} ({shown.sum()} data sets)", xlabel=f"paper {quantity}",
                 ylabel=f"ours {quantity}")
    figure.tight_layout()
    return figure

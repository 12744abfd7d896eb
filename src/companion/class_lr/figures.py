"""Figures of the class-lr companion that are not in the paper but that a reader wants."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from companion.class_lr.tables import ACTIVATION_LABELS
from companion.outputs import label_outliers


def change_vs_paper(tests: pd.DataFrame, title: str = "", outliers: int = 3) -> plt.Figure:
    """Per data set: our accuracy change from class-lr (y) against the paper's (x), in points.

    One panel per activation; `tests` is `tables.mcnemar_tests(...)`. Filled markers are
    significant at p < 0.05 (McNemar). Points in the upper-right and lower-left quadrants agree
    with the paper on the sign of the change. The `outliers` data sets whose change differs most
    from the paper's are labelled; `title` (e.g. the profile) goes above the panels.
    """
    activations = list(dict.fromkeys(tests["activation"]))
    figure, axes = plt.subplots(1, max(1, len(activations)), figsize=(4.2 * len(activations), 4),
                                squeeze=False)
    for axis, activation in zip(axes[0], activations):
        rows = tests[tests["activation"] == activation]
        significant = rows["p_value"] < 0.05
        axis.scatter(rows.loc[~significant, "paper_change"], rows.loc[~significant, "change"],
                     s=18, facecolors="none", edgecolors="C0", label="p >= 0.05")
        axis.scatter(rows.loc[significant, "paper_change"], rows.loc[significant, "change"],
                     s=18, color="C3", label="p < 0.05")
        named = rows.set_index("dataset")
        label_outliers(axis, named["paper_change"], named["change"],
                       named["change"] - named["paper_change"], outliers)
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.axvline(0, color="grey", linewidth=0.8)
        axis.set(title=f"{ACTIVATION_LABELS[activation]} ({len(rows)} data sets)",
                 xlabel="paper: class-lr - baseline (points)",
                 ylabel="ours: class-lr - baseline (points)")
        axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure

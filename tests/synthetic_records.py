"""Records shaped like paper-profile class-lr runs, made without training, for the tests of
the statistics and the scorecard that read records (`class_lr.verdict`, `estimates`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from companion import records
from companion.class_lr.sweep import configs


def class_lr_record(dataset: str, activation: str, method: str, seed: int,
                    correct: Sequence[int | bool], val: float = 0.5,
                    cutoff: int | None = None) -> dict[str, Any]:
    """The record of one run: `correct` is its 0/1 list over the test samples, `val` its
    validation accuracy; class-lr runs take the first cutoff of the grid unless `cutoff`
    names another."""
    grid = configs([dataset], [activation], [method], [seed], "paper")
    config = grid[0] if cutoff is None else next(c for c in grid if c.cutoff == cutoff)
    correct = np.asarray(correct, dtype=bool)
    return {"config": records.config_dict(config), "diverged": False,
            "val_accuracy": val, "test_accuracy": float(correct.mean()),
            "test_correct": "".join("1" if c else "0" for c in correct)}

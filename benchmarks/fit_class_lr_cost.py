"""Refit `budget`'s class-lr cost model (seconds a run, seconds a training teraflop) from the
committed paper-profile records: the median regression of their wall times on their training
teraflops (`budget.fit_class_lr_rates`). CPU records of the Table 2 split only (GPU records
state their device and are left out).

    python benchmarks/fit_class_lr_cost.py
"""

from __future__ import annotations

import functools

from companion import budget, records
from companion.class_lr import sweep

EXPERIMENT = "class-lr-uci-paper"


def main() -> None:
    cost = functools.cache(lambda name: sweep.training_cost(name, "paper"))
    teraflops, seconds = [], []
    for record in records.load_records(EXPERIMENT):
        config = record["config"]
        on_gpu = record.get("device", "cpu") not in (None, "cpu")
        if on_gpu or config.get("split", "paper") != "paper":
            continue
        teraflops.append(cost(config["dataset"]))
        seconds.append(record["wall_time_s"])
    per_run, per_teraflop = budget.fit_class_lr_rates(teraflops, seconds)
    print(f"{len(seconds)} CPU records: {per_run:.1f} s a run + {per_teraflop:.1f} s a teraflop "
          f"(budget uses {budget.CLASS_LR_SECONDS_PER_RUN} and "
          f"{budget.CLASS_LR_SECONDS_PER_TERAFLOP})")


if __name__ == "__main__":
    main()

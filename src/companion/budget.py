"""How many runs a notebook would start, and their estimated CPU-hours, said before starting.

Rates measured from the committed paper-profile records on the project's 2-core machine
(one thread per run, two runs at a time):

- class-lr: the median over the 422 committed UCI records of wall time per training teraflop
  (`sweep.training_cost`) is about 190 s (10th-90th percentile 31-820 s: small data sets pay a
  fixed overhead per epoch), so estimates of single small runs are rough. It is pessimistic for
  the largest nets, which run nearer the matmul speed: `benchmarks/bench_class_lr_epochs.py`
  times the training code per data set on a quiet machine and measured 54-92 s per teraflop
  for an SGD epoch of the eight largest (chess-krvk: 210 CPU-hours for its seeds 0-4 where
  this model says 740).
- fixed classifier: ResNet-20 on all 50,000 CIFAR-10 images took 5,715-5,818 s for 30 epochs,
  about 193 s an epoch; a CIFAR ResNet's cost grows with its blocks per stage n (depth 6n+2),
  so ResNet-56 (n = 9) at 164 epochs is about 26 CPU-hours a run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from companion import records

CLASS_LR_SECONDS_PER_TERAFLOP = 190.0
RESNET20_SECONDS_PER_EPOCH = 193.0  # 50,000 images, one thread
RESNET20_BLOCKS = 3


def missing(experiment: str, grid: Sequence[Any]) -> list[Any]:
    """The configs of `grid` that have no record yet (what a sweep would start)."""
    return [c for c in grid if not records.record_path(experiment, c).is_file()]


def class_lr_cpu_hours(configs: Sequence[Any]) -> float:
    """Estimated CPU-hours of class-lr UCI runs (one thread each)."""
    from companion.class_lr import sweep

    teraflops = sum(sweep.training_cost(c.dataset, c.profile) for c in configs)
    return teraflops * CLASS_LR_SECONDS_PER_TERAFLOP / 3600


def cifar_cpu_hours(configs: Sequence[Any]) -> float | None:
    """Estimated CPU-hours of CIFAR ResNet runs; None when a network is not a CIFAR ResNet."""
    total = 0.0
    for config in configs:
        match = re.fullmatch(r"resnet(\d+)", config.network)
        if not match or (int(match[1]) - 2) % 6:
            return None
        blocks = (int(match[1]) - 2) // 6
        images = (config.max_train_samples or 50_000) / 50_000
        total += RESNET20_SECONDS_PER_EPOCH * blocks / RESNET20_BLOCKS * images * config.epochs
    return total / 3600


def announce(experiment: str, grid: Sequence[Any]) -> str:
    """One line: how many runs of `grid` would start and their estimated CPU-hours."""
    todo = missing(experiment, grid)
    if not todo:
        return f"{len(grid)} runs, all recorded: nothing to train."
    hours = (class_lr_cpu_hours(todo) if experiment.startswith("class-lr")
             else cifar_cpu_hours(todo))
    estimate = "unknown CPU time" if hours is None else f"about {hours:,.1f} CPU-hours"
    return (f"{len(todo)} of {len(grid)} runs not recorded yet: starting them takes {estimate} "
            "(one core each; divide by the parallel jobs). Stop now and pass "
            "only_recorded=True to show only what is recorded.")

"""How many runs a notebook would start, and their estimated CPU-hours, said before starting.

Rates measured from the committed paper-profile records on the project's 2-core machine
(one thread per run, two runs at a time):

- class-lr: a run's wall time is a fixed cost (loading, per-epoch evaluation, Python) plus a
  cost per training teraflop (`sweep.training_cost`): the median regression of wall time on
  teraflops over the 4,022 committed CPU records (:func:`fit_class_lr_rates`, 2026-12-05) gives
  8.3 s a run and 22.9 s a teraflop. The runs were timed beside other jobs, so it is a planning
  number, not a bound. `benchmarks/bench_class_lr_epochs.py` times the training code per data
  set and agrees for the largest nets (17-33 s a teraflop, measured 2026-12-05 beside two
  nice-10 sweeps). The rate used before, 190 s a teraflop (the median ratio, dominated by the
  small data sets' fixed cost), overstated the largest nets about tenfold.
  A method term does not earn its place: over the 2,440 CPU records of 2026-12-07 the same
  regression with a class-lr slope added gives 22.6 s a teraflop plus 1.8 for class-lr runs
  (1.2 without the runs that retried a smaller alpha_mu), and on the largest quarter of data
  sets class-lr and baseline runs took a median 27.3 and 28.2 s a teraflop. Chess-krvk's class-lr
  groups took about 30% more than this model says; they ran beside other sweeps, tests and
  renders, whose load this model (a median over such runs) averages rather than predicts.
- fixed classifier: ResNet-20 on all 50,000 CIFAR-10 images took 5,715-5,818 s for 30 epochs,
  about 193 s an epoch; a CIFAR ResNet's cost grows with its blocks per stage n (depth 6n+2),
  so ResNet-56 (n = 9) at 164 epochs is about 26 CPU-hours a run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from companion import records

CLASS_LR_SECONDS_PER_RUN = 8.3
CLASS_LR_SECONDS_PER_TERAFLOP = 22.9
RESNET20_SECONDS_PER_EPOCH = 193.0  # 50,000 images, one thread
RESNET20_BLOCKS = 3


def missing(experiment: str, grid: Sequence[Any]) -> list[Any]:
    """The configs of `grid` that have no record yet (what a sweep would start)."""
    return [c for c in grid if not records.record_path(experiment, c).is_file()]


def class_lr_cpu_hours(configs: Sequence[Any]) -> float:
    """Estimated CPU-hours of class-lr UCI runs (one thread each)."""
    from companion.class_lr import sweep

    teraflops = sum(sweep.training_cost(c.dataset, c.profile) for c in configs)
    return class_lr_hours(len(configs), teraflops)


def class_lr_hours(runs: Any, teraflops: Any) -> Any:
    """Estimated CPU-hours of `runs` class-lr runs of `teraflops` training teraflops in all
    (numbers, or arrays of them elementwise)."""
    return (runs * CLASS_LR_SECONDS_PER_RUN + teraflops * CLASS_LR_SECONDS_PER_TERAFLOP) / 3600


def class_lr_recorded_hours(configs: Sequence[Any], found: Sequence[dict[str, Any]]
                            ) -> tuple[float, list[Any]]:
    """(CPU-hours, configs left unpriced) for class-lr `configs` by the records in `found`:
    a config whose data set and method have records made on a CPU is priced at the median wall
    time of those records (alpha_mu retries and the load the runs shared the machine with
    included), the measured counterpart of :func:`class_lr_cpu_hours`; the others are
    returned for the model to price."""
    import numpy as np

    times: dict[tuple[str, str], list[float]] = {}
    for record in found:
        if record.get("device") == "cpu" and record.get("wall_time_s") is not None:
            key = (record["config"]["dataset"], record["config"]["method"])
            times.setdefault(key, []).append(float(record["wall_time_s"]))
    seconds = sum(float(np.median(times[(c.dataset, c.method)])) for c in configs
                  if (c.dataset, c.method) in times)
    return seconds / 3600, [c for c in configs if (c.dataset, c.method) not in times]


def fit_class_lr_rates(teraflops: Sequence[float], seconds: Sequence[float]
                       ) -> tuple[float, float]:
    """(seconds a run, seconds a teraflop): the median regression (statsmodels `QuantReg`,
    robust to the runs slowed by other jobs) of runs' wall times on their training teraflops."""
    import numpy as np
    import statsmodels.api as sm

    x, y = np.asarray(teraflops, dtype=float), np.asarray(seconds, dtype=float)
    if x.shape != y.shape or x.size < 3:
        raise ValueError(f"need one wall time per run and at least 3 runs, got {x.size} "
                         f"teraflop values and {y.size} times")
    fit = sm.QuantReg(y, sm.add_constant(x)).fit(q=0.5)
    per_run, per_teraflop = fit.params
    return float(per_run), float(per_teraflop)


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

"""What the missing paper-profile class-lr runs cost on this machine, measured, not modelled.

`budget.class_lr_cpu_hours` prices a run by a cost model fitted to the committed records (a
fixed cost a run plus a cost a training teraflop, `benchmarks/fit_class_lr_cost.py`), timed
beside other jobs. This benchmark times the real
training code (`training.Training`) per data set: an epoch of plain SGD and one of class-based
rates, each split into a cost per minibatch and a fixed cost per epoch (the validation and
test evaluation) by timing epochs of two lengths. From those it prices one seed of the six
Table 2 columns (3 activations x baseline, class-lr at cutoffs 10/20/30 sharing their first
epochs) and the missing runs of seeds 0-4.

Run alone, one thread (`OMP_NUM_THREADS=1`, as the sweeps run): other jobs slow it down.
    python benchmarks/bench_class_lr_epochs.py [--datasets letter semeion ...]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch

from companion import budget
from companion.class_lr import experiment, sweep
from companion.class_lr.registry import ACTIVATIONS, METHODS
from companion.class_lr.training import Training

LARGEST = ["letter", "statlog-shuttle", "semeion", "steel-plates", "wine-quality-red",
           "statlog-landsat", "wine-quality-white", "chess-krvk"]
SHORT, LONG = 4, 12  # minibatches in the two timed epochs


def epoch_seconds(training: Training, batches: int, alpha_mu: float | None) -> float:
    """Wall time of one more epoch of `batches` minibatches (evaluation included); class-based
    rates at `alpha_mu`, plain SGD when it is None."""
    training.rows = min(len(training.y_train), batches * training.config.batch_size)
    start = time.perf_counter()
    if alpha_mu is not None:
        training.train_class_lr(training.epoch + 1, alpha_mu)
    else:
        training.train_sgd(training.epoch + 1)
    return time.perf_counter() - start


def per_epoch(name: str, class_lr: bool) -> tuple[float, float, int]:
    """(seconds per minibatch, fixed seconds per epoch, minibatches per full epoch).

    A class-lr net whose timed epochs diverge is timed again at alpha_mu / 10, as the
    protocol's retry would run it (a diverged epoch stops early and would time too short)."""
    config = experiment.make_config(name, "selu", "class_lr" if class_lr else "baseline",
                                    "paper", 0, 10 if class_lr else None)
    alpha_mu = config.alpha_mu if class_lr else None
    for _ in range(experiment.MAX_ALPHA_RETRIES + 1):
        training = Training(config)  # one model; epochs of different lengths
        batches = math.ceil(len(training.y_train) / config.batch_size)
        epoch_seconds(training, 1, alpha_mu)  # warm-up: allocation, first touches
        short, long = (epoch_seconds(training, n, alpha_mu) for n in (SHORT, LONG))
        if not training.diverged:
            per_batch = max(long - short, 0.0) / (LONG - SHORT)
            return per_batch, max(short - SHORT * per_batch, 0.0), batches
        if alpha_mu is None:
            break
        alpha_mu /= 10
    raise RuntimeError(f"{name}: the timed epochs diverged; the times would be too short")


def seed_hours(sgd_epoch: float, class_lr_epoch: float) -> float:
    """One seed of Table 2's six columns: per activation a 100-epoch baseline and a class-lr
    group (30 epochs with class-based rates, then 90 + 80 + 70 epochs of SGD after the
    cutoffs 10, 20, 30). alpha_mu retries come on top."""
    cutoffs, epochs = experiment.CUTOFFS["paper"], experiment.PROFILE_SETTINGS["paper"]["epochs"]
    sgd_epochs = epochs + sum(epochs - c for c in cutoffs)
    return len(ACTIVATIONS) * (sgd_epochs * sgd_epoch + max(cutoffs) * class_lr_epoch) / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=LARGEST)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"{'data set':22s} {'TF/run':>7s} {'SGD s/epoch':>11s} {'c-lr s/epoch':>12s} "
          f"{'s/TF':>5s} {'h/seed':>7s} {'missing':>7s} {'h left':>7s} {'model h':>7s}")
    total_left = total_model = 0.0
    for name in args.datasets:
        sgd_batch, sgd_fixed, batches = per_epoch(name, class_lr=False)
        clr_batch, clr_fixed, _ = per_epoch(name, class_lr=True)
        sgd_epoch = sgd_batch * batches + sgd_fixed
        class_lr_epoch = clr_batch * batches + clr_fixed
        teraflops = sweep.training_cost(name, "paper")
        per_seed = seed_hours(sgd_epoch, class_lr_epoch)
        grid = sweep.configs([name], ACTIVATIONS, METHODS, range(5), "paper")
        todo = budget.missing(sweep.experiment_name(grid), grid)
        # A missing config costs its share of a seed (12 configs a seed: 3 baselines, 9 cutoffs).
        left = per_seed * len(todo) / (len(grid) / 5)
        model = budget.class_lr_cpu_hours(todo)
        total_left, total_model = total_left + left, total_model + model
        print(f"{name:22s} {teraflops:7.2f} {sgd_epoch:11.2f} {class_lr_epoch:12.2f} "
              f"{100 * sgd_epoch / teraflops:5.0f} {per_seed:7.2f} {len(todo):7d} "
              f"{left:7.1f} {model:7.1f}")
    print(f"missing runs of these data sets: {total_left:.1f} CPU-hours measured "
          f"(cost model: {total_model:.1f}), alpha_mu retries not included")


if __name__ == "__main__":
    main()

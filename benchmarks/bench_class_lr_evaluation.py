"""What evaluating the test rows after every epoch cost a class-lr run (dropped 2026-12-07).

Until then `Training.run_epoch` also scored the test rows after every epoch, for a per-epoch
test curve that nothing read. This times, in one process and interleaved, a plain-SGD epoch
of the training code as it is now and the test evaluation it no longer does: the old epoch
was their sum, so old / new is the speed-up of every epoch.

Run alone, one thread (`OMP_NUM_THREADS=1`, as the sweeps run): other jobs slow it down.
    python benchmarks/bench_class_lr_evaluation.py [--datasets chess-krvk letter] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from companion.class_lr import experiment
from companion.class_lr.training import Training, _accuracy


def timed_epoch(training: Training) -> tuple[float, float]:
    """(seconds of one more plain-SGD epoch as the code runs it now, seconds of the test
    evaluation that the code ran after every epoch until 2026-12-07)."""
    start = time.perf_counter()
    training.train_sgd(training.epoch + 1)
    middle = time.perf_counter()
    _accuracy(training.model, training.x_test, training.data.test.y)
    return middle - start, time.perf_counter() - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=["chess-krvk", "letter"])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"{'data set':14s} {'test rows':>9s} {'epoch s':>8s} {'test eval s':>11s} "
          f"{'old / new':>9s}")
    for name in args.datasets:
        training = Training(experiment.make_config(name, "selu", profile="paper"))
        # interleaved: both parts of an old epoch see the same load
        epochs, evaluations = zip(*(timed_epoch(training) for _ in range(args.repeats)))
        epoch, evaluation = statistics.median(epochs), statistics.median(evaluations)
        print(f"{name:14s} {len(training.x_test):9,d} {epoch:8.2f} {evaluation:11.2f} "
              f"{(epoch + evaluation) / epoch:9.2f}")


if __name__ == "__main__":
    main()

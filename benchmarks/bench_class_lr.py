"""Class-lr step time over plain SGD step time, on the paper's nets, batch as in the runs.

For letter (4x512, 26 classes), chess-krvk (32x1024, 18 classes) and abalone (conic 8x512,
3 classes) it measures, interleaved in one run (medians):
- the fast class-lr step (`ClassLR`: forward, backward, per-class update, mu update),
- the reference step (`ReferenceClassLR`: a backward pass per class and per sample),
- the floor: one read-and-write pass over all k x (managed weights) multipliers,
each over a plain SGD step (forward, backward, torch.optim.SGD). Real labels of the data set
when its files are available (COMPANION_UCI_DIR), else uniform random labels.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from companion.class_lr.experiment import make_config
from companion.class_lr.models import SelfNormalizingMLP
from companion.class_lr.optimizer import ClassLR, ReferenceClassLR, managed_layers
from companion.data import uci

CASES = {"letter": (16, 26), "chess-krvk": (6, 18), "abalone": (8, 3)}


def _batches(name: str, n_features: int, n_classes: int, batch: int, count: int):
    generator = torch.Generator().manual_seed(0)
    try:
        data = uci.load(name)
        x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    except uci.DataError:
        x = torch.randn(batch * count, n_features, generator=generator)
        y = torch.randint(0, n_classes, (batch * count,), generator=generator)
    order = torch.randperm(len(y), generator=generator)[: batch * count]
    return list(zip(x[order].split(batch), y[order].split(batch)))


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def measure(name: str, repeats: int, reference_repeats: int) -> dict[str, float]:
    n_features, n_classes = CASES[name]
    config = make_config(name, "selu", profile="paper")
    torch.manual_seed(0)
    model = SelfNormalizingMLP(n_features, n_classes, config.layers, config.hidden,
                               config.shape, "selu", dropout=0.0)
    # Three copies, so that each method keeps its own state (attached capture, multipliers).
    class_lr_model, oracle = copy.deepcopy(model), copy.deepcopy(model)
    batches = _batches(name, n_features, n_classes, config.batch_size, repeats + 2)
    sgd = torch.optim.SGD(model.parameters(), lr=config.learning_rate)
    fast = ClassLR(list(class_lr_model.parameters()),
                   managed_layers(class_lr_model.hidden_layers), n_classes,
                   lr=config.learning_rate, alpha_mu=1e5)
    fast.attach()  # as in training: attached for the whole class-lr phase
    reference = ReferenceClassLR(oracle, managed_layers(oracle.hidden_layers), n_classes,
                                 lr=config.learning_rate, alpha_mu=1e5)
    multipliers = [*fast.mu_weight, *fast.mu_bias]

    def sgd_step(x, y):
        sgd.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        sgd.step()

    def fast_step(x, y):
        fast.step(nn.functional.cross_entropy(class_lr_model(x), y), y)

    def reference_step(x, y):
        reference.step(nn.functional.cross_entropy(oracle(x), y, reduction="none"), y)

    def floor():
        for mu in multipliers:
            mu.mul_(1.0)

    times: dict[str, list[float]] = {"sgd": [], "fast": [], "floor": [], "reference": []}
    for x, y in batches[:2]:  # warm-up
        sgd_step(x, y), fast_step(x, y), floor()
    for i, (x, y) in enumerate(batches[2:]):
        times["sgd"].append(_timed(sgd_step, x, y))
        times["fast"].append(_timed(fast_step, x, y))
        times["floor"].append(_timed(floor))
        if i < reference_repeats:
            times["reference"].append(_timed(reference_step, x, y))
    median = {key: statistics.median(values) for key, values in times.items()}
    return {
        "sgd_ms": 1e3 * median["sgd"],
        "class_lr": median["fast"] / median["sgd"],
        "reference": median["reference"] / median["sgd"],
        "floor": median["floor"] / median["sgd"],
        "mu_mb": fast.multiplier_bytes / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (sweeps run one per job: --n-jobs 2 on 2 cores)")
    torch.set_num_threads(parser.parse_args().threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 32")
    print(f"{'data set':12s} {'sgd ms':>8s} {'class-lr':>9s} {'reference':>10s} {'floor':>6s}"
          f" {'mu MiB':>8s}")
    worst = 0.0
    for name, (repeats, reference_repeats) in {
        "letter": (40, 5), "chess-krvk": (10, 1), "abalone": (40, 5)
    }.items():
        r = measure(name, repeats, reference_repeats)
        worst = max(worst, r["class_lr"])
        print(f"{name:12s} {r['sgd_ms']:8.2f} {r['class_lr']:9.2f} {r['reference']:10.2f}"
              f" {r['floor']:6.2f} {r['mu_mb']:8.1f}")
    print(f"class-lr/sgd step time ratio: {worst:.2f}")


if __name__ == "__main__":
    main()

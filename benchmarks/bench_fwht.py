"""Time a learned dense classifier against the fast-Hadamard fixed classifier on CPU.

Usage::

    PYTHONPATH=src python benchmarks/bench_fwht.py [--batch 256] [--repeats 30]

For each (N, C) -- ResNet-50 (2048, 1000) and DenseNet-169 (1664, 1000) -- it times one
forward + backward pass (gradient w.r.t. the input features, plus the weight/bias/alpha
gradients) of

* ``dense``: a learned ``nn.Linear(N, C)``;
* ``fixed``: :class:`FixedClassifier` (a dense fixed orthonormal ``Q``, no weight gradient);
* ``fwht-r2``: :class:`HadamardClassifier` with plain radix-2 butterflies;
* ``fwht``: :class:`HadamardClassifier` with the default radix-64 butterflies,

reporting the median over ``--repeats`` round-robin timings after warm-up. The last line
printed is the dense / fwht time ratio for N = 2048, C = 1000.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from companion.fixed_classifier import FixedClassifier, HadamardClassifier  # noqa: E402

SHAPES = ((2048, 1000), (1664, 1000))


def median_times(
    steps: dict[str, Callable[[], None]], repeats: int, warmup: int = 5
) -> dict[str, float]:
    """Median wall time (seconds) of each step, timed round-robin after ``warmup`` calls.

    Interleaving the candidates makes the comparison robust to load changes on a shared CPU.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def make_step(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of ``layer`` on ``x`` (B, N) with upstream gradient (B, C)."""

    def step() -> None:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        layer(x).backward(grad)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op threads for both candidates (1: stable timings on a shared machine)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print(
        f"{'N':>5} {'C':>5} {'dense ms':>9} {'fixed ms':>9} {'fwht-r2 ms':>11} "
        f"{'fwht ms':>8} {'dense/fwht':>11}"
    )
    ratios = {}
    for n, c in SHAPES:
        x = torch.randn(args.batch, n, requires_grad=True)
        grad = torch.randn(args.batch, c)
        layers = {
            "dense": nn.Linear(n, c),
            "fixed": FixedClassifier(n, c),
            "fwht-r2": HadamardClassifier(n, c, radix_bits=1),
            "fwht": HadamardClassifier(n, c),
        }
        steps = {name: make_step(layer, x, grad) for name, layer in layers.items()}
        ms = {k: 1e3 * t for k, t in median_times(steps, args.repeats).items()}
        ratios[n, c] = ms["dense"] / ms["fwht"]
        print(
            f"{n:>5} {c:>5} {ms['dense']:>9.3f} {ms['fixed']:>9.3f} {ms['fwht-r2']:>11.3f} "
            f"{ms['fwht']:>8.3f} {ratios[n, c]:>11.2f}"
        )
    print(f"dense/fwht time ratio (N=2048, C=1000): {ratios[2048, 1000]:.2f}")


if __name__ == "__main__":
    main()

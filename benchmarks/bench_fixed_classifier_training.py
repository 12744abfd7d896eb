"""Training speed of the fixed-classifier CIFAR loop: images per second, ResNet-20 and ResNet-56.

    python benchmarks/bench_fixed_classifier_training.py                 # device auto
    python benchmarks/bench_fixed_classifier_training.py --device cuda --compile
    python benchmarks/bench_fixed_classifier_training.py --compare-with feb9983

Times `Trainer.train_epoch` (augmentation on the device, forward, backward, SGD; bf16 autocast
on CUDA) on random CIFAR-sized images, after one warm-up epoch, fixed classifier. On a CPU one
torch thread (the sweeps' setting), a few batches; on a GPU 10,000 images.

`--compare-with REV` also loads `fixed_classifier/training.py` as it was at git revision REV and
alternates epochs of the two loops in this one process (same model, data, threads), printing
the ratio new / old of the median images per second: on a busy machine only such interleaved
ratios mean anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

from companion.fixed_classifier import training
from companion.fixed_classifier.devices import autocast_name, describe, resolve_device
from companion.fixed_classifier.layers import replace_classifier
from companion.fixed_classifier.resnet import cifar_resnet

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"epochs": 1, "batch_size": 128, "learning_rate": 0.1, "lr_milestones": (1,),
            "lr_decay": 0.1, "momentum": 0.9, "weight_decay": 1e-4,
            "decay_scale_and_bias": True, "log_interval": 50, "seed": 0}


def old_training(revision: str) -> types.ModuleType:
    """`training.py` as of `revision`, imported as the module `old_training`."""
    source = subprocess.run(
        ["git", "show", f"{revision}:src/companion/fixed_classifier/training.py"], cwd=ROOT,
        capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("old_training")
    sys.modules["old_training"] = module  # dataclasses look their module up
    exec(compile(source, f"{revision}:training.py", "exec"), module.__dict__)
    return module


def make_trainer(module: types.ModuleType, depth: int, images: int, device: torch.device,
                 compile_model: bool):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, images).astype(np.int64)
    torch.manual_seed(0)
    model = replace_classifier(cifar_resnet(depth, 10), "fixed")
    fields = {f.name for f in dataclasses.fields(module.TrainingSettings)}
    settings = module.TrainingSettings(**{k: v for k, v in SETTINGS.items() if k in fields})
    options = {"compile": True} if compile_model else {}
    return module.Trainer(model, settings, (x, y), (x[:128], y[:128]),
                          ((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)), device=device, **options)


def images_per_second(trainer, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    trainer.train_epoch(0)  # ends with a host sync (the epoch's loss)
    return len(trainer.train_labels) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="through torch.compile")
    parser.add_argument("--networks", nargs="+", type=int, default=[20, 56], help="depths")
    parser.add_argument("--images", type=int, help="per epoch (CPU 384, GPU 10,000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare-with", help="a git revision of training.py to compare with")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    images = args.images or (384 if device.type == "cpu" else 10_000)
    print(f"device {describe(device)}, autocast {autocast_name(device)}, compiled "
          f"{args.compile}, {torch.get_num_threads()} thread(s), {images} images an epoch")
    loops = {"new": training}
    if args.compare_with:
        loops["old"] = old_training(args.compare_with)
    for depth in args.networks:
        trainers = {name: make_trainer(module, depth, images, device,
                                       args.compile and name == "new")
                    for name, module in loops.items()}
        for trainer in trainers.values():
            images_per_second(trainer, device)  # warm-up (and compilation)
        speeds: dict[str, list[float]] = {name: [] for name in trainers}
        for repeat in range(args.repeats):
            order = list(trainers) if repeat % 2 == 0 else list(trainers)[::-1]  # no order bias
            for name in order:
                speeds[name].append(images_per_second(trainers[name], device))
        medians = {name: statistics.median(values) for name, values in speeds.items()}
        line = f"ResNet-{depth}: {medians['new']:,.0f} training images/s"
        if "old" in medians:
            line += (f"; {args.compare_with}: {medians['old']:,.0f} images/s; new / old = "
                     f"{medians['new'] / medians['old']:.3f} (median of {args.repeats})")
        print(line, flush=True)


if __name__ == "__main__":
    main()

"""ImageNet runs of "Fix your classifier" (ResNet-50, DenseNet-169, ShuffleNet), on torchrun.

One GPU (or one CPU process)::

    python -m companion.fixed_classifier.imagenet --network resnet50 --classifier fixed

Eight GPUs on one node, or 2 x 8 on two nodes (the same command on each node)::

    torchrun --nproc_per_node 8 -m companion.fixed_classifier.imagenet --network resnet50
    torchrun --nnodes 2 --node_rank <0|1> --master_addr <node 0> --master_port 29500 \\
        --nproc_per_node 8 -m companion.fixed_classifier.imagenet --network resnet50

The data are `$COMPANION_IMAGENET_DIR` (`companion.data.imagenet`). The record lands in
`results/fixed-classifier-imagenet-<profile>/<config hash>.json`, the file the ImageNet curves
notebook and Table 1 read; a recorded config is skipped, and a killed run resumes from its last
complete epoch, on any number of processes.

Recipe (the ResNet ImageNet regime of the authors' convNet.pytorch): SGD, momentum 0.9, weight
decay 1e-4 (on alpha too), global batch 256, lr 0.1 divided by 10 at epochs 30 and 60 of 90.
The paper's ShuffleNet and DenseNet numbers come from their own papers' longer regimes; we train
all three with this one (pass --epochs and --lr-milestones to change it).

| profile | images (side) | training images | validation images | epochs |
|---|---|---|---|---|
| smoke | 32 (resize 36) | all of the folder (the tests' generated one) | all | 2 |
| quick | 160 (resize 182) | 128,000 (128 a class) | 10,000 | 16 |
| paper | 224 (resize 256) | 1,281,167 | 50,000 | 90 |
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from companion import checkpoints, provenance, records
from companion.data import imagenet as folders
from companion.fixed_classifier import distributed
from companion.fixed_classifier.devices import AUTO, autocast_name, describe
from companion.fixed_classifier.experiment import CLASSIFIERS, EXPERIMENT, _finite
from companion.fixed_classifier.layers import classifier_features
from companion.fixed_classifier.networks import NETWORKS as REGISTRY
from companion.fixed_classifier.networks import build, count_parameters
from companion.fixed_classifier.training import balanced_subset, training_settings
from companion.profiles import resolve_profile

NETWORKS = ("resnet50", "densenet169", "shufflenet")  # the paper's ImageNet networks
SUBSET_SEED = 0


@dataclass(frozen=True)
class ImageNetRunConfig:
    """Everything an ImageNet run depends on. Build it with `make_config`."""

    network: str
    classifier: str = "learned"
    scale: float | None = None
    dataset: str = "imagenet"
    profile: str = "paper"
    seed: int = 0
    epochs: int = 90
    batch_size: int = 256  # global: split between the processes
    learning_rate: float = 0.1
    lr_milestones: tuple[int, ...] = (30, 60)
    lr_decay: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    decay_scale_and_bias: bool = True
    image_size: int = 224
    resize_size: int = 256
    max_train_samples: int | None = None
    max_val_samples: int | None = None
    log_interval: int = 100
    data_source: str | None = None  # None: $COMPANION_IMAGENET_DIR
    device: str | None = None  # None: auto (GPU LOCAL_RANK, MPS or CPU), stated in the record
    weight_decay_stop: int | None = None


PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"epochs": 2, "batch_size": 8, "image_size": 32, "resize_size": 36,
              "log_interval": 1, "lr_milestones": (1,)},
    "quick": {"epochs": 16, "image_size": 160, "resize_size": 182, "max_train_samples": 128_000,
              "max_val_samples": 10_000, "log_interval": 50, "lr_milestones": (8, 12)},
    "paper": {},
}


def make_config(network: str = "resnet50", classifier: str = "learned",
                profile: str = "paper", seed: int = 0, **overrides: Any) -> ImageNetRunConfig:
    """The config of one ImageNet run: the profile's budget, the recipe, and any overrides."""
    if network not in REGISTRY:  # the paper's three, or any other of the registry (tests)
        raise ValueError(f"network must be one of {NETWORKS} (or {', '.join(REGISTRY)}), "
                         f"not {network!r}")
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {CLASSIFIERS}, not {classifier!r}")
    profile = resolve_profile(profile)
    settings = {**PROFILE_SETTINGS[profile], **overrides}
    if "lr_milestones" in settings:
        settings["lr_milestones"] = tuple(settings["lr_milestones"])
    if settings.get("device") == AUTO:
        settings["device"] = None
    if settings.get("data_source") is not None:
        settings["data_source"] = str(settings["data_source"])
    return ImageNetRunConfig(network=network, classifier=classifier, profile=profile, seed=seed,
                             **settings)


def record_folder(config: ImageNetRunConfig) -> str:
    """The experiment of the run's record, `fixed-classifier-<dataset>-<profile>`."""
    return f"{EXPERIMENT}-{config.dataset}-{config.profile}"


def record_path(config: ImageNetRunConfig) -> Path:
    return records.record_path(record_folder(config), config)


def checkpoint_path(config: ImageNetRunConfig) -> Path:
    return checkpoints.beside(record_path(config))


def _subset(samples: list[tuple[str, int]], size: int | None) -> list[tuple[str, int]]:
    labels = np.array([label for _, label in samples], dtype=np.int64)
    return [samples[i] for i in balanced_subset(labels, size, SUBSET_SEED)]


def datasets(config: ImageNetRunConfig) -> tuple[folders.ImageFolder, folders.ImageFolder]:
    """The training and validation image folders of `config`, with the recipe's transforms."""
    found = folders.scan(config.data_source)
    train = folders.ImageFolder(_subset(found.train, config.max_train_samples), found.classes,
                                folders.TrainTransform(config.image_size))
    val = folders.ImageFolder(_subset(found.val, config.max_val_samples), found.classes,
                              folders.EvalTransform(config.image_size, config.resize_size))
    return train, val


def build_model(config: ImageNetRunConfig, num_classes: int) -> torch.nn.Module:
    """The network with its classifier, weights drawn from `config.seed` (same on every rank)."""
    options: dict[str, Any] = {}
    if config.classifier != "learned":
        options["scale"] = config.scale
        if config.classifier == "fixed":
            options["seed"] = config.seed
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build(config.network, num_classes, config.classifier, **options)


def default_workers(context: distributed.Context) -> int:
    """DataLoader processes per training process: the node's cores shared, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    per_node = max(1, min(context.world_size, torch.cuda.device_count() or 1))
    return max(1, min(8, cores // per_node - 1))


@dataclass
class TrainedRun:
    """A finished run: its record (the same on every rank) and its trainer (model, checkpoint)."""

    record: dict[str, Any]
    trainer: distributed.DistributedTrainer


def train(config: ImageNetRunConfig, workers: int | None = None, compile: bool = False,
          after_epoch: Callable[[distributed.DistributedTrainer, int], None] | None = None
          ) -> TrainedRun:
    """Train one config on this process's share of the data; the checkpoint stays.

    Works alone and under torchrun (see the module docstring); only rank 0 writes the
    checkpoint and the log. `after_epoch(trainer, epoch)` runs after each epoch's checkpoint.
    """
    started = time.perf_counter()
    context = distributed.setup(config.device)
    train, val = datasets(config)
    model = build_model(config, len(train.classes))
    statistics = (folders.IMAGENET_MEAN, folders.IMAGENET_STD)
    trainer = distributed.DistributedTrainer(
        model, training_settings(config), train, val, statistics, context, checkpoint_path(config),
        workers=default_workers(context) if workers is None else workers, compile=compile)
    history = trainer.fit(after_epoch)
    epochs, bad_epochs = _finite(history.epochs)
    steps, bad_steps = _finite(history.steps)
    diverged = bad_epochs or bad_steps or len(epochs.get("epoch", [])) < config.epochs
    val_error = None if diverged else epochs["test_error"][-1]
    record = {
        "config": records.config_dict(config),
        "experiment": record_folder(config),
        "history": epochs,
        "steps": steps,
        "diverged": diverged,
        "test_error": val_error,  # the validation set is ImageNet's test set
        "test_accuracy": None if val_error is None else round(1 - val_error, 12),
        "n_train": len(train),
        "n_test": len(val),
        "classes": len(train.classes),
        "parameters": count_parameters(model),
        "classifier_features": classifier_features(model),
        "steps_per_epoch": math.ceil(len(train) / config.batch_size),
        "world_size": context.world_size,
        "workers_per_process": trainer.workers,
        "wall_time_s": round(time.perf_counter() - started, 3),  # of the last launch only
        "resumed_after_epoch": trainer.resumed_epochs,
        "autocast": autocast_name(context.device),
        "compiled": compile,
        **provenance.record_provenance(EXPERIMENT, describe(context.device)),
    }
    return TrainedRun(json.loads(json.dumps(record, allow_nan=False)), trainer)


def run(config: ImageNetRunConfig, **options: Any) -> dict[str, Any]:
    """Train one config (see `train`) and delete its checkpoint; the record, on every rank."""
    trained = train(config, **options)
    trained.trainer.finish()
    return trained.record


def run_and_record(config: ImageNetRunConfig, **options: Any) -> dict[str, Any]:
    """The record of `config`: read back if it exists, else trained and written by rank 0."""
    context = distributed.setup(config.device)
    path = record_path(config)
    existing = distributed.broadcast(path.is_file() and path.read_text(), context)
    if existing:
        return json.loads(existing)
    trained = train(config, **options)
    if context.is_main:
        records.write_json_atomic(path, trained.record)
    trained.trainer.finish()  # the checkpoint goes once the record is safe
    return trained.record


def recorded(configs: Sequence[ImageNetRunConfig]) -> list[dict[str, Any]]:
    """The records of those `configs` that have run, in order; trains nothing."""
    return [json.loads(p.read_text()) for p in map(record_path, configs) if p.is_file()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--network", default="resnet50", choices=list(REGISTRY),
                        help=f"the paper's: {', '.join(NETWORKS)}")
    parser.add_argument("--classifier", default="learned", choices=CLASSIFIERS)
    parser.add_argument("--profile", default="paper", help="smoke, quick or paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr-milestones", type=int, nargs="+")
    parser.add_argument("--batch-size", type=int, help="global batch (default 256)")
    parser.add_argument("--data-source", help=f"ImageNet folder (default ${folders.ENV_VARIABLE})")
    parser.add_argument("--device", help="auto (default), cpu, cuda")
    parser.add_argument("--workers", type=int, help="DataLoader processes per process")
    parser.add_argument("--compile", action="store_true", help="train through torch.compile")
    args = parser.parse_args(argv)
    overrides = {key: value for key, value in {
        "epochs": args.epochs, "lr_milestones": args.lr_milestones,
        "batch_size": args.batch_size, "data_source": args.data_source,
        "device": args.device}.items() if value is not None}
    try:
        config = make_config(args.network, args.classifier, args.profile, args.seed,
                             **overrides)
        folders.scan(config.data_source)  # a missing folder is said before any work
    except (ValueError, folders.DataError) as error:
        parser.error(str(error))
    try:
        record = run_and_record(config, workers=args.workers, compile=args.compile)
        if distributed.setup(config.device).is_main:
            print(json.dumps({"network": config.network, "classifier": config.classifier,
                              "test_accuracy": record["test_accuracy"],
                              "record": str(record_path(config))}))
    finally:
        distributed.teardown()


if __name__ == "__main__":
    main()

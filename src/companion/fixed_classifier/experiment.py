"""One CIFAR run of "Fix your classifier": a pure function of a frozen config, giving a record.

Recipe (the authors' CIFAR ResNet regime in convNet.pytorch, after He et al. 2016): SGD with
momentum 0.9, batch 128, weight decay 1e-4, learning rate 0.1 divided by 10 twice, 4-pixel pad +
random crop + flip, per-channel normalisation. The `paper` profile trains ResNet-56 for 164
epochs, divides the lr at epochs 81 and 122 (He et al.'s 32k and 48k of 64k iterations) and,
as the authors' regime does, sets the weight decay to 0 from epoch 122 (`weight_decay_stop`).
Shorter runs divide at 50% and 75% of their epochs and keep the weight decay throughout (as the
committed 30-epoch ResNet-20 runs did; `weight_decay_stop=<epoch>` turns it off from there).

Weight decay and the fixed classifier: the authors' optimizer decayed every parameter, alpha and
the classifier's bias included (their module has no special case, and the paper says alpha "was
regularized with the same weight decay coefficient used on the original classifier"). We do the
same by default; `decay_scale_and_bias=False` exempts alpha and b (not used by the notebooks).

Profiles (one code path, three budgets):

| profile | network | train images | test images | epochs | lr divided at |
|---|---|---|---|---|---|
| smoke | resnet8 | 256 | 512 | 2 | epoch 1 (by 100) |
| quick | resnet8 | 3,000 (300 a class) | 1,000 | 12 | epochs 6 and 9 |
| paper | resnet56 | 50,000 | 10,000 | 164 | epochs 81 and 122 |

Why ResNet-8 for quick: every CIFAR ResNet ends in the same N = 64 features and C = 10 classes,
so the classifier under study is identical in ResNet-8 and ResNet-56, and ResNet-8 trains
about 3 times faster than ResNet-20 on a CPU (measured on the project's 2-core machine:
~900 vs ~300 images/s per thread). With 3,000 images and 12 epochs the six runs of the four
notebooks took 400 s in all (the four notebooks run fresh with papermill, two runs at a time,
one thread each, on the 2-core machine shared with other jobs at load average 6): about 2
minutes a run when two run together, 1 minute alone. 10 epochs took 356 s, 15 epochs 603 s.

Records go to `results/fixed-classifier-<dataset>-<profile>/<config hash>.json` (`record_path`);
grids of configs, running and reading them, and the command line are in `sweep`.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from companion import checkpoints, provenance, records, validation
from companion.data import cifar
from companion.fixed_classifier.augment import statistics_for
from companion.fixed_classifier.devices import AUTO, autocast_name, describe, resolve_device
from companion.fixed_classifier.layers import classifier_features, replace_classifier
from companion.fixed_classifier.networks import NETWORKS, build, count_parameters
from companion.fixed_classifier.resnet import cifar_resnet
from companion.fixed_classifier.training import Trainer, balanced_subset, training_settings
from companion.profiles import resolve_profile

EXPERIMENT = "fixed-classifier"
CLASSIFIERS = ("learned", "fixed", "hadamard")
PAPER_EPOCHS = 164
PAPER_MILESTONES = (81, 122)
SUBSET_SEED = 0  # the training and test subsets are the same for every run of a profile


@dataclass(frozen=True)
class CIFARRunConfig:
    """Everything a run depends on. Build it with `make_config`."""

    network: str
    classifier: str = "learned"  # "learned", "fixed" (random orthonormal Q) or "hadamard"
    scale: float | None = None  # a fixed alpha; None: alpha is learned
    dataset: str = "cifar10"
    profile: str = "paper"
    seed: int = 0
    epochs: int = PAPER_EPOCHS
    batch_size: int = 128
    learning_rate: float = 0.1
    lr_milestones: tuple[int, ...] = PAPER_MILESTONES
    lr_decay: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    decay_scale_and_bias: bool = True
    max_train_samples: int | None = None  # a fixed class-balanced subset (None: all)
    max_test_samples: int | None = None
    log_interval: int = 50  # optimizer steps between two logs of the classifier's scale
    init_scale: float | None = None  # initial learned alpha (None: the layer's default)
    data_source: str | None = None  # archive or directory for `cifar.load` (None: default)
    # torch device, e.g. "cuda"; None is "auto" (CUDA, then MPS, then the CPU), resolved at run
    # time and stated in the record's "device", so records made on a CPU keep their hashes
    device: str | None = None
    weight_decay_stop: int | None = None  # 0-based epoch from which weight decay is 0 (None: never)

    def __post_init__(self) -> None:
        validation.check_cifar_run(self)  # one clear error per bad field (companion.validation)


PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"network": "resnet8", "epochs": 2, "max_train_samples": 256,
              "max_test_samples": 512, "log_interval": 1},
    "quick": {"network": "resnet8", "epochs": 12, "max_train_samples": 3000,
              "max_test_samples": 1000, "log_interval": 2},
    "paper": {"network": "resnet56", "epochs": PAPER_EPOCHS, "max_train_samples": None,
              "max_test_samples": None, "log_interval": 50},
}


def default_milestones(epochs: int) -> tuple[int, ...]:
    """Epochs (0-based) from which the lr is divided: the authors' 81, 122 for 164 epochs."""
    if epochs == PAPER_EPOCHS:
        return PAPER_MILESTONES
    return (max(1, epochs // 2), max(1, (3 * epochs) // 4))  # a 1-epoch run starts at 0.1


def default_weight_decay_stop(epochs: int) -> int | None:
    """The authors' regime sets weight decay to 0 from epoch 122 of 164; other lengths: never."""
    return PAPER_MILESTONES[-1] if epochs == PAPER_EPOCHS else None


def make_config(
    classifier: str = "learned",
    scale: float | None = None,
    profile: str = "paper",
    seed: int = 0,
    dataset: str = "cifar10",
    **overrides: Any,
) -> CIFARRunConfig:
    """The config of one run: the profile's budget, the paper's recipe, and any overrides."""
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {CLASSIFIERS}, not {classifier!r}")
    if scale is not None and classifier == "learned":
        raise ValueError("a fixed scale needs classifier='fixed' or 'hadamard'")
    profile = resolve_profile(profile)
    settings = {**PROFILE_SETTINGS[profile], **overrides}
    validation.check({"epochs": settings["epochs"]}, validation.CIFAR_RUN_RULES)  # milestones
    settings.setdefault("lr_milestones", default_milestones(settings["epochs"]))
    settings["lr_milestones"] = tuple(settings["lr_milestones"])
    settings.setdefault("weight_decay_stop", default_weight_decay_stop(settings["epochs"]))
    if settings.get("device") == AUTO:
        settings["device"] = None  # "auto" and the default are one config, one hash
    config = CIFARRunConfig(classifier=classifier, scale=None if scale is None else float(scale),
                            dataset=dataset, profile=profile, seed=seed, **settings)
    network_depth(config.network)  # validates the name
    return config


def network_depth(name: str) -> int | None:
    """Depth of a CIFAR ResNet name "resnet<6n+2>" not in the registry (e.g. resnet8), else None.

    Registry names (`networks.NETWORKS`) return None; anything else raises ValueError.
    """
    if name in NETWORKS:
        return None
    match = re.fullmatch(r"resnet(\d+)", name)
    if match and (int(match[1]) - 2) % 6 == 0 and int(match[1]) >= 8:
        return int(match[1])
    raise ValueError(f"unknown network {name!r}: use one of {', '.join(NETWORKS)} or a CIFAR "
                     "ResNet 'resnet<6n+2>' such as resnet8")


def build_model(config: CIFARRunConfig, num_classes: int) -> nn.Module:
    """The network with its classifier; weights drawn from the global RNG (seed it first)."""
    options: dict[str, Any] = {}
    if config.classifier != "learned":
        options["scale"] = config.scale
        if config.classifier == "fixed":
            options["seed"] = config.seed  # the fixed Q
        if config.init_scale is not None:
            options["init_scale"] = config.init_scale
    depth = network_depth(config.network)
    if depth is None:
        return build(config.network, num_classes, config.classifier, **options)
    model = cifar_resnet(depth, num_classes)
    if config.classifier != "learned":
        replace_classifier(model, config.classifier, **options)
    return model


def _finite(value: Any) -> tuple[Any, bool]:
    """`value` with every non-finite float replaced by None, and whether one was found."""
    if isinstance(value, float):
        return (value, False) if math.isfinite(value) else (None, True)
    if isinstance(value, dict):
        pairs = {k: _finite(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(bad for _, bad in pairs.values())
    if isinstance(value, (list, tuple)):
        items = [_finite(v) for v in value]
        return [v for v, _ in items], any(bad for _, bad in items)
    return value, False


def record_folder(config: CIFARRunConfig) -> str:
    """The experiment of the run's record, `fixed-classifier-<dataset>-<profile>`: its folder
    under `results/` (`sweep.experiment_name` checks that a grid has one)."""
    return f"{EXPERIMENT}-{config.dataset}-{config.profile}"


def record_path(config: CIFARRunConfig) -> Path:
    """`results/<record_folder>/<config hash>.json`: where the run's record is stored."""
    return records.record_path(record_folder(config), config)


def checkpoint_path(config: CIFARRunConfig) -> Path:
    """Where a run keeps its state between epochs: beside its record, `<hash>.checkpoint.pt`."""
    return checkpoints.beside(record_path(config))


def training_device(config: CIFARRunConfig) -> torch.device:
    """The device of `config` (None: "auto"), or a ValueError that says what to do instead."""
    return resolve_device(config.device)


def run(config: CIFARRunConfig, compile: bool = False) -> dict[str, Any]:
    """Train and evaluate one config; return its record (JSON-ready, no NaN).

    A run saves a checkpoint after every epoch (`checkpoint_path`), so a killed sweep started
    again continues each unfinished run from its last complete epoch instead of from scratch.
    `compile=True` trains through `torch.compile` (same weights, a run-time choice, not part of
    the config); the record states it.
    """
    started = time.perf_counter()
    device = training_device(config)
    data = cifar.load(config.dataset, source=config.data_source)
    train = balanced_subset(data.train_y, config.max_train_samples, SUBSET_SEED)
    test = balanced_subset(data.test_y, config.max_test_samples, SUBSET_SEED)
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left as it was
        torch.manual_seed(config.seed)
        model = build_model(config, data.num_classes)
    trainer = Trainer(model, training_settings(config),
                      (data.train_x[train], data.train_y[train]),
                      (data.test_x[test], data.test_y[test]),
                      statistics_for(config.dataset, data.train_x),
                      checkpoint=checkpoint_path(config), device=device, compile=compile)
    result = trainer.fit()
    history, bad_history = _finite(result.history)
    steps, bad_steps = _finite(result.steps)
    diverged = result.diverged or bad_history or bad_steps
    test_error = None if diverged or not history["test_error"] else history["test_error"][-1]
    test_accuracy = None if test_error is None else round(1 - test_error, 12)  # no 0.40299999...
    record = {
        "config": records.config_dict(config),
        "experiment": record_folder(config),
        "history": history,
        "steps": steps,
        "diverged": diverged,
        "test_error": test_error,
        "test_accuracy": test_accuracy,
        # which test images were right (records.pack_bits): pairs two runs image by image
        "test_correct": (records.pack_bits(trainer.test_correct)
                         if test_error is not None and trainer.test_correct is not None
                         else None),
        "n_train": len(train),
        "n_test": len(test),
        "classes": list(data.classes),
        "parameters": count_parameters(model),
        "classifier_features": classifier_features(model),
        "steps_per_epoch": math.ceil(len(train) / config.batch_size),
        "wall_time_s": round(time.perf_counter() - started, 3),  # of the last process only
        "resumed_after_epoch": trainer.resumed_epochs,  # epochs read from a checkpoint
        "autocast": autocast_name(device),  # "bfloat16" on CUDA, None: float32
        "compiled": compile,
        **provenance.record_provenance(EXPERIMENT, describe(device)),
    }
    return json.loads(json.dumps(record, allow_nan=False))  # as read back from its file


def group_key(config: CIFARRunConfig) -> CIFARRunConfig:
    """Every run trains alone (nothing is shared between configs)."""
    return config


def run_group(configs: Sequence[CIFARRunConfig], threads: int | None = None,
              compile: bool = False) -> list[dict[str, Any]]:
    """Records of `configs`, in order; `threads` overrides the torch threads of the worker."""
    if threads is not None:
        torch.set_num_threads(threads)
    return [run(config, compile=compile) for config in configs]

"""One UCI run of the class-lr paper: a pure function of a frozen config, returning a record.

Protocol (section 4 of the paper): the Table 1 architecture of the data set, plain SGD with
learning rate 0.01, 100 epochs, no early stopping, cross-entropy; the test accuracy after the
last epoch is the result.

Batch size (the paper does not give one): 32. A small batch keeps the number of SGD steps at
lr 0.01 large enough on the small data sets (car's 735 training rows make 23 steps an epoch);
larger batches need a larger learning rate, which the paper rules out. It is a config field.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from companion import records
from companion.class_lr.models import SelfNormalizingMLP
from companion.class_lr.registry import ACTIVATIONS, architecture
from companion.data import uci
from companion.profiles import resolve_profile
from companion.statistics import neuron_specialization

EXPERIMENT = "class-lr-uci"


@dataclass(frozen=True)
class UCIRunConfig:
    """Everything a UCI run depends on. Build it with `make_config`."""

    dataset: str
    activation: str
    layers: int
    hidden: int
    shape: str
    dropout: float
    method: str = "baseline"
    profile: str = "paper"
    seed: int = 0
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 0.01
    split: str = "paper"
    fold: int = 0
    # Quick and smoke profiles cap the training rows seen per epoch (None: all of them).
    max_train_samples: int | None = None


# Budget of each profile. quick: 15 epochs, at most 2,000 training rows an epoch (a seeded
# subsample drawn anew each epoch), and only data sets whose run costs at most
# QUICK_MAX_MEGAFLOPS of training compute; smoke: 2 epochs on 256 rows of 3 small sets.
PROFILE_SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"epochs": 2, "max_train_samples": 256},
    "quick": {"epochs": 15, "max_train_samples": 2000},
    "paper": {"epochs": 100, "max_train_samples": None},
}
SMOKE_DATASETS = ("car", "titanic", "led-display")
QUICK_MAX_TERAFLOPS = 0.5


def make_config(
    dataset: str,
    activation: str,
    method: str = "baseline",
    profile: str = "paper",
    seed: int = 0,
    **overrides: Any,
) -> UCIRunConfig:
    """The config of one run: Table 1 architecture + profile budget + any overrides."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, not {activation!r}")
    if method != "baseline":
        raise NotImplementedError(f"method {method!r}: only 'baseline' is implemented so far")
    profile = resolve_profile(profile)
    arch = architecture(dataset)
    config = UCIRunConfig(
        dataset=arch.dataset,
        activation=activation,
        layers=arch.layers,
        hidden=arch.hidden,
        shape=arch.shape,
        dropout=arch.dropout,
        method=method,
        profile=profile,
        seed=seed,
        **PROFILE_SETTINGS[profile],
    )
    return replace(config, **overrides)


def build_model(config: UCIRunConfig, n_features: int, n_classes: int) -> SelfNormalizingMLP:
    return SelfNormalizingMLP(
        n_features,
        n_classes,
        layers=config.layers,
        hidden=config.hidden,
        shape=config.shape,
        activation=config.activation,
        dropout=config.dropout,
    )


def training_teraflops(
    config: UCIRunConfig, n_train: int, n_features: int, n_classes: int
) -> float:
    """Approximate training compute of a run: 6 flops per weight per sample (fwd + bwd)."""
    model = build_model(config, n_features, n_classes)
    weights = sum(p.numel() for p in model.parameters())
    rows = min(n_train, config.max_train_samples or n_train)
    return 6 * weights * rows * config.epochs / 1e12


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])


def _specialization(model: SelfNormalizingMLP, x: torch.Tensor, y: np.ndarray, k: int) -> dict:
    """Table 3 statistic per hidden layer and over all hidden neurons (weighted by width)."""
    model.eval()
    per_layer = [neuron_specialization(a.numpy(), y, k) for a in model.hidden_activations(x)]
    widths = [layer.out_features for layer in model.hidden_layers]
    overall = float(np.dot(per_layer, widths) / sum(widths))
    return {"per_layer": per_layer, "overall": overall}


def run(config: UCIRunConfig) -> dict[str, Any]:
    """Train and evaluate one config; return its record (see `records`)."""
    start = time.perf_counter()
    data = uci.load(config.dataset, seed=config.seed, split=config.split, fold=config.fold)
    torch.manual_seed(config.seed)  # weights and dropout masks
    order = torch.Generator().manual_seed(config.seed)  # minibatch order
    model = build_model(config, data.n_features, data.n_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate)
    x_train, y_train = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    x_val, x_test = torch.from_numpy(data.val.x), torch.from_numpy(data.test.x)
    rows = min(len(y_train), config.max_train_samples or len(y_train))
    history: dict[str, list[float]] = {"train_loss": [], "val_accuracy": [], "test_accuracy": []}
    diverged = False
    for _ in range(config.epochs):
        model.train()
        permutation = torch.randperm(len(y_train), generator=order)[:rows]
        total, count = 0.0, 0
        for batch in permutation.split(config.batch_size):
            loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            count += len(batch)
        if not math.isfinite(total):
            diverged = True
            break
        history["train_loss"].append(total / count)
        history["val_accuracy"].append(_accuracy(model, x_val, data.val.y))
        history["test_accuracy"].append(_accuracy(model, x_test, data.test.y))
    record: dict[str, Any] = {
        "config": records.config_dict(config),
        "experiment": EXPERIMENT,
        "history": history,
        "diverged": diverged,
        "n_train": len(y_train),
        "n_val": len(data.val),
        "n_test": len(data.test),
        "n_classes": data.n_classes,
    }
    if diverged:
        record.update(test_accuracy=None, val_accuracy=None, test_correct=None)
        record["neuron_specialization"] = None
    else:
        correct = (_predict(model, x_test).numpy() == data.test.y).astype(np.uint8)
        record.update(
            test_accuracy=float(correct.mean()),
            val_accuracy=history["val_accuracy"][-1],
            # one character per test sample, "1" = correctly classified (McNemar's test)
            test_correct="".join(map(str, correct)),
            neuron_specialization=_specialization(model, x_test, data.test.y, data.n_classes),
        )
    record.update(
        wall_time_s=round(time.perf_counter() - start, 3),
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        git_commit=records.git_commit(),
    )
    return record


def _accuracy(model: nn.Module, x: torch.Tensor, y: np.ndarray) -> float:
    return float((_predict(model, x).numpy() == y).mean()) if len(y) else float("nan")

"""Training of one UCI run of the class-lr paper, an epoch at a time (`Training`): plain SGD
and class-based learning rates, with checkpoints that let the class-lr cutoffs branch from one
shared prefix and let a killed run resume after its last complete epoch (`on_epoch_end`). The
config and the record are `experiment`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from companion.class_lr.models import SelfNormalizingMLP
from companion.class_lr.optimizer import ClassLR, managed_layers
from companion.data import uci
from companion.statistics import neuron_specialization

if TYPE_CHECKING:
    from companion.class_lr.experiment import UCIRunConfig


def build_model(config: UCIRunConfig, n_features: int, n_classes: int) -> SelfNormalizingMLP:
    return SelfNormalizingMLP(
        n_features,
        n_classes,
        layers=config.layers,
        hidden=config.hidden,
        shape=config.shape,
        activation=config.activation,
        dropout=config.dropout,
        init=config.init or "lecun",
    )


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """Predicted classes of the rows of `x`, on the CPU (whatever device the model is on)."""
    model.eval()
    return torch.cat([model(x[i : i + batch]).argmax(1).cpu() for i in range(0, len(x), batch)])


def specialization(model: SelfNormalizingMLP, x: torch.Tensor, y: np.ndarray, k: int) -> dict:
    """Table 3 statistic per hidden layer and over all hidden neurons (weighted by width)."""
    model.eval()
    per_layer = [neuron_specialization(a.cpu().numpy(), y, k)
                 for a in model.hidden_activations(x)]
    widths = [layer.out_features for layer in model.hidden_layers]
    overall = float(np.dot(per_layer, widths) / sum(widths))
    return {"per_layer": per_layer, "overall": overall}


class Training:
    """Model, data and random state of one run, advanced an epoch at a time.

    Everything random comes from two seeded sources (the global torch RNG for weights and
    dropout masks, `order` for the minibatch order), so `checkpoint()`/`restore()` let the
    three class-lr cutoffs branch from one shared prefix with exactly the numbers that three
    runs from scratch would give.
    """

    def __init__(self, config: UCIRunConfig, device: torch.device | str = "cpu") -> None:
        self.config, self.device = config, torch.device(device)
        self.data = uci.load(config.dataset, seed=config.seed, split=config.split,
                             fold=config.fold,
                             original_test_scaling=config.original_test_scaling or "as_shipped")
        torch.manual_seed(config.seed)  # weights and dropout masks (CUDA's generator too)
        self.order = torch.Generator().manual_seed(config.seed)  # minibatch order, on the CPU
        # Weights are drawn on the CPU and then moved: the same initial net on every device.
        model = build_model(config, self.data.n_features, self.data.n_classes)
        self.model = model.to(self.device)
        on_device = lambda array: torch.from_numpy(array).to(self.device)  # noqa: E731
        self.x_train, self.y_train = on_device(self.data.train.x), on_device(self.data.train.y)
        self.x_val, self.x_test = on_device(self.data.val.x), on_device(self.data.test.x)
        n = len(self.y_train)
        self.rows = min(n, config.max_train_samples or n)
        # No per-epoch test accuracy: nothing reads it, and on the largest nets evaluating the
        # test rows took a quarter of an epoch (chess-krvk: 18 s of 70-80). The record's test
        # accuracy is computed once, after training (`experiment.make_record`).
        self.history: dict[str, list[float]] = {"train_loss": [], "val_accuracy": []}
        self.diverged = False
        self.initial_train_loss = _mean_loss(self.model, self.x_train, self.y_train)
        self.first_nonfinite: dict[str, int] | None = None  # where the loss first overflowed
        self.multiplier_trace: list[dict[str, Any]] = []  # class-lr: mu before every reset
        # Called after every complete epoch with a function that returns the state to save
        # (`checkpoint()` as a resumed run needs it); the caller decides whether to call it.
        self.on_epoch_end: Callable[[Callable[[], dict[str, Any]]], None] | None = None

    @property
    def epoch(self) -> int:
        return len(self.history["train_loss"])

    def run_epoch(self, step: Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]
                  ) -> None:
        """One epoch; `step(x, y, batch_index, n_batches)` updates the model, returns the loss."""
        self.model.train()
        permutation = torch.randperm(len(self.y_train), generator=self.order)[: self.rows]
        batches = permutation.to(self.device).split(self.config.batch_size)
        total = 0.0
        for index, batch in enumerate(batches):
            loss = step(self.x_train[batch], self.y_train[batch], index, len(batches))
            value = loss.item()
            if not math.isfinite(value) and self.first_nonfinite is None:
                self.first_nonfinite = {"epoch": self.epoch + 1, "batch": index,
                                        "batches": len(batches)}
            total += value * len(batch)
        if not math.isfinite(total):
            self.diverged = True
            return
        self.history["train_loss"].append(total / self.rows)
        self.history["val_accuracy"].append(_accuracy(self.model, self.x_val, self.data.val.y))

    def train_sgd(self, until_epoch: int) -> None:
        """Plain SGD (the baseline, and class-lr after its cutoff) up to `until_epoch`."""
        optimizer = torch.optim.SGD(self.model.parameters(), lr=self.config.learning_rate)

        def step(x: torch.Tensor, y: torch.Tensor, index: int, n_batches: int) -> torch.Tensor:
            loss = nn.functional.cross_entropy(self.model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss.detach()

        while self.epoch < until_epoch and not self.diverged:
            self.run_epoch(step)
            self._epoch_done()

    def train_class_lr(
        self, until_epoch: int, alpha_mu: float, on_step: Callable[..., None] | None = None
    ) -> ClassLR:
        """Class-based learning rates up to `until_epoch`, mu reset to 1 every half epoch.

        `on_step(optimizer, epoch, batch_index, n_batches)`, if given, sees every step.
        """
        optimizer = ClassLR(list(self.model.parameters()),
                            managed_layers(self.model.hidden_layers), self.data.n_classes,
                            lr=self.config.learning_rate, alpha_mu=alpha_mu,
                            statistic=self.config.statistic or "per_sample")

        stepped = False  # a fresh optimizer has nothing to report before its first step

        def trace(index: int) -> None:
            """Log mu as it grew over the half epoch that a reset (or the end) closes."""
            if not stepped:
                return
            if index == 0:  # start of an epoch: closes the second half of the one before
                epoch, half = self.epoch, 2
            elif index > 0:  # middle of the running epoch: closes its first half
                epoch, half = self.epoch + 1, 1
            else:  # end of the class-lr phase (a diverged epoch never completed)
                epoch, half = self.epoch + int(self.diverged), 2
            self.multiplier_trace.append({"epoch": epoch, "half": half,
                                          **optimizer.multiplier_summary()})

        def step(x: torch.Tensor, y: torch.Tensor, index: int, n_batches: int) -> torch.Tensor:
            nonlocal stepped
            if index in (0, (n_batches + 1) // 2):
                trace(index)
                optimizer.reset()
            loss = nn.functional.cross_entropy(self.model(x), y)
            optimizer.step(loss, y)
            stepped = True
            if on_step is not None:
                on_step(optimizer, self.epoch, index, n_batches)
            return loss.detach()

        def closing_trace() -> list[dict[str, Any]]:
            # A resumed class-lr phase starts with mu reset and logs nothing at its first
            # step, so the state it resumes from carries the entry that step would have logged.
            return [{"epoch": self.epoch, "half": 2, **optimizer.multiplier_summary()}]

        optimizer.attach()
        try:
            while self.epoch < until_epoch and not self.diverged:
                self.run_epoch(step)
                self._epoch_done(closing_trace)
            trace(-1)
        finally:
            optimizer.detach()
        return optimizer

    def _epoch_done(self, closing_trace: Callable[[], list[dict[str, Any]]] | None = None
                    ) -> None:
        """Offer the state after a complete epoch to `on_epoch_end` (not after a divergence)."""
        if self.on_epoch_end is None or self.diverged:
            return

        def state() -> dict[str, Any]:
            saved = self.checkpoint()
            if closing_trace is not None:
                saved["multiplier_trace"] += closing_trace()
            return saved

        self.on_epoch_end(state)

    def checkpoint(self) -> dict[str, Any]:
        """Everything a run's future depends on, copied (`restore` sets it back)."""
        return {
            "model": copy.deepcopy(self.model.state_dict()),
            "order": self.order.get_state(),
            "torch_rng": torch.get_rng_state(),
            # dropout masks of a CUDA run come from the device's generator
            "device_rng": (torch.cuda.get_rng_state(self.device)
                           if self.device.type == "cuda" else None),
            "history": copy.deepcopy(self.history),
            "diverged": self.diverged,
            "first_nonfinite": copy.deepcopy(self.first_nonfinite),
            "multiplier_trace": copy.deepcopy(self.multiplier_trace),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.order.set_state(state["order"])
        torch.set_rng_state(state["torch_rng"])
        if state["device_rng"] is not None:
            torch.cuda.set_rng_state(state["device_rng"], self.device)
        self.history = copy.deepcopy(state["history"])
        self.diverged = state["diverged"]
        self.first_nonfinite = copy.deepcopy(state["first_nonfinite"])
        self.multiplier_trace = copy.deepcopy(state["multiplier_trace"])


@torch.no_grad()
def _mean_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy over (x, y) in eval mode (no dropout, no random numbers drawn)."""
    model.eval()
    return float(nn.functional.cross_entropy(model(x), y))


def _accuracy(model: nn.Module, x: torch.Tensor, y: np.ndarray) -> float:
    return float((predict(model, x).numpy() == y).mean()) if len(y) else float("nan")

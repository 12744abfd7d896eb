"""The CIFAR training loop of the fixed-classifier runs: SGD with step decay, per-step logging.

What is measured, and how (the quantities of the paper's Figures 1-3):

- training loss and error: running averages over the epoch's minibatches, with augmentation and
  batch-norm in training mode, as the authors' code logs them;
- test ("validation" in the paper's Figure 2) loss and error after every epoch, in eval mode;
- the classifier's scale: alpha of a fixed classifier, and for a learned `nn.Linear(N, C)` the
  Frobenius norm of W and the mean of its C per-class row norms ||w_i|| (the fixed classifier's
  rows alpha * q_i all have norm alpha, so the two are comparable up to the feature norm);
- the mean norm ||x|| of the classifier's input features over the epoch: the learned model's
  logits scale with ||w_i|| * ||x||, the fixed model's with alpha alone (x is normalised).

The scale is logged at step 0 and every `log_interval` optimizer steps, and after every epoch.

Speed on a CPU: the model and its inputs are in channels-last memory format, which made a
1-thread training step of ResNet-8 1.5x faster (about 600 -> 900 images/s) and of ResNet-20
1.35x faster (about 235 -> 310 images/s) on the project's machine; augmentation of a batch of
128 takes about 8 ms, against about 140 ms for the step itself.

The GPU fast path (`devices`): images stay on the device and are augmented there; on CUDA the
steps run under bf16 autocast; `compile=True` trains through `torch.compile`. Nothing waits for
the device inside an epoch except at log points (every `log_interval` steps): the loss's
finiteness is accumulated on the device and checked there and at the end of the epoch.

Kept whole (over 300 lines): one training loop and the settings it reads.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion import checkpoints
from companion.fixed_classifier.augment import normalize, random_crop_flip, to_channels_first
from companion.fixed_classifier.devices import autocast, maybe_compile
from companion.fixed_classifier.layers import find_classifier

EVAL_BATCH = 1000


def balanced_subset(labels: np.ndarray, size: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of `size` samples, as equal per class as possible, drawn with `seed`.

    Classes take turns in a seeded random order, so 256 of CIFAR-10's images are 25 or 26 per
    class. `size=None` (or at least the number of samples) keeps everything.
    """
    count = len(labels)
    if size is None or size >= count:
        return np.arange(count)
    order = np.random.default_rng(seed).permutation(count)
    shuffled = labels[order]
    rank = np.empty(count, dtype=np.int64)  # position of each sample within its class
    for label in np.unique(shuffled):
        members = shuffled == label
        rank[members] = np.arange(members.sum())
    chosen = order[np.lexsort((np.arange(count), rank))[:size]]
    return np.sort(chosen)


def classifier_scale(model: nn.Module) -> dict[str, float]:
    """The scale of the model's classifier: alpha, or the learned weight's norms."""
    _, layer = find_classifier(model)
    if isinstance(layer, nn.Linear):
        weight = layer.weight.detach()  # (C, N)
        return {"weight_norm": float(weight.norm()),
                "mean_row_norm": float(weight.norm(dim=1).mean())}
    return {"alpha": float(layer.alpha.detach())}


@dataclass
class TrainingSettings:
    """The optimisation recipe (fields of the run config that the loop needs)."""

    epochs: int
    batch_size: int
    learning_rate: float
    lr_milestones: tuple[int, ...]
    lr_decay: float
    momentum: float
    weight_decay: float
    decay_scale_and_bias: bool
    log_interval: int
    seed: int
    augment: bool = True
    weight_decay_stop: int | None = None  # 0-based epoch from which weight decay is 0


def training_settings(config: Any) -> TrainingSettings:
    """The recipe of a CIFAR or ImageNet run config (its fields of the same names)."""
    return TrainingSettings(
        epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
        lr_milestones=config.lr_milestones, lr_decay=config.lr_decay, momentum=config.momentum,
        weight_decay=config.weight_decay, decay_scale_and_bias=config.decay_scale_and_bias,
        log_interval=config.log_interval, seed=config.seed,
        weight_decay_stop=config.weight_decay_stop)


def weight_decay_at(settings: TrainingSettings, epoch: int, weight_decay: float) -> float:
    """A group's weight decay in 0-based `epoch`: 0 from `weight_decay_stop` on."""
    stop = settings.weight_decay_stop
    return 0.0 if stop is not None and epoch >= stop else weight_decay


@dataclass
class TrainingResult:
    """Per-epoch history, per-step log of the classifier's scale, and whether it diverged."""

    history: dict[str, list[float]] = field(default_factory=dict)
    steps: dict[str, list[float]] = field(default_factory=dict)
    diverged: bool = False


def parameter_groups(model: nn.Module, weight_decay: float,
                     decay_scale_and_bias: bool) -> list[dict[str, Any]]:
    """SGD parameter groups: weight decay on everything, or not on the classifier's alpha and b.

    The authors' optimizer decayed every parameter (their fixed-classifier module has no special
    case), which is the default here (`decay_scale_and_bias=True`).
    """
    if decay_scale_and_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad],
                 "weight_decay": weight_decay}]
    _, layer = find_classifier(model)
    exempt = [p for name, p in layer.named_parameters() if name in ("alpha", "bias")]
    exempt_ids = {id(p) for p in exempt}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in exempt_ids]
    return [{"params": rest, "weight_decay": weight_decay},
            {"params": exempt, "weight_decay": 0.0}]


def learning_rate_at(settings: TrainingSettings, epoch: int) -> float:
    """lr of 0-based `epoch`: divided by 1/lr_decay at each milestone reached."""
    passed = sum(epoch >= milestone for milestone in settings.lr_milestones)
    return float(f"{settings.learning_rate * settings.lr_decay**passed:.12g}")  # 0.001, not ...02


class Trainer:
    """Trains `model` on uint8 images (N, H, W, 3) and evaluates on the test images each epoch.

    With a `checkpoint` path, the state after every epoch (weights, momentum, the data-order
    generator, the history so far) is saved there atomically, and `fit` continues from it: a
    run killed after epoch e resumes at epoch e + 1 and ends with the same weights and history
    as a run that was never stopped (tested). `fit` deletes the file once the last epoch is done.
    """

    def __init__(self, model: nn.Module, settings: TrainingSettings,
                 train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                 statistics: tuple[tuple[float, ...], tuple[float, ...]],
                 checkpoint: Path | None = None, device: torch.device | str = "cpu",
                 compile: bool = False) -> None:
        self.device = torch.device(device)
        self.model = model.to(device=self.device, memory_format=torch.channels_last)
        self.forward = maybe_compile(self.model, compile)  # same parameters as self.model
        self.settings = settings
        self.checkpoint = checkpoint
        self.resumed_epochs = 0  # epochs restored from the checkpoint by `fit`
        self.test_correct: np.ndarray | None = None  # of the last `evaluate`
        # uint8 images live on the training device (CIFAR-10: 150 MB), batches are cut there
        self.train_images = to_channels_first(train[0]).to(self.device)  # (N, C, H, W) uint8
        self.train_labels = torch.from_numpy(train[1]).to(self.device)
        self.test_images = to_channels_first(test[0]).to(self.device)
        self.test_labels = torch.from_numpy(test[1]).to(self.device)
        self.statistics = statistics
        # order + augmentation; a CUDA generator draws other numbers than a CPU one
        self.generator = torch.Generator(self.device).manual_seed(settings.seed)
        self.optimizer = torch.optim.SGD(
            parameter_groups(model, settings.weight_decay, settings.decay_scale_and_bias),
            lr=settings.learning_rate, momentum=settings.momentum)
        self.weight_decays = [group["weight_decay"] for group in self.optimizer.param_groups]
        self.step = 0
        self.result = TrainingResult(
            history={key: [] for key in ("epoch", "learning_rate", "train_loss", "train_error",
                                         "test_loss", "test_error", "feature_norm", "seconds")},
            steps={"step": []},
        )
        self._feature_norms: list[Tensor] = []
        _, classifier = find_classifier(model)
        classifier.register_forward_pre_hook(self._record_feature_norm)
        self._log_steps()

    def _record_feature_norm(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        if module.training:
            self._feature_norms.append(inputs[0].detach().norm(dim=-1).mean())

    def _log_steps(self) -> None:
        self.result.steps["step"].append(self.step)
        for key, value in classifier_scale(self.model).items():
            self.result.steps.setdefault(key, []).append(value)

    def _inputs(self, images: Tensor, augment: bool) -> Tensor:
        """uint8 (B, C, H, W) -> normalised float32 (B, C, H, W), channels-last."""
        if augment:
            images = random_crop_flip(images, self.generator)
        else:
            images = images.contiguous(memory_format=torch.channels_last)
        return normalize(images, *self.statistics)

    def train_epoch(self, epoch: int) -> bool:
        """One epoch of SGD; False when the loss stopped being finite (the run diverged)."""
        settings = self.settings
        for group, weight_decay in zip(self.optimizer.param_groups, self.weight_decays):
            group["lr"] = learning_rate_at(settings, epoch)
            group["weight_decay"] = weight_decay_at(settings, epoch, weight_decay)
        self.model.train()
        self._feature_norms.clear()
        order = torch.randperm(len(self.train_labels), generator=self.generator,
                               device=self.device)
        total_loss = torch.zeros((), device=self.device)
        errors = torch.zeros((), dtype=torch.int64, device=self.device)
        finite = torch.ones((), dtype=torch.bool, device=self.device)  # no sync per step
        for batch in order.split(settings.batch_size):
            images = self._inputs(self.train_images[batch], settings.augment)
            labels = self.train_labels[batch]
            with autocast(self.device):
                logits = self.forward(images)
            loss = F.cross_entropy(logits.float(), labels)
            finite &= torch.isfinite(loss)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            total_loss += loss.detach() * len(batch)
            errors += (logits.detach().argmax(1) != labels).sum()
            if self.step % settings.log_interval == 0:
                if not finite:  # the log point's sync: stop at the first one after a NaN
                    return False
                self._log_steps()
        if not finite:
            return False
        count = len(self.train_labels)
        self._append(train_loss=float(total_loss) / count, train_error=int(errors) / count,
                     feature_norm=float(torch.stack(self._feature_norms).mean()))
        return True

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """(mean cross-entropy, error rate) on the test images, in eval mode. Keeps which
        images were right in `test_correct` (bool, one per test image), so that two runs on
        the same images can be compared image by image."""
        self.model.eval()
        total_loss, correct = 0.0, []
        for start in range(0, len(self.test_labels), EVAL_BATCH):
            images = self._inputs(self.test_images[start:start + EVAL_BATCH], augment=False)
            labels = self.test_labels[start:start + EVAL_BATCH]
            with autocast(self.device):
                logits = self.forward(images).float()
            total_loss += F.cross_entropy(logits, labels, reduction="sum")
            correct.append(logits.argmax(1) == labels)
        self.test_correct = torch.cat(correct).cpu().numpy() if correct else None
        count = max(len(self.test_labels), 1)
        errors = 0 if self.test_correct is None else int((~self.test_correct).sum())
        return float(total_loss) / count, errors / count

    def _append(self, **values: float) -> None:
        for key, value in values.items():
            self.result.history.setdefault(key, []).append(value)

    def save_checkpoint(self) -> None:
        """Write the state after the last complete epoch to `self.checkpoint`, atomically."""
        assert self.checkpoint is not None
        # plain data only (settings as a dict): `load_checkpoint` reads with weights_only=True
        state = {"settings": dataclasses.asdict(self.settings), "step": self.step,
                 "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "generator": self.generator.get_state(),
                 "history": self.result.history, "steps": self.result.steps}
        checkpoints.save(state, self.checkpoint)

    def load_checkpoint(self) -> int:
        """Restore the state of `self.checkpoint` if it exists; the number of epochs it holds."""
        state = checkpoints.load(self.checkpoint, self.device, dataclasses.asdict(self.settings))
        if state is None:
            return 0
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.step = state["step"]
        self.result.history, self.result.steps = state["history"], state["steps"]
        return len(self.result.history["epoch"])

    def fit(self) -> TrainingResult:
        """Train all epochs (or until divergence); returns the history and the step log."""
        self.resumed_epochs = self.load_checkpoint()
        for epoch in range(self.resumed_epochs, self.settings.epochs):
            started = time.perf_counter()
            if not self.train_epoch(epoch):
                self.result.diverged = True
                break
            test_loss, test_error = self.evaluate()
            if not math.isfinite(test_loss):
                self.result.diverged = True
                break
            self._append(epoch=epoch + 1, learning_rate=learning_rate_at(self.settings, epoch),
                         test_loss=test_loss, test_error=test_error,
                         **classifier_scale(self.model),
                         seconds=round(time.perf_counter() - started, 3))
            if self.checkpoint is not None:
                self.save_checkpoint()
        self._trim()
        if self.checkpoint is not None:
            self.checkpoint.unlink(missing_ok=True)
        return self.result

    def _trim(self) -> None:
        """Keep only complete epochs in the history (a diverged epoch leaves partial entries)."""
        complete = len(self.result.history["epoch"])
        for values in self.result.history.values():
            del values[complete:]

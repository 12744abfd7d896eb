"""Training loop of the language models: SGD, gradient clipping, lr annealing on plateaus.

The recipe is that of PyTorch's word_language_model example (after Zaremba et al. 2014): plain
SGD with a large learning rate (20), the gradient's global norm clipped at 0.25, truncated
backpropagation through `bptt` = 35 steps with the LSTM state carried across windows (and
reset at each epoch), and the learning rate divided by 4 after every epoch whose validation
loss is not the best so far. The model with the best validation loss is the one tested.
Why not Merity et al.'s NT-ASGD (the paper's "settings of Merity et al. 2017"): its averaging
starts only once validation stalls and it needs hundreds of epochs (750 in their paper) plus
their weight-drop and variational-dropout regularisers; the simpler recipe is deterministic,
resumable at epoch boundaries, reaches a sensible perplexity in 40 epochs, and compares the
five output layers under one optimiser, which is what the experiment is about.

Perplexity = exp(mean cross-entropy per token). Resuming: with a `checkpoint` path the state
after every epoch (weights, best weights, optimiser, the torch RNG that drives dropout, the
history, lr and best loss) is saved atomically, with the settings as plain data, and read back
with `torch.load(..., weights_only=True)`; a run killed after epoch e resumes at epoch e + 1 and
ends with the same numbers as an uninterrupted one (tested).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from companion import checkpoints
from companion.data.wikitext import batchify, bptt_windows
from companion.fixed_classifier.language_model import LSTMLanguageModel, token_losses


@dataclass(frozen=True)
class LMTrainingSettings:
    """The optimisation recipe (fields of the run config that the loop needs)."""

    epochs: int
    batch_size: int
    eval_batch_size: int
    bptt: int
    learning_rate: float
    clip: float
    anneal: float
    seed: int


@dataclass
class LMResult:
    """Per-epoch history, the initial validation loss, whether the run diverged."""

    history: dict[str, list[float]] = field(default_factory=dict)
    initial_valid_loss: float = math.nan
    best_epoch: int = 0
    diverged: bool = False


def perplexity(loss: float) -> float:
    """exp(loss), inf past what a float holds."""
    return math.exp(loss) if loss < 700 else math.inf


def _detach(hidden: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    return tuple(h.detach() for h in hidden)  # type: ignore[return-value]


class LMTrainer:
    """Trains `model` on batchified token streams; see the module docstring."""

    def __init__(self, model: LSTMLanguageModel, settings: LMTrainingSettings,
                 streams: dict[str, np.ndarray], checkpoint: Path | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.settings = settings
        self.checkpoint = checkpoint
        self.resumed_epochs = 0
        self.train_data = batchify(streams["train"], settings.batch_size).to(self.device)
        self.eval_data = {split: batchify(streams[split], settings.eval_batch_size).to(self.device)
                          for split in ("valid", "test")}
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(trainable, lr=settings.learning_rate)
        self.learning_rate = settings.learning_rate
        self.best_loss = math.inf
        self.best_state = copy.deepcopy(model.state_dict())
        self.result = LMResult(history={key: [] for key in (
            "epoch", "learning_rate", "train_loss", "train_perplexity", "valid_loss",
            "valid_perplexity", "alpha", "seconds")})

    @torch.no_grad()
    def evaluate(self, split: str = "valid") -> float:
        """Mean cross-entropy per token of `split` ("valid" or "test"), in eval mode."""
        self.model.eval()
        data = self.eval_data[split]
        hidden = self.model.init_hidden(data.shape[1])
        total, count = 0.0, 0
        for inputs, targets in bptt_windows(data, self.settings.bptt):
            logits, hidden = self.model(inputs, hidden)
            total += float(token_losses(logits, targets))
            count += targets.numel()
        return total / count

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training stream; the mean loss (nan when it stopped being finite)."""
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate
        hidden = self.model.init_hidden(self.train_data.shape[1])
        total = torch.zeros((), device=self.device)
        count = 0
        for inputs, targets in bptt_windows(self.train_data, self.settings.bptt):
            hidden = _detach(hidden)  # truncated backpropagation through time
            logits, hidden = self.model(inputs, hidden)
            loss_sum = token_losses(logits, targets)
            loss = loss_sum / targets.numel()
            if not torch.isfinite(loss):
                return math.nan
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"],
                                           self.settings.clip)
            self.optimizer.step()
            total += loss_sum.detach()
            count += targets.numel()
        return float(total) / count

    def _alpha(self) -> float | None:
        alpha = getattr(self.model.decoder, "alpha", None)
        return None if alpha is None else float(alpha.detach())

    def fit(self) -> LMResult:
        """Train all epochs (or until divergence), then load the best weights into the model."""
        self.resumed_epochs = self.load_checkpoint()
        if self.resumed_epochs == 0:
            self.result.initial_valid_loss = self.evaluate("valid")
            torch.manual_seed(self.settings.seed)  # dropout masks
        for epoch in range(self.resumed_epochs, self.settings.epochs):
            started = time.perf_counter()
            train_loss = self.train_epoch(epoch)
            valid_loss = self.evaluate("valid") if math.isfinite(train_loss) else math.nan
            if not math.isfinite(valid_loss):
                self.result.diverged = True
                break
            self._append(epoch=epoch + 1, learning_rate=self.learning_rate,
                         train_loss=train_loss, train_perplexity=perplexity(train_loss),
                         valid_loss=valid_loss, valid_perplexity=perplexity(valid_loss),
                         alpha=self._alpha(), seconds=round(time.perf_counter() - started, 3))
            if valid_loss < self.best_loss:
                self.best_loss = valid_loss
                self.best_state = copy.deepcopy(self.model.state_dict())
                self.result.best_epoch = epoch + 1
            else:
                self.learning_rate /= self.settings.anneal
            if self.checkpoint is not None:
                self.save_checkpoint()
        self.model.load_state_dict(self.best_state)
        if self.checkpoint is not None:
            self.checkpoint.unlink(missing_ok=True)
        return self.result

    def _append(self, **values: Any) -> None:
        for key, value in values.items():
            self.result.history[key].append(value)

    def save_checkpoint(self) -> None:
        """The state after the last complete epoch, written atomically; plain data + tensors."""
        assert self.checkpoint is not None
        state = {
            "settings": dataclasses.asdict(self.settings),
            "model": self.model.state_dict(), "best_model": self.best_state,
            "optimizer": self.optimizer.state_dict(), "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "history": self.result.history, "initial_valid_loss": self.result.initial_valid_loss,
            "best_epoch": self.result.best_epoch, "learning_rate": self.learning_rate,
            "best_loss": self.best_loss,
        }
        checkpoints.save(state, self.checkpoint)

    def load_checkpoint(self) -> int:
        """Restore `self.checkpoint` if it exists; the number of complete epochs it holds."""
        state = checkpoints.load(self.checkpoint, self.device, dataclasses.asdict(self.settings))
        if state is None:
            return 0
        self.model.load_state_dict(state["model"])
        self.best_state = state["best_model"]
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"].cpu())
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self.result.history = state["history"]
        self.result.initial_valid_loss = state["initial_valid_loss"]
        self.result.best_epoch = state["best_epoch"]
        self.learning_rate, self.best_loss = state["learning_rate"], state["best_loss"]
        return len(self.result.history["epoch"])

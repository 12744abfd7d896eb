"""Data-parallel training on image folders: one CPU process, one GPU, or N GPUs on M nodes.

The same code runs alone (`python -m ...`, world size 1) and under `torchrun`, which sets
RANK, LOCAL_RANK and WORLD_SIZE: `setup` then joins the process group (NCCL on GPUs, gloo on
CPUs), each process trains a DistributedDataParallel copy of the model on its shard of every
epoch (DistributedSampler), and the gradients are averaged across processes in `backward`.

Batches: `batch_size` is the global batch; each of W processes takes `batch_size / W` images
of it. DistributedSampler deals a seeded permutation round-robin, so the union of the W
per-process batches of a step is the same set of images for any W: a checkpoint resumes on a
different number of processes with the same global batches (batch-norm statistics are still
per process, as in any DDP run).

Only rank 0 writes: the checkpoint (after every epoch, atomically), the log lines and the
record. Checkpoints are plain data (tensors, numbers, lists, dicts), read with
`torch.load(weights_only=True)`, so loading one runs no code.

Kept whole (over 300 lines): the process-group helpers serve only the trainer at the end.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from companion import checkpoints
from companion.fixed_classifier.augment import normalize
from companion.fixed_classifier.devices import autocast, maybe_compile, resolve_device
from companion.fixed_classifier.training import (
    TrainingSettings,
    classifier_scale,
    learning_rate_at,
    parameter_groups,
    weight_decay_at,
)


@dataclass(frozen=True)
class Context:
    """Where this process stands: its rank among `world_size` and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str | None = None) -> Context:
    """Join the process group torchrun describes (if any) and pick this process's device.

    `device` None or "auto": GPU `LOCAL_RANK` when CUDA is there, else MPS or the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device)
    if chosen.type == "cuda" and chosen.index is None:
        chosen = torch.device("cuda", local_rank)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Context(rank, world_size, local_rank, chosen)


def teardown() -> None:
    """Leave the process group and free it now, not during interpreter shutdown.

    A DistributedDataParallel wrapper sits in a reference cycle, so it (and through its reducer
    the gloo or NCCL group) outlives `del` until the garbage collector runs; left to the exit,
    gloo's threads were torn down during finalization and one rank in a CI run aborted
    ("terminate called without an active exception"). Collect first, then destroy.
    """
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def barrier(context: Context) -> None:
    if context.distributed:
        dist.barrier()


def broadcast(value: Any, context: Context) -> Any:
    """Rank 0's `value` on every rank (a picklable object)."""
    if not context.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(values: Tensor, context: Context) -> Tensor:
    """Element-wise sum of `values` over the processes (in place, returned)."""
    if context.distributed:
        dist.all_reduce(values)
    return values


class ShardSampler(Sampler[int]):
    """Indices rank, rank + W, ... of a data set: every sample exactly once across processes
    (DistributedSampler pads with repeats, which would count some validation images twice)."""

    def __init__(self, size: int, context: Context) -> None:
        self.indices = list(range(context.rank, size, context.world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def wrap(model: nn.Module, context: Context) -> nn.Module:
    """The model on this process's device, channels-last, inside DDP when distributed."""
    model = model.to(device=context.device, memory_format=torch.channels_last)
    if not context.distributed:
        return model
    ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, images: Tensor,
               labels: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
    """One SGD step on this process's batch; (summed loss, error count), on the device.

    `images` are normalised float (B, 3, H, W); a DDP `model` averages the gradients of all
    processes in `backward`, so W processes step on the mean gradient of their batches.
    """
    with autocast(device):
        logits = model(images)
    loss = F.cross_entropy(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach() * len(labels), (logits.detach().argmax(1) != labels).sum()


@dataclass
class History:
    """Per-epoch history and the per-step log of the classifier's scale."""

    epochs: dict[str, list[float]] = field(default_factory=dict)
    steps: dict[str, list[float]] = field(default_factory=dict)

    def append(self, target: dict[str, list[float]], **values: float) -> None:
        for key, value in values.items():
            target.setdefault(key, []).append(value)


class DistributedTrainer:
    """SGD with the step schedule of `settings` on image-folder data sets, data-parallel.

    Data sets yield (uint8 image (3, H, W), label); images are normalised with `statistics`
    on the device. `workers` DataLoader processes per training process decode the images.
    """

    def __init__(self, model: nn.Module, settings: TrainingSettings, train: Dataset,
                 val: Dataset, statistics: tuple[tuple[float, ...], tuple[float, ...]],
                 context: Context, checkpoint: Path | None = None, workers: int = 0,
                 compile: bool = False) -> None:
        if settings.batch_size % context.world_size:
            raise ValueError(f"batch_size {settings.batch_size} is not divisible by the "
                             f"{context.world_size} processes; choose a multiple")
        self.context = context
        self.settings = settings
        self.module = model  # the plain model: its state_dict is the same on every rank
        self.model = maybe_compile(wrap(model, context), compile)
        self.train_set, self.val_set = train, val
        self.statistics = statistics
        self.checkpoint = checkpoint
        self.workers = workers
        self.per_process_batch = settings.batch_size // context.world_size
        self.optimizer = torch.optim.SGD(
            parameter_groups(model, settings.weight_decay, settings.decay_scale_and_bias),
            lr=settings.learning_rate, momentum=settings.momentum)
        self.weight_decays = [group["weight_decay"] for group in self.optimizer.param_groups]
        self.step = 0
        self.history = History()
        self.resumed_epochs = 0
        self._log_scale()

    def _loader(self, dataset: Dataset, sampler: Sampler, seed: int) -> DataLoader:
        # workers' random streams (crops, flips) follow from the seed, epoch and rank
        generator = torch.Generator().manual_seed(seed)
        # Workers are spawned, not forked: a fork taken while the process group's threads
        # hold a lock left a loader worker hung at 0% CPU (seen once in a loaded test run).
        return DataLoader(dataset, batch_size=self.per_process_batch, sampler=sampler,
                          num_workers=self.workers, generator=generator,
                          pin_memory=self.context.device.type == "cuda",
                          persistent_workers=False,
                          multiprocessing_context="spawn" if self.workers else None)

    def _inputs(self, images: Tensor) -> Tensor:
        images = images.to(self.context.device, non_blocking=True)
        return normalize(images.contiguous(memory_format=torch.channels_last), *self.statistics)

    def _log_scale(self) -> None:
        self.history.append(self.history.steps, step=self.step, **classifier_scale(self.module))

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One epoch on this process's shard; the epoch's loss and error over all processes."""
        settings, context = self.settings, self.context
        for group, weight_decay in zip(self.optimizer.param_groups, self.weight_decays):
            group["lr"] = learning_rate_at(settings, epoch)
            group["weight_decay"] = weight_decay_at(settings, epoch, weight_decay)
        sampler = DistributedSampler(self.train_set, num_replicas=context.world_size,
                                     rank=context.rank, shuffle=True, seed=settings.seed)
        sampler.set_epoch(epoch)
        seed = (settings.seed * 1_000_003 + epoch) * 65_537 + context.rank
        self.model.train()
        totals = torch.zeros(3, dtype=torch.float64, device=context.device)  # loss, errors, n
        for images, labels in self._loader(self.train_set, sampler, seed):
            labels = labels.to(context.device, non_blocking=True)
            loss, errors = train_step(self.model, self.optimizer, self._inputs(images), labels,
                                      context.device)
            totals += torch.stack([loss.double(), errors.double(),
                                   torch.tensor(len(labels), dtype=torch.float64,
                                                device=context.device)])
            self.step += 1
            if self.step % settings.log_interval == 0:
                self._log_scale()
        loss, errors, count = all_sum(totals, context).tolist()
        return {"train_loss": loss / max(count, 1), "train_error": errors / max(count, 1)}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation loss and error over every validation image (each seen once)."""
        self.model.eval()
        totals = torch.zeros(3, dtype=torch.float64, device=self.context.device)
        sampler = ShardSampler(len(self.val_set), self.context)
        for images, labels in self._loader(self.val_set, sampler, 0):
            labels = labels.to(self.context.device, non_blocking=True)
            with autocast(self.context.device):
                logits = self.model(self._inputs(images)).float()
            totals += torch.stack([
                F.cross_entropy(logits, labels, reduction="sum").double(),
                (logits.argmax(1) != labels).sum().double(),
                torch.tensor(len(labels), dtype=torch.float64, device=self.context.device)])
        loss, errors, count = all_sum(totals, self.context).tolist()
        return {"test_loss": loss / max(count, 1), "test_error": errors / max(count, 1)}

    # ------------------------------------------------------------ checkpoints

    def _settings_data(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self.settings)))

    def save_checkpoint(self) -> None:
        """Rank 0 writes the state after the last complete epoch, atomically; others wait."""
        if self.checkpoint is not None and self.context.is_main:
            state = {"settings": self._settings_data(), "step": self.step,
                     "model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                     "epochs": self.history.epochs, "steps": self.history.steps,
                     "world_size": self.context.world_size}
            checkpoints.save(state, self.checkpoint)
        barrier(self.context)

    def load_checkpoint(self) -> int:
        """Restore `self.checkpoint` on every rank (any world size wrote it); epochs it holds."""
        state = checkpoints.load(self.checkpoint, self.context.device, self._settings_data())
        if state is None:
            return 0
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        self.history = History(state["epochs"], state["steps"])
        return len(self.history.epochs.get("epoch", []))

    def fit(self, after_epoch: Callable[[DistributedTrainer, int], None] | None = None,
            log: Callable[[str], None] | None = print) -> History:
        """Train the remaining epochs; `after_epoch(self, epoch)` runs once each is saved."""
        self.resumed_epochs = self.load_checkpoint()
        for epoch in range(self.resumed_epochs, self.settings.epochs):
            started = time.perf_counter()
            metrics = {**self.train_epoch(epoch), **self.evaluate()}
            seconds = time.perf_counter() - started
            self._log_scale()
            self.history.append(self.history.epochs, epoch=epoch + 1,
                                learning_rate=learning_rate_at(self.settings, epoch),
                                **metrics, **classifier_scale(self.module),
                                seconds=round(seconds, 3))
            if log is not None and self.context.is_main:
                log(f"epoch {epoch + 1}/{self.settings.epochs}: " + ", ".join(
                    f"{k} {v:.4f}" for k, v in metrics.items()) + f" ({seconds:.1f} s)")
            if not all(math.isfinite(v) for v in metrics.values()):
                break  # diverged: the record says so
            self.save_checkpoint()
            if after_epoch is not None:
                after_epoch(self, epoch)
        return self.history

    def finish(self) -> None:
        """Delete the checkpoint (rank 0) once the record is safe."""
        if self.checkpoint is not None and self.context.is_main:
            self.checkpoint.unlink(missing_ok=True)
        barrier(self.context)

"""Worker of tests/test_imagenet_distributed.py, started by torchrun (or alone).

    torchrun --standalone --nproc_per_node 2 tests/distributed_worker.py step OUT
    torchrun --standalone --nproc_per_node 2 tests/distributed_worker.py run OUT FOLDER [kill]

`step`: two SGD steps of a batch-norm-free model, each process on its half of a fixed batch;
each rank saves its weights to OUT/step-rank<r>.pt. `run`: `imagenet.run_and_record` on the
generated FOLDER (ResNet-20, smoke profile); each rank saves its weights after every epoch to
OUT/run-rank<r>.pt; with `kill`, every process kills itself (SIGKILL) after the first epoch.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch
from torch import nn

from companion.fixed_classifier import distributed, imagenet


def batch_norm_free_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(32, 5))


def fixed_batch(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(size, 3, 12, 12, generator=generator)
    return images, torch.randint(0, 5, (size,), generator=generator)


def sgd(model: nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)


def step(out: Path) -> None:
    context = distributed.setup("cpu")
    module = batch_norm_free_model()
    model = distributed.wrap(module, context)
    optimizer = sgd(module)
    images, labels = fixed_batch()
    share = slice(context.rank, None, context.world_size)  # this process's half
    for _ in range(2):
        distributed.train_step(model, optimizer, images[share], labels[share], context.device)
    torch.save(module.state_dict(), out / f"step-rank{context.rank}.pt")


def run(out: Path, folder: str, kill: bool) -> None:
    config = imagenet.make_config("resnet20", "fixed", "smoke", data_source=folder,
                                  device="cpu")

    def after_epoch(trainer: distributed.DistributedTrainer, epoch: int) -> None:
        torch.save(trainer.module.state_dict(), out / f"run-rank{trainer.context.rank}.pt")
        if kill and epoch == 0:
            os.kill(os.getpid(), signal.SIGKILL)

    imagenet.run_and_record(config, workers=1, after_epoch=after_epoch)


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, target = sys.argv[1], Path(sys.argv[2])
    try:
        if mode == "step":
            step(target)
        else:
            run(target, sys.argv[3], kill=sys.argv[4:] == ["kill"])
    finally:
        distributed.teardown()

"""Which device a run trains on, and the settings that go with it (the GPU fast path).

`resolve_device("auto")` (also `None`, the configs' default) picks CUDA, then Apple's MPS, then
the CPU; an explicit device ("cpu", "cuda", "cuda:1", "mps") wins, and asking for a device that
is not there is an error that says what to do instead.

On CUDA the training steps run under bf16 autocast (convolutions and matrix products in
bfloat16, weights, optimizer state and the loss's reductions in float32), in channels-last
memory format; elsewhere in float32 (channels-last too: it is the faster CPU layout).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from companion.devices import AUTO, describe, resolve_device

__all__ = ["AUTO", "autocast", "autocast_dtype", "autocast_name", "describe",
           "maybe_compile", "resolve_device"]


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 on CUDA (the fast path), None (float32) elsewhere."""
    return torch.bfloat16 if device.type == "cuda" else None


def autocast_name(device: torch.device) -> str | None:
    """"bfloat16" on CUDA, None elsewhere (as a record states it)."""
    dtype = autocast_dtype(device)
    return None if dtype is None else str(dtype).removeprefix("torch.")


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """bf16 autocast on CUDA; nothing elsewhere."""
    dtype = autocast_dtype(device)
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """`torch.compile(model)` when `enabled` (a callable sharing the model's parameters)."""
    return torch.compile(model) if enabled else model

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

AUTO = "auto"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(request: str | None) -> torch.device:
    """The torch device for a config's `device` field: None or "auto" pick CUDA, MPS, CPU."""
    if request is None or request == AUTO:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(request)
    except RuntimeError as error:
        raise ValueError(f"device {request!r} is not a torch device ({error}); use 'auto' "
                         "(the default), 'cpu', or e.g. 'cuda' or 'cuda:1'") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {request!r} was asked for but torch sees no CUDA GPU here; "
                         "use device='auto' (or None) to train on what this machine has")
    if device.type == "mps" and not _mps_available():
        raise ValueError(f"device {request!r} was asked for but MPS is not available here; "
                         "use device='auto' (or None)")
    return device


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


def describe(device: torch.device) -> str:
    """The device as a record states it: the GPU's name, "mps" or "cpu"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """`torch.compile(model)` when `enabled` (a callable sharing the model's parameters)."""
    return torch.compile(model) if enabled else model

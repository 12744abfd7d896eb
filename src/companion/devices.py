"""Which device a run trains on: the shared resolver of both papers' `device` settings.

`resolve_device("auto")` (also `None`) picks CUDA, then Apple's MPS, then the CPU; an explicit
device ("cpu", "cuda", "cuda:1", "mps") wins, and asking for a device that is not there is an
error that says what to do instead. `describe` is the device as a record states it.
"""

from __future__ import annotations

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


def describe(device: torch.device) -> str:
    """The device as a record states it: the GPU's name, "mps" or "cpu"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type

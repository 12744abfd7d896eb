"""Checkpoints of unfinished runs of both papers (class-lr UCI groups; CIFAR, ImageNet and
language-model runs of the fixed classifier).

A run keeps its state after every complete epoch in `<hash>.checkpoint.pt` beside its record
(`beside`), written atomically (`save`: a kill mid-write leaves the old checkpoint) and read
back with `torch.load(weights_only=True)` (`load`: plain data and tensors only, so a file
planted in `results/` runs no code) and only by the settings that wrote it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def beside(record: Path) -> Path:
    """The checkpoint of the run whose record is `record`: `<hash>.checkpoint.pt`."""
    return record.with_name(record.stem + ".checkpoint.pt")


def save(state: dict[str, Any], path: Path) -> None:
    """Write `state` (plain data and tensors) to `path` through a `.partial` file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)  # a kill mid-write leaves the old checkpoint


def load(path: Path | None, device: torch.device | str, settings: Any
         ) -> dict[str, Any] | None:
    """The state at `path`, written for `settings`; None where there is none (start afresh).

    A file that cannot be read, or was written for other settings, is a RuntimeError that
    says to delete it.
    """
    if path is None or not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same advice
        raise RuntimeError(f"cannot read the checkpoint {path} ({error}); delete it to train "
                           "this run from the start") from error
    written_for = state.get("settings") if isinstance(state, dict) else state
    if not isinstance(state, dict) or written_for != settings:
        raise RuntimeError(f"the checkpoint {path} belongs to other settings ({written_for}); "
                           "delete it to train from the start")
    return state

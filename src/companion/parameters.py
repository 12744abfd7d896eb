"""Notebook parameters as the library wants them, so a natural spelling is never a trap."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def as_list(value: Any) -> list[Any] | None:
    """None stays None; a single string or number becomes a one-element list (a string is
    never split into characters); any other iterable becomes a list."""
    if value is None:
        return None
    if isinstance(value, str | bytes | int | float):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    return [value]

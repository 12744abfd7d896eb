"""Binary `.npz` caches of parsed data sets that are checked on every read.

A cache stores its arrays, a `cache_key` (what it was built from) and `content_sha256`, the
digest of the arrays themselves. On reading, a file that cannot be read or whose arrays no
longer match their digest (edited, truncated, bit rot) is named in a warning, moved aside to
`<name>.npz.bad-<time>` (never deleted), and the caller rebuilds it; a cache built from other
sources (another key) or by an older version without a digest is simply rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

DIGEST = "content_sha256"
KEY = "cache_key"


class CacheWarning(UserWarning):
    """A cache file was unusable and moved aside (the message names it)."""


def content_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def move_aside(path: Path, reason: str) -> Path:
    """Rename `path` to `<path>.bad-<time>` beside it and warn; the new path."""
    target = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    os.replace(path, target)
    warnings.warn(f"{path}: {reason}; moved to {target} and rebuilt", CacheWarning,
                  stacklevel=3)
    return target


def read(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """The arrays of the cache at `path` if it exists, is intact and was built for `key`."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        move_aside(path, f"unreadable cache ({type(error).__name__}: {error})")
        return None
    if KEY not in arrays or str(arrays.pop(KEY)) != key:
        return None  # built from other sources or by another version: rebuild over it
    if DIGEST not in arrays:
        return None  # an older cache without a digest: cannot be checked, rebuild it
    stored_digest = str(arrays.pop(DIGEST))
    if content_digest(arrays) != stored_digest:
        move_aside(path, "cache content does not match its digest (edited or damaged)")
        return None
    return arrays


def write(path: Path, key: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write the cache atomically (temporary `.tmp-*.partial` + rename), with its digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.stem}.",
                                         suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **{KEY: np.array(key), DIGEST: np.array(content_digest(arrays))},
                     **arrays)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

"""CIFAR-10/100 and image folders: where they come from, verified, decoded once (see
`image_decoding`) and cached as `.npz`.

Sources of `load("cifar10")`, in order: the archive named by `$COMPANION_CIFAR10_JPG` (verified
against `cifar_sha256.txt`, decoded once into the cache), the `data/cifar10/` cache (the decoded
JPEG archive, so a notebook started from JupyterLab without the variable finds what `make data`
prepared, or the canonical archive), a download of the canonical archive (md5-checked by
pooch). `load("cifar100")` has no local variable: cache, then download, or pass `source=` a
local copy (a tar archive or directory in a layout `image_decoding` understands).

A tar archive is decoded once into `data/<name>/<archive>-<sha256 prefix>.npz`, written
atomically; directories are decoded on every call (there is no cheap key for them).
"""

from __future__ import annotations

import hashlib
import re
import time
from functools import cache
from pathlib import Path

import numpy as np

from companion.data import npz_cache
from companion.data.image_decoding import CANONICAL, CIFARData, MalformedDataError, read
from companion.data.sources import (
    ChecksumError,
    DataError,
    cache_dir,
    download,
    env_path,
    sha256,
    verify,
)

__all__ = ["CANONICAL", "CIFARData", "MalformedDataError", "load", "prepare", "read",
           "validation_split"]

ENV_VARIABLE = "COMPANION_CIFAR10_JPG"
MANIFEST = Path(__file__).with_name("cifar_sha256.txt")
CACHE_VERSION = 1


@cache
def manifest() -> dict[str, str]:
    """{archive file name: sha256} of the local archives the project knows."""
    table = {}
    for line in MANIFEST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            table[name.strip()] = digest
    return table


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _verify_known(path: Path, expected: str | None = None) -> str:
    """sha256 of an archive, checked against `expected` or what we know of a file of its name."""
    expected = expected or manifest().get(path.name)
    if expected is not None:
        verify(path, expected)
        return expected
    for kind in CANONICAL.values():
        if path.name == kind.url.rsplit("/", 1)[1] and (actual := _md5(path)) != kind.md5:
            raise ChecksumError(
                f"{path}: md5 {actual} does not match the published {kind.md5}. The file is "
                "corrupted or a different version: delete it (or pass an intact copy) and load "
                "again."
            )
    return sha256(path)


def _store(path: Path, data: CIFARData, key: str) -> None:
    """Write the cache atomically with its content digest (`npz_cache.write`)."""
    npz_cache.write(path, key, {"train_x": data.train_x, "train_y": data.train_y,
                                "test_x": data.test_x, "test_y": data.test_y,
                                "classes": np.array(data.classes),
                                "source": np.array(data.source)})


def _cached(path: Path, key: str) -> CIFARData | None:
    """The cache at `path` if intact and built for `key`; a damaged one is moved aside."""
    stored = npz_cache.read(path, key)
    if stored is None:
        return None
    return CIFARData(stored["train_x"], stored["train_y"], stored["test_x"], stored["test_y"],
                     tuple(str(c) for c in stored["classes"]), str(stored["source"]))


def _from_archive(name: str, archive: Path, resize_to: int | None,
                  expected: str | None = None) -> CIFARData:
    digest = _verify_known(archive, expected)
    stem = re.sub(r"(\.tar)?(\.gz|\.tgz|\.bz2|\.xz)?$", "", archive.name)
    key = f"v{CACHE_VERSION}:{digest}:{resize_to}"
    suffix = f"-{resize_to}px" if resize_to else ""
    path = cache_dir() / name / f"{stem}-{digest[:16]}{suffix}.npz"
    if (data := _cached(path, key)) is not None:
        return data
    data = read(archive, resize_to)
    _check_classes(name, data)
    _store(path, data, key)
    return data


def _check_classes(name: str, data: CIFARData) -> None:
    if name in CANONICAL and data.num_classes != CANONICAL[name].num_classes:
        raise MalformedDataError(f"{data.source}: {data.num_classes} classes, {name} has "
                                 f"{CANONICAL[name].num_classes}")


def _canonical(name: str) -> CIFARData:
    """The canonical archive: from the cache, else downloaded (pooch checks its md5)."""
    kind = CANONICAL[name]
    folder = cache_dir() / name
    archive_name = kind.url.rsplit("/", 1)[1]
    key = f"v{CACHE_VERSION}:md5:{kind.md5}"
    path = folder / archive_name.replace(".tar.gz", ".npz")
    if (data := _cached(path, key)) is not None:
        return data
    try:
        archive = download(kind.url, f"md5:{kind.md5}", folder, ENV_VARIABLE)
    except DataError as error:
        local = f"set {ENV_VARIABLE} to cifar10-jpg.tar.gz or " if name == "cifar10" else ""
        raise DataError(
            f"{name}: not in the cache ({path}) and {kind.url} could not be downloaded. Without "
            f"a network, {local}pass source=<a copy of {archive_name} or an image folder>."
        ) from error
    data = read(archive)
    _check_classes(name, data)
    _store(path, data, key)
    return data


def load(name: str = "cifar10", source: Path | str | None = None,
         resize_to: int | None = None) -> CIFARData:
    """Load a data set as uint8 images and int64 labels (see the module docstring).

    Args:
        name: "cifar10", "cifar100", or any name (a folder of the cache) for an image folder.
        source: a tar archive or directory in a supported layout; None for the default sources.
        resize_to: resize every image to this square side (for image folders of other sizes);
            None keeps the size, which must then be the same for all images.

    Returns:
        `CIFARData`: `train_x` (N, H, W, 3) uint8, `train_y` (N,) int64, the same for test,
        and `classes`.
    """
    if not re.fullmatch(r"[a-z0-9_.-]+", name):
        raise ValueError(f"name must be a plain lower-case folder name, not {name!r}")
    if source is not None:
        source = Path(source).expanduser()
        if source.is_dir():
            data = read(source, resize_to)
            _check_classes(name, data)
            return data
        if not source.is_file():
            raise DataError(f"{source} does not exist")
        return _from_archive(name, source, resize_to)
    if name == "cifar10" and (local := env_path(ENV_VARIABLE)) is not None:
        if not local.is_file():
            raise DataError(f"{ENV_VARIABLE} points at {local}, which is not a file. Point it at "
                            "cifar10-jpg.tar.gz or unset it to use the canonical download.")
        return _from_archive(name, local, resize_to, expected=manifest()["cifar10-jpg.tar.gz"])
    if name not in CANONICAL:
        raise DataError(f"{name}: no default source; pass source=<archive or image folder>")
    if resize_to is not None:
        raise ValueError("resize_to applies to image folders (pass source=...)")
    if name == "cifar10" and (data := _cached_jpg()) is not None:
        return data  # decoded earlier from the JPEG archive: no variable needed any more
    return _canonical(name)


def _cached_jpg() -> CIFARData | None:
    """CIFAR-10 as decoded from the manifest's `cifar10-jpg.tar.gz` into the `data/` cache
    (by `make data` or an earlier load), or None; the cache key pins the archive's sha256."""
    digest = manifest()["cifar10-jpg.tar.gz"]
    return _cached(cache_dir() / "cifar10" / f"cifar10-jpg-{digest[:16]}.npz",
                   f"v{CACHE_VERSION}:{digest}:None")


def validation_split(data: CIFARData, size: int, seed: int = 0) -> CIFARData:
    """A seeded random `size` training images as the test part; the rest stay for training."""
    if not 0 < size < len(data.train_y):
        raise ValueError(f"size must be in 1..{len(data.train_y) - 1}, not {size}")
    order = np.random.default_rng(seed).permutation(len(data.train_y))
    held, kept = np.sort(order[:size]), np.sort(order[size:])
    return CIFARData(data.train_x[kept], data.train_y[kept], data.train_x[held],
                     data.train_y[held], data.classes, f"{data.source} (validation {seed})")


def prepare() -> None:
    """`python -m companion.data`: decode and cache CIFAR-10 where it can be had.

    With `$COMPANION_CIFAR10_JPG` set, a bad archive is an error; without it, a machine that
    can neither find the cache nor download gets a note (the CIFAR notebooks will fail later).
    """
    start = time.perf_counter()
    if env_path(ENV_VARIABLE) is None:
        try:
            data = load("cifar10")
        except DataError as error:
            print(f"CIFAR-10: not prepared ({error})")
            return
    else:
        data = load("cifar10")
    print(f"CIFAR-10: {len(data.train_y)} + {len(data.test_y)} images verified and cached "
          f"({time.perf_counter() - start:.1f} s)")

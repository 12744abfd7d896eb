"""Where data comes from: environment variables, the project's `data/` cache, downloads.

Every data set is looked up in this order:
1. a local directory named by an environment variable (CI points these at `../shared/data`),
2. the project's `data/` cache (anything downloaded or extracted earlier),
3. a download with a known hash (pooch), for users with a network.

Environment variables:
- `COMPANION_DATA_DIR`: the cache directory (default: `data/` at the repository root).
- `COMPANION_UCI_DIR`: a directory laid out like the authors' `data.tar.gz` (one folder per set).
- `COMPANION_CIFAR10_JPG`: the `cifar10-jpg.tar.gz` archive of CIFAR-10 as JPEG images.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


class DataError(Exception):
    """Base class of every data problem; the message always says what to do."""


class ChecksumError(DataError):
    """A file's sha256 differs from the project's manifest."""


def cache_dir() -> Path:
    """The data cache (created on demand): `$COMPANION_DATA_DIR` or `<repo>/data`."""
    root = Path(os.environ.get("COMPANION_DATA_DIR", REPO_ROOT / "data"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def env_path(variable: str) -> Path | None:
    """The path named by an environment variable, or None when it is unset or empty."""
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else None


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: str) -> None:
    """Raise ChecksumError naming the file when its sha256 is not `expected`."""
    actual = sha256(path)
    if actual != expected:
        raise ChecksumError(
            f"{path}: sha256 {actual} does not match the project's manifest ({expected}). "
            "The file is corrupted or a different version: delete it (or point the environment "
            "variable at an intact copy) and load again."
        )


def safe_extract(archive: Path, destination: Path) -> None:
    """Extract a tar archive, refusing members that would land outside `destination`.

    Links, devices and absolute or `..` paths are rejected, so a hostile archive cannot
    write anywhere but below `destination`.
    """
    destination = destination.resolve()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            target = (destination / member.name).resolve()
            if not target.is_relative_to(destination):
                raise DataError(f"{archive}: member {member.name!r} escapes the target directory")
            if not (member.isfile() or member.isdir()):
                raise DataError(f"{archive}: member {member.name!r} is not a plain file")
        tar.extractall(destination, members=members, filter="data")


def download(url: str, known_hash: str | None, directory: Path, variable: str) -> Path:
    """Download `url` into `directory` with pooch; `known_hash` is "sha256:..." or "md5:..."."""
    try:
        import pooch
    except ImportError as error:  # pragma: no cover - pooch is a dependency
        raise DataError("pooch is needed to download data: pip install pooch") from error
    try:
        path = pooch.retrieve(url, known_hash=known_hash, path=directory, progressbar=True)
    except Exception as error:  # network errors come in many types
        raise DataError(
            f"Could not download {url} ({type(error).__name__}). Without a network, set "
            f"{variable} to a local copy of the data (see README.md, 'Data')."
        ) from error
    return Path(path)

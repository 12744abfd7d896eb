"""Decoding image data sets from a tar archive or a directory into uint8 arrays (`read`).

Three layouts are understood:

- the canonical "python version" of CIFAR-10 (`data_batch_1..5`, `test_batch`,
  `batches.meta`) and CIFAR-100 (`train`, `test`, `meta`, fine labels), as distributed at
  https://www.cs.toronto.edu/~kriz/cifar.html;
- any image folder `.../<split>/<class>/<image>` with split `train` and `test` (or `val`,
  `validation`), e.g. the project's `cifar10-jpg.tar.gz` or ImageNet-style folders. Classes are
  the sorted folder names (for CIFAR-10 that is the canonical label order).

Archives are read member by member in memory, never extracted: writing and later deleting the
60,000 small files of the JPEG archive took 12 s + 170 s on the project's loaded machine, reading
them in memory 2 s. Every member goes through the rules of `sources.safe_extract` first (no
absolute or `..` paths, no links or devices), so a hostile archive is refused the same way.
The canonical pickles are read with an unpickler that only accepts numpy arrays and plain types.

Decoded data (`CIFARData`): images (N, H, W, 3) uint8 (H = W = 32 for CIFAR), labels (N,) int64,
class names. Where the files come from, their checksums and the cache are `cifar.load`.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from companion.data.sources import DataError


@dataclass(frozen=True)
class Canonical:
    """One canonical CIFAR archive: where to download it, its md5, its batch files."""

    url: str
    md5: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int


CANONICAL = {
    "cifar10": Canonical(
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_file="test_batch",
        meta_file="batches.meta",
        label_key="labels",
        names_key="label_names",
        num_classes=10,
    ),
    "cifar100": Canonical(
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        train_files=("train",),
        test_file="test",
        meta_file="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        num_classes=100,
    ),
}
TRAIN_SPLITS = ("train",)
TEST_SPLITS = ("test", "val", "validation")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".webp", ".tif", ".tiff")
MAX_LISTED = 10  # bad files named in an error message


class MalformedDataError(DataError, ValueError):
    """A batch file or image cannot be read, or the layout is not one we understand."""


@dataclass(frozen=True)
class CIFARData:
    """Train and test images (N, H, W, 3) uint8 with labels (N,) int64 and class names."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]


def _check_member(archive: Path, member: tarfile.TarInfo) -> None:
    """The rules of `sources.safe_extract`, for members read in memory instead of extracted."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or member.name.startswith(("/", "\\")):
        raise DataError(f"{archive}: member {member.name!r} escapes the target directory")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: member {member.name!r} is not a plain file")


def _archive_files(archive: Path) -> Iterator[tuple[str, bytes]]:
    """(member name, content) of every regular file of a tar archive, checked first."""
    try:
        with tarfile.open(archive) as tar:
            for member in tar:  # one pass: a gzip stream is expensive to seek back in
                _check_member(archive, member)
                if member.isfile():
                    handle = tar.extractfile(member)
                    yield member.name, handle.read() if handle else b""
    except (tarfile.TarError, EOFError, OSError) as error:
        raise MalformedDataError(f"{archive}: not a readable tar archive ({error})") from error


def _directory_files(root: Path) -> Iterator[tuple[str, bytes]]:
    """(relative path, content) of the batch files and images below `root` (nothing else read)."""
    wanted = {n for c in CANONICAL.values() for n in (*c.train_files, c.test_file, c.meta_file)}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name in wanted or path.name.lower().endswith(IMAGE_EXTENSIONS):
            yield path.relative_to(root).as_posix(), path.read_bytes()


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only: a batch file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray"  # numpy >= 2 name of the same module
        return super().find_class(module, name)


def _unpickle(name: str, content: bytes) -> dict[str, object]:
    """A CIFAR batch as a dict with str keys (the originals are Python 2 pickles, bytes keys)."""
    try:
        batch = _ArrayUnpickler(io.BytesIO(content), encoding="bytes").load()
    except Exception as error:
        raise MalformedDataError(f"{name}: cannot unpickle the batch ({error})") from error
    if not isinstance(batch, dict):
        raise MalformedDataError(f"{name}: expected a dict, found {type(batch).__name__}")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in batch.items()}


def _batch_arrays(name: str, content: bytes, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 32, 32, 3) uint8 and labels (n,) int64 of one canonical batch file.

    Each row of `data` is 3,072 bytes: the red, green and blue 32 x 32 planes in turn.
    """
    batch = _unpickle(name, content)
    if "data" not in batch or label_key not in batch:
        raise MalformedDataError(f"{name}: batch lacks 'data' or {label_key!r}")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise MalformedDataError(f"{name}: 'data' must be (n, 3072) uint8, is {data.shape} "
                                 f"{data.dtype}")
    if len(labels) != len(data):
        raise MalformedDataError(f"{name}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _class_names(name: str, content: bytes, key: str) -> tuple[str, ...]:
    meta = _unpickle(name, content)
    if key not in meta:
        raise MalformedDataError(f"{name}: meta file lacks {key!r}")
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in meta[key])


def _decode_image(content: bytes, resize_to: int | None) -> np.ndarray:
    """One image file as (H, W, 3) uint8 RGB (resized to a square when asked)."""
    from PIL import Image

    with Image.open(io.BytesIO(content)) as image:
        if image.mode != "RGB":
            image = image.convert("RGB")
        if resize_to is not None and image.size != (resize_to, resize_to):
            image = image.resize((resize_to, resize_to), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def _parse(files: Iterator[tuple[str, bytes]], label: str, resize_to: int | None) -> CIFARData:
    """Decode a canonical CIFAR layout or an image folder from (name, content) pairs.

    One pass: canonical batch files are kept as bytes (a few, large), images are decoded as
    they come (many, small). Bad images are collected and reported together by file name.
    """
    canonical_names = {n for c in CANONICAL.values()
                       for n in (*c.train_files, c.test_file, c.meta_file)}
    batches: dict[str, tuple[str, bytes]] = {}
    images: dict[str, list[tuple[str, str, np.ndarray]]] = {"train": [], "test": []}
    bad: list[str] = []
    for name, content in files:
        parts = PurePosixPath(name).parts
        if parts[-1] in canonical_names and len(parts) <= 2:
            batches[parts[-1]] = (name, content)
            continue
        if not name.lower().endswith(IMAGE_EXTENSIONS) or len(parts) < 3:
            continue
        split = parts[-3].lower()
        split = "train" if split in TRAIN_SPLITS else "test" if split in TEST_SPLITS else None
        if split is None:
            continue
        try:
            array = _decode_image(content, resize_to)
        except Exception as error:  # Pillow raises many types for a broken file
            bad.append(f"{name} ({type(error).__name__}: {error})")
            continue
        images[split].append((parts[-2], name, array))
    if bad:
        listed = "; ".join(bad[:MAX_LISTED])
        more = f" and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        raise MalformedDataError(f"{label}: {len(bad)} unreadable images: {listed}{more}")
    for kind in CANONICAL.values():
        if kind.meta_file in batches and kind.test_file in batches:
            return _parse_canonical(kind, batches, label)
    if images["train"] or images["test"]:
        return _parse_folders(images, label)
    raise MalformedDataError(
        f"{label}: found neither CIFAR batch files (data_batch_1..5, test_batch, batches.meta "
        f"or train, test, meta) nor images in <split>/<class>/ folders with split in "
        f"{TRAIN_SPLITS + TEST_SPLITS}"
    )


def _parse_canonical(kind: Canonical, batches: dict[str, tuple[str, bytes]],
                     label: str) -> CIFARData:
    missing = [n for n in kind.train_files if n not in batches]
    if missing:
        raise MalformedDataError(f"{label}: batch files {', '.join(missing)} are missing")
    train = [_batch_arrays(*batches[n], kind.label_key) for n in kind.train_files]
    test_x, test_y = _batch_arrays(*batches[kind.test_file], kind.label_key)
    classes = _class_names(*batches[kind.meta_file], kind.names_key)
    train_y = np.concatenate([y for _, y in train])
    for labels in (train_y, test_y):
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise MalformedDataError(f"{label}: labels outside 0..{len(classes) - 1}")
    return CIFARData(np.concatenate([x for x, _ in train]), train_y, test_x, test_y, classes,
                     label)


def _parse_folders(images: dict[str, list[tuple[str, str, np.ndarray]]],
                   label: str) -> CIFARData:
    classes = tuple(sorted({c for c, _, _ in images["train"]}))
    unknown = sorted({c for c, _, _ in images["test"]} - set(classes))
    if unknown:
        raise MalformedDataError(f"{label}: test classes {unknown} have no training images")
    shapes = {a.shape for entries in images.values() for _, _, a in entries}
    if len(shapes) > 1:
        first = {}
        for entries in images.values():
            for _, name, array in entries:
                first.setdefault(array.shape, name)
        examples = ", ".join(f"{name} {shape[1]}x{shape[0]}" for shape, name in first.items())
        raise MalformedDataError(
            f"{label}: images differ in size ({examples}); pass resize_to=<side> to resize them"
        )
    index = {c: i for i, c in enumerate(classes)}
    arrays = []
    for split in ("train", "test"):
        entries = sorted(images[split], key=lambda e: (e[0], e[1]))
        shape = next(iter(shapes)) if shapes else (32, 32, 3)
        x = np.stack([a for _, _, a in entries]) if entries else np.zeros((0, *shape), np.uint8)
        y = np.array([index[c] for c, _, _ in entries], dtype=np.int64)
        arrays += [x, y]
    return CIFARData(*arrays, classes=classes, source=label)


def read(source: Path | str, resize_to: int | None = None) -> CIFARData:
    """Decode a tar archive or directory in any supported layout, without the cache."""
    source = Path(source).expanduser()
    if source.is_dir():
        return _parse(_directory_files(source), str(source), resize_to)
    if source.is_file():
        return _parse(_archive_files(source), str(source), resize_to)
    raise DataError(f"{source} does not exist: pass a CIFAR archive or an image-folder directory")

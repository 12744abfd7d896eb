"""The 121 UCI data sets of Fernandez-Delgado et al. (JMLR 2014), in the authors' layout.

Each data set is a folder `<name>/` with
- `<name>.txt`: metadata lines `key= value` (`n_entradas` features, `n_clases` classes,
  `fich1` the data file, `n_patrons1` its rows, `fich2`/`n_patrons2` an original test file);
- `fich1` (and `fich2`): tab-separated, one header line, a row number first, the label `clase`
  (0..C-1) last, features already standardised;
- `conxuntos.dat`: two lines of 0-based row indices into `fich1`, a training half and a test half;
- `conxuntos_kfold.dat`: eight lines, four folds of (train, test) indices.

Protocol (`split="paper"`, the default): rows of `fich1` at `conxuntos.dat` line 1 are the
training pool, line 2 the test set, and a seeded random 15% of the pool (rounded half up) is the
validation set. `split="kfold"` uses fold `fold` of `conxuntos_kfold.dat` instead; `split=
"original"` trains on all of `fich1` and tests on `fich2` (where the set has one).

The authors' copy standardises most `fich2` files by their own columns (adult, statlog-landsat,
statlog-shuttle, pendigits, thyroid: every test column has mean 0 and SD 1), but ships some raw
(image-segmentation: column means up to 125, SDs 0.02 to 73; also annealing, hill-valley,
horse-colic). A model trained on `fich1` cannot read those; `original_test_scaling=
"standardised"` z-scores `fich2`'s columns by their own mean and SD (that same convention; the
labels are not used), and "as_shipped" (the default, what older records used) warns when the
file is raw.

Every file is verified against `uci_sha256.txt` (the sha256 of our reference copy) and each set
is parsed once into `data/uci/<name>.npz`.

Kept whole (over 300 lines): one data format, from its files to the splits of the protocol.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from companion.data import npz_cache
from companion.data.sources import (
    DataError,
    cache_dir,
    download,
    env_path,
    safe_extract,
    verify,
)

ENV_VARIABLE = "COMPANION_UCI_DIR"
ARCHIVE_URL = "http://persoal.citius.usc.es/manuel.fernandez.delgado/papers/jmlr/data.tar.gz"
MANIFEST = Path(__file__).with_name("uci_sha256.txt")
SPLITS = ("paper", "kfold", "original")
ORIGINAL_TEST_SCALINGS = ("as_shipped", "standardised")
# A file is on another scale than standardised features when a column's mean is more than this
# from 0 or a non-constant column's SD more than this times (or less than 1/this of) 1. Raw
# files miss it by far (image-segmentation: mean 125, SD 0.024); files scaled by their training
# file's statistics (soybean, spect, hayes-roth) stay inside it.
OFF_SCALE_FACTOR = 10.0
CACHE_VERSION = 1


class UnknownDatasetError(DataError, ValueError):
    """The name is not one of the 121 data sets."""


class MissingDataError(DataError, FileNotFoundError):
    """A file of the data set is not available from any source."""


class MalformedDataError(DataError, ValueError):
    """A data or index file does not parse or contradicts its metadata."""


class ScaleWarning(UserWarning):
    """An original test file is not standardised like the training file."""


@dataclass(frozen=True)
class Split:
    """Features (n, d) float32 and labels (n,) int64 of one split."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class UCIData:
    """The three splits of one data set and its number of classes."""

    name: str
    train: Split
    val: Split
    test: Split
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.train.x.shape[1]


@cache
def manifest() -> dict[str, dict[str, str]]:
    """{data set: {file name: sha256}} from the project's manifest."""
    table: dict[str, dict[str, str]] = {}
    for line in MANIFEST.read_text().splitlines():
        if not line.strip():
            continue
        digest, path = line.split(maxsplit=1)
        folder, file_name = Path(path).parts[-2:]
        table.setdefault(folder, {})[file_name] = digest
    return table


def names() -> list[str]:
    """All 121 data set names, sorted."""
    return sorted(manifest())


def _check_name(name: str) -> None:
    if name not in manifest():
        raise UnknownDatasetError(
            f"Unknown UCI data set {name!r}. Valid names: {', '.join(names())}"
        )


def _source_dirs() -> list[Path]:
    """Candidate parents of `<name>/` folders, in lookup order."""
    dirs = []
    if (local := env_path(ENV_VARIABLE)) is not None:
        dirs.append(local)
    dirs.append(cache_dir() / "uci" / "raw")
    return dirs


def _find_file(name: str, file_name: str, allow_download: bool) -> Path:
    for parent in _source_dirs():
        candidate = parent / name / file_name
        if candidate.is_file():
            verify(candidate, manifest()[name][file_name])
            return candidate
    # A local copy named by the environment variable is authoritative: no download behind it.
    if allow_download and env_path(ENV_VARIABLE) is None:
        _download_archive()
        return _find_file(name, file_name, allow_download=False)
    raise MissingDataError(
        f"{name}: file {file_name} was not found in {', '.join(map(str, _source_dirs()))}. "
        f"Point {ENV_VARIABLE} at a directory with the authors' layout that has {name}/"
        f"{file_name}, or unset {ENV_VARIABLE} on a machine with a network to download "
        f"{ARCHIVE_URL}."
    )


def _download_archive() -> None:
    """Fetch the authors' archive once and extract it under `data/uci/raw`.

    The archive itself has no published hash; every file taken from it is verified
    against the project's per-file manifest instead.
    """
    raw = cache_dir() / "uci" / "raw"
    archive = download(ARCHIVE_URL, None, cache_dir() / "uci", ENV_VARIABLE)
    staging = Path(tempfile.mkdtemp(dir=cache_dir() / "uci"))
    safe_extract(archive, staging)
    marker = next(staging.rglob("abalone.txt"), None)
    if marker is None:
        raise DataError(f"{archive}: unexpected layout (no abalone/abalone.txt inside)")
    if not raw.exists():
        os.replace(marker.parent.parent, raw)


def _metadata(name: str, allow_download: bool) -> dict[str, str]:
    path = _find_file(name, f"{name}.txt", allow_download)
    meta = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            meta[key.strip()] = value.strip()
    for key in ("n_entradas", "n_clases", "fich1", "n_patrons1"):
        if key not in meta:
            raise MalformedDataError(f"{path}: metadata lacks {key}=")
    return meta


def _read_table(path: Path, rows: int, features: int, classes: int) -> tuple[np.ndarray, ...]:
    """Parse one `*_R.dat` file into (x float32 (rows, features), y int64 (rows,))."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep="\t", index_col=0)
    except Exception as error:
        raise MalformedDataError(f"{path}: cannot parse ({error})") from error
    if frame.shape != (rows, features + 1):
        raise MalformedDataError(
            f"{path}: {frame.shape[0]} rows x {frame.shape[1] - 1} features, metadata says "
            f"{rows} x {features}"
        )
    values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        raise MalformedDataError(
            f"{path}: line {bad[0] + 2} has a missing or non-numeric value "
            f"({bad.size} malformed rows in all)"
        )
    labels = values[:, -1]
    if (labels != np.round(labels)).any() or labels.min() < 0 or labels.max() >= classes:
        raise MalformedDataError(f"{path}: labels must be integers in 0..{classes - 1}")
    return values[:, :-1].astype(np.float32), labels.astype(np.int64)


def _read_indices(path: Path, rows: int) -> list[np.ndarray]:
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            indices = np.array(line.split(), dtype=np.int64)
        except ValueError as error:
            raise MalformedDataError(f"{path}: line {number} is not a list of integers") from error
        if indices.min() < 0 or indices.max() >= rows:
            raise MalformedDataError(f"{path}: line {number} has indices outside 0..{rows - 1}")
        lines.append(indices)
    return lines


def _parse(name: str, allow_download: bool) -> dict[str, np.ndarray]:
    meta = _metadata(name, allow_download)
    features, classes = int(meta["n_entradas"]), int(meta["n_clases"])
    folds = {}
    for file_name in ("conxuntos.dat", "conxuntos_kfold.dat"):
        folds[file_name] = _read_indices(
            _find_file(name, file_name, allow_download), int(meta["n_patrons1"])
        )
    x, y = _read_table(
        _find_file(name, meta["fich1"], allow_download), int(meta["n_patrons1"]), features, classes
    )
    arrays = {"x": x, "y": y, "n_classes": np.array(classes)}
    if len(folds["conxuntos.dat"]) != 2 or len(folds["conxuntos_kfold.dat"]) != 8:
        raise MalformedDataError(f"{name}: conxuntos.dat needs 2 lines, conxuntos_kfold.dat 8")
    arrays["half_train"], arrays["half_test"] = folds["conxuntos.dat"]
    for index, line in enumerate(folds["conxuntos_kfold.dat"]):
        arrays[f"kfold_{index // 2}_{'test' if index % 2 else 'train'}"] = line
    if "fich2" in meta:
        arrays["x_original_test"], arrays["y_original_test"] = _read_table(
            _find_file(name, meta["fich2"], allow_download),
            int(meta["n_patrons2"]),
            features,
            classes,
        )
    return arrays


def _cache_path(name: str) -> Path:
    return cache_dir() / "uci" / f"{name}.npz"


def _cache_key(name: str) -> str:
    digests = manifest()[name]
    return f"v{CACHE_VERSION}:" + ",".join(digests[k] for k in sorted(digests))


def arrays(name: str, allow_download: bool = True) -> dict[str, np.ndarray]:
    """All parsed arrays of a data set, from the binary cache (built on first use)."""
    _check_name(name)
    path = _cache_path(name)
    if (cached := npz_cache.read(path, _cache_key(name))) is not None:
        return cached
    parsed = _parse(name, allow_download)
    npz_cache.write(path, _cache_key(name), parsed)  # atomic: readers never see half a file
    return parsed


def is_available(name: str) -> bool:
    """True when the data set can be loaded without a download (cache or local copy).

    A data set whose files are damaged (checksum or parse error) is False with a warning that
    names the file, so one bad data set does not stop a table or sweep of the others.
    """
    try:
        arrays(name, allow_download=False)
    except MissingDataError:
        return False
    except UnknownDatasetError:
        raise
    except DataError as error:
        warnings.warn(f"{name} left out: {error}", npz_cache.CacheWarning, stacklevel=2)
        return False
    return True


def validation_size(pool_size: int, fraction: float = 0.15) -> int:
    """round(fraction * pool_size), halves rounded up."""
    return int(np.floor(fraction * pool_size + 0.5))


def column_scales(x: np.ndarray) -> dict[str, float]:
    """Largest |column mean| and the smallest and largest SD (ddof 1) of non-constant columns."""
    means, sds = x.mean(axis=0), x.std(axis=0, ddof=1)
    varying = sds > 0
    return {"largest |mean|": float(np.abs(means).max()),
            "smallest SD": float(sds[varying].min()) if varying.any() else 0.0,
            "largest SD": float(sds[varying].max()) if varying.any() else 0.0}


def on_standard_scale(x: np.ndarray, factor: float = OFF_SCALE_FACTOR) -> bool:
    """No column's mean is more than `factor` from 0, no non-constant column's SD more than
    `factor` times or less than 1/`factor` of 1: readable by a model trained on standardised
    features (a file scaled by its training file's statistics passes; a raw one does not)."""
    scales = column_scales(x)
    return (scales["largest |mean|"] <= factor and scales["smallest SD"] >= 1 / factor
            and scales["largest SD"] <= factor)


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns z-scored by their own mean and SD (ddof 1, as the authors' files); constant
    columns become 0."""
    sds = x.std(axis=0, ddof=1)
    return ((x - x.mean(axis=0)) / np.where(sds > 0, sds, 1)).astype(x.dtype)


def _original_test(name: str, data: dict[str, np.ndarray], scaling: str) -> np.ndarray:
    """fich2's features, standardised if asked; warns when an as-shipped file is raw."""
    x_test = data["x_original_test"]
    if scaling == "standardised":
        return standardise(x_test)
    if not on_standard_scale(x_test):
        scales = column_scales(x_test)
        warnings.warn(
            f"{name}: the original test file is not standardised (column means up to "
            f"{scales['largest |mean|']:.3g}, SDs {scales['smallest SD']:.3g} to "
            f"{scales['largest SD']:.3g}), so a model trained on the standardised training "
            "file cannot read it; pass original_test_scaling='standardised'",
            ScaleWarning, stacklevel=3)
    return x_test


def load(
    name: str,
    seed: int = 0,
    split: str = "paper",
    fold: int = 0,
    val_fraction: float = 0.15,
    original_test_scaling: str = "as_shipped",
) -> UCIData:
    """Load one data set as train/validation/test splits.

    `seed` only chooses the validation rows (a seeded random `val_fraction` of the training
    pool). See the module docstring for the three `split` protocols and
    `original_test_scaling` (used by `split="original"` only).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if original_test_scaling not in ORIGINAL_TEST_SCALINGS:
        raise ValueError(f"original_test_scaling must be one of {ORIGINAL_TEST_SCALINGS}, "
                         f"not {original_test_scaling!r}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), not {val_fraction}")
    data = arrays(name)
    x, y = data["x"], data["y"]
    if split == "paper":
        pool, test = data["half_train"], data["half_test"]
        x_test, y_test = x[test], y[test]
    elif split == "kfold":
        if fold not in range(4):
            raise ValueError(f"fold must be 0..3, not {fold}")
        pool = data[f"kfold_{fold}_train"]
        x_test, y_test = x[data[f"kfold_{fold}_test"]], y[data[f"kfold_{fold}_test"]]
    else:
        if "x_original_test" not in data:
            raise ValueError(f"{name} has no original test file (fich2); use split='paper'")
        pool = np.arange(len(y))
        x_test = _original_test(name, data, original_test_scaling)
        y_test = data["y_original_test"]
    shuffled = np.random.default_rng(seed).permutation(pool)
    n_val = validation_size(len(pool), val_fraction)
    val, train = shuffled[:n_val], shuffled[n_val:]
    return UCIData(
        name=name,
        train=Split(x[train], y[train]),
        val=Split(x[val], y[val]),
        test=Split(x_test, y_test),
        n_classes=int(data["n_classes"]),
    )

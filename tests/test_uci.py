import shutil
import time
import warnings

import numpy as np
import pytest

from companion.class_lr import registry
from companion.data import uci
from companion.data.sources import ChecksumError

MISSING = {"connect-4", "miniboone", "musk-2"}


def _lines(uci_dir, name):
    return (uci_dir / name / "conxuntos.dat").read_text().split("\n")


@pytest.mark.parametrize("name", registry.datasets())
def test_paper_split_sizes(uci_dir, name):
    if name in MISSING:
        with pytest.raises(uci.MissingDataError, match=f"{name}_R.dat"):
            uci.load(name)
        return
    data = uci.load(name)
    pool, test = (len(line.split()) for line in _lines(uci_dir, name)[:2])
    assert len(data.test) == test
    assert len(data.val) == uci.validation_size(pool) == int(np.floor(0.15 * pool + 0.5))
    assert len(data.train) + len(data.val) == pool
    assert data.train.x.dtype == np.float32 and data.train.y.dtype == np.int64
    assert data.train.y.max() < data.n_classes


def test_missing_sets_say_so(uci_dir):
    for name in MISSING:
        assert not uci.is_available(name)
        with pytest.raises(uci.MissingDataError, match="COMPANION_UCI_DIR"):
            uci.load(name)


def test_unknown_name_lists_valid_names(uci_dir):
    with pytest.raises(uci.UnknownDatasetError, match="abalone, acute-inflammation"):
        uci.load("abalonee")


def test_validation_rows_follow_the_seed(uci_dir):
    first, again, other = uci.load("car", seed=0), uci.load("car", seed=0), uci.load("car", seed=1)
    np.testing.assert_array_equal(first.val.x, again.val.x)
    assert not np.array_equal(first.val.x, other.val.x)
    np.testing.assert_array_equal(first.test.x, other.test.x)  # the test set never moves


def test_kfold_and_original_splits(uci_dir):
    kfold = uci.load("abalone", split="kfold", fold=2)
    assert len(kfold.test) == len((uci_dir / "abalone" / "conxuntos_kfold.dat")
                                  .read_text().split("\n")[5].split())
    original = uci.load("adult", split="original")
    assert len(original.test) == 16281 and len(original.train) + len(original.val) == 32561
    with pytest.raises(ValueError, match="no original test file"):
        uci.load("abalone", split="original")
    with pytest.raises(ValueError, match="fold"):
        uci.load("abalone", split="kfold", fold=4)


def test_raw_original_test_file_warns_and_standardises(uci_dir):
    with pytest.warns(uci.ScaleWarning, match="image-segmentation.*original_test_scaling"):
        shipped = uci.load("image-segmentation", split="original")
    assert not uci.on_standard_scale(shipped.test.x)  # raw pixel counts: column means near 125
    fixed = uci.load("image-segmentation", split="original", original_test_scaling="standardised")
    np.testing.assert_allclose(fixed.test.x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(fixed.test.x.std(axis=0, ddof=1), 1, atol=1e-4)
    np.testing.assert_array_equal(fixed.test.y, shipped.test.y)  # labels untouched
    np.testing.assert_array_equal(fixed.train.x, shipped.train.x)  # so is the training file
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        uci.load("adult", split="original")  # standardised by its authors: no warning
    with pytest.raises(ValueError, match="original_test_scaling must be one of"):
        uci.load("adult", split="original", original_test_scaling="raw")


def test_standardise_keeps_constant_columns_at_zero():
    x = np.array([[1.0, 5.0, 100.0], [3.0, 5.0, 300.0], [5.0, 5.0, 200.0]], dtype=np.float32)
    z = uci.standardise(x)
    np.testing.assert_allclose(z[:, 0], [-1, 0, 1])  # mean 3, SD 2 (ddof 1)
    np.testing.assert_array_equal(z[:, 1], 0)
    assert uci.on_standard_scale(z) and not uci.on_standard_scale(x)
    assert uci.on_standard_scale(z / 5) and not uci.on_standard_scale(z / 20)  # SD within 10x


def test_all_sets_load_from_cache_quickly(uci_dir):
    available = [n for n in uci.names() if n not in MISSING]
    for name in available:
        uci.arrays(name)  # build the cache
    start = time.perf_counter()
    for name in available:
        uci.load(name)
    assert time.perf_counter() - start < 5


def _private_copy(uci_dir, tmp_path, monkeypatch, name="car"):
    shutil.copytree(uci_dir / name, tmp_path / "uci" / name)
    monkeypatch.setenv("COMPANION_UCI_DIR", str(tmp_path / "uci"))
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "uci" / name


def test_checksum_mismatch_is_named_and_leaves_no_cache(uci_dir, tmp_path, monkeypatch):
    folder = _private_copy(uci_dir, tmp_path, monkeypatch)
    with open(folder / "car_R.dat", "a") as handle:
        handle.write("\n")
    with pytest.raises(ChecksumError, match="car_R.dat"):
        uci.load("car")
    assert not list((tmp_path / "cache").rglob("*.npz"))


def test_malformed_rows_are_reported(uci_dir, tmp_path, monkeypatch):
    folder = _private_copy(uci_dir, tmp_path, monkeypatch)
    lines = (folder / "car_R.dat").read_text().split("\n")
    lines[5] = lines[5].replace("\t", "\tnot-a-number", 1)
    data = {"car_R.dat": "\n".join(lines).encode()}
    # The manifest holds the reference hashes; accept the edited file to reach the parser.
    monkeypatch.setitem(uci.manifest()["car"], "car_R.dat", _sha(data["car_R.dat"]))
    (folder / "car_R.dat").write_bytes(data["car_R.dat"])
    with pytest.raises(uci.MalformedDataError, match="car_R.dat"):
        uci.load("car")
    assert not list((tmp_path / "cache").rglob("*.npz"))


def test_cache_is_rebuilt_when_stale(uci_dir, tmp_path, monkeypatch):
    _private_copy(uci_dir, tmp_path, monkeypatch)
    first = uci.load("car")
    cache_file = tmp_path / "cache" / "uci" / "car.npz"
    arrays = dict(np.load(cache_file))
    arrays["cache_key"] = np.array("stale")
    arrays["x"] = arrays["x"] * 0
    np.savez(cache_file, **arrays)
    np.testing.assert_array_equal(uci.load("car").train.x, first.train.x)


def _sha(payload: bytes) -> str:
    import hashlib

    return hashlib.sha256(payload).hexdigest()

"""CIFAR-10/100 and image-folder loading, on small generated archives and on the real JPEG copy."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from companion.data import cifar
from companion.data.sources import ChecksumError, DataError
from companion.fixed_classifier.augment import CHANNEL_STATISTICS, channel_statistics

# Read before the fixture below replaces them.
REAL_ARCHIVE = os.environ.get(cifar.ENV_VARIABLE)
USER_DATA_DIR = os.environ.get("COMPANION_DATA_DIR")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test decodes into its own cache and sees no local CIFAR-10 archive."""
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(cifar.ENV_VARIABLE, raising=False)


def _planes(count: int, seed: int) -> np.ndarray:
    """Canonical rows (count, 3072): red, green and blue 32 x 32 planes."""
    return np.random.default_rng(seed).integers(0, 256, (count, 3072), dtype=np.uint8)


def _add(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))


def _pickle(payload: dict) -> bytes:
    # bytes keys and protocol 2, like the Python 2 pickles of the real archives
    return pickle.dumps({k.encode(): v for k, v in payload.items()}, protocol=2)


def make_cifar10_archive(path: Path, per_batch: int = 6, test: int = 8) -> dict[str, np.ndarray]:
    """A cifar-10-python.tar.gz look-alike with `per_batch` images in each of 5 batches."""
    rows, labels = [], []
    with tarfile.open(path, "w:gz") as tar:
        for index in range(1, 6):
            data = _planes(per_batch, index)
            y = [(index + i) % 10 for i in range(per_batch)]
            rows.append(data)
            labels += y
            _add(tar, f"cifar-10-batches-py/data_batch_{index}",
                 _pickle({"data": data, "labels": y, "batch_label": b"training batch"}))
        test_rows = _planes(test, 99)
        test_y = [i % 10 for i in range(test)]
        _add(tar, "cifar-10-batches-py/test_batch", _pickle({"data": test_rows, "labels": test_y}))
        _add(tar, "cifar-10-batches-py/batches.meta",
             _pickle({"label_names": [c.encode() for c in CIFAR10_CLASSES], "num_vis": 3072}))
    return {"train": np.concatenate(rows), "train_y": np.array(labels), "test": test_rows,
            "test_y": np.array(test_y)}


def make_cifar100_archive(path: Path, train: int = 30, test: int = 10) -> None:
    """A cifar-100-python.tar.gz look-alike: train, test, meta with fine and coarse labels."""
    with tarfile.open(path, "w:gz") as tar:
        for name, count in (("train", train), ("test", test)):
            fine = [(7 * i) % 100 for i in range(count)]
            _add(tar, f"cifar-100-python/{name}", _pickle(
                {"data": _planes(count, count), "fine_labels": fine,
                 "coarse_labels": [f // 5 for f in fine]}))
        _add(tar, "cifar-100-python/meta", _pickle(
            {"fine_label_names": [f"class{i:03d}".encode() for i in range(100)],
             "coarse_label_names": [f"super{i:02d}".encode() for i in range(20)]}))


def make_image_folder(root: Path, classes=("cat", "dog", "frog"), per_class: int = 3,
                      size: int = 32) -> dict[str, np.ndarray]:
    """PNG images (lossless) in root/{train,test}/<class>/; returns the expected arrays."""
    expected: dict[str, list] = {"train": [], "test": []}
    for split, count in (("train", per_class), ("test", 1)):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.random.default_rng([label, i, len(split)]).integers(
                    0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")
                expected[split].append(pixels)
    return {k: np.stack(v) for k, v in expected.items()}


def _tar_directory(source: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="images")
    return archive


# ---------------------------------------------------------------- canonical archives


def test_cifar10_canonical_layout(tmp_path):
    archive = tmp_path / "fake-cifar-10.tar.gz"
    truth = make_cifar10_archive(archive)
    data = cifar.load("cifar10", source=archive)
    assert data.train_x.shape == (30, 32, 32, 3) and data.test_x.shape == (8, 32, 32, 3)
    assert data.train_x.dtype == np.uint8 and data.train_y.dtype == np.int64
    assert data.classes == CIFAR10_CLASSES and data.num_classes == 10
    np.testing.assert_array_equal(data.train_y, truth["train_y"])
    np.testing.assert_array_equal(data.test_y, truth["test_y"])
    # row layout: 1024 red, then green, then blue values, each plane row-major
    row = truth["train"][7]
    assert data.train_x[7, 0, 1, 0] == row[1]
    assert data.train_x[7, 2, 3, 1] == row[1024 + 2 * 32 + 3]
    assert data.train_x[7, 31, 31, 2] == row[3071]
    np.testing.assert_array_equal(data.test_x[-1].transpose(2, 0, 1).reshape(-1),
                                  truth["test"][-1])


def test_cifar100_canonical_layout(tmp_path):
    archive = tmp_path / "fake-cifar-100.tar.gz"
    make_cifar100_archive(archive)
    data = cifar.load("cifar100", source=archive)
    assert data.num_classes == 100 and data.classes[7] == "class007"
    assert data.train_x.shape == (30, 32, 32, 3) and data.test_x.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(data.train_y, [(7 * i) % 100 for i in range(30)])


def test_canonical_layout_in_a_directory(tmp_path):
    archive = tmp_path / "fake.tar.gz"
    truth = make_cifar10_archive(archive)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    data = cifar.read(tmp_path / "extracted" / "cifar-10-batches-py")
    np.testing.assert_array_equal(data.train_y, truth["train_y"])


def test_wrong_number_of_classes_is_refused(tmp_path):
    archive = tmp_path / "fake-cifar-10.tar.gz"
    make_cifar10_archive(archive)
    with pytest.raises(cifar.MalformedDataError, match="10 classes, cifar100 has 100"):
        cifar.load("cifar100", source=archive)


def test_pickles_cannot_run_code(tmp_path):
    class Hostile:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    archive = tmp_path / "hostile.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
            _add(tar, f"cifar-10-batches-py/{name}", pickle.dumps({b"data": Hostile()}))
    with pytest.raises(cifar.MalformedDataError, match="refusing to load"):
        cifar.read(archive)


# ---------------------------------------------------------------- image folders


def test_image_folder_directory_and_archive(tmp_path):
    truth = make_image_folder(tmp_path / "images")
    data = cifar.read(tmp_path / "images")
    assert data.classes == ("cat", "dog", "frog")
    np.testing.assert_array_equal(data.train_x, truth["train"])  # PNG is lossless
    np.testing.assert_array_equal(data.train_y, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(data.test_x, truth["test"])
    archive = _tar_directory(tmp_path / "images", tmp_path / "images.tar.gz")
    from_archive = cifar.load("pets", source=archive)
    np.testing.assert_array_equal(from_archive.train_x, truth["train"])
    assert (Path(os.environ["COMPANION_DATA_DIR"]) / "pets").is_dir()


def test_image_folder_jpeg_grayscale_and_val_split(tmp_path):
    root = tmp_path / "imagenet-style"
    for split, name in (("train", "n01440764"), ("val", "n01440764"), ("train", "n01443537")):
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((32, 32), 200, np.uint8), mode="L").save(folder / "a.JPEG")
    data = cifar.read(root)
    assert data.classes == ("n01440764", "n01443537")
    assert data.train_x.shape == (2, 32, 32, 3) and data.test_x.shape == (1, 32, 32, 3)
    assert np.abs(data.test_x.astype(int) - 200).max() <= 2  # JPEG, gray -> RGB


def test_image_sizes_must_agree_unless_resized(tmp_path):
    make_image_folder(tmp_path / "images", per_class=1)
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(tmp_path / "images/train/cat/big.png")
    with pytest.raises(cifar.MalformedDataError, match=r"big.png 48x40.*resize_to"):
        cifar.read(tmp_path / "images")
    data = cifar.read(tmp_path / "images", resize_to=16)
    assert data.train_x.shape == (4, 16, 16, 3)


def test_unreadable_images_are_named(tmp_path):
    make_image_folder(tmp_path / "images", per_class=1)
    (tmp_path / "images/train/dog/broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "images/test/cat/empty.png").write_bytes(b"")
    with pytest.raises(cifar.MalformedDataError,
                       match=r"2 unreadable images: .*empty.png.*broken.jpg"):
        cifar.read(tmp_path / "images")


def test_unknown_layout_says_what_is_expected(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(cifar.MalformedDataError, match="data_batch_1..5"):
        cifar.read(tmp_path / "notes")


# ---------------------------------------------------------------- safety and checksums


def test_path_traversal_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "../train/cat/0.png", b"x")
    with pytest.raises(DataError, match="escapes the target directory"):
        cifar.read(archive)
    assert not (tmp_path.parent / "train").exists()


def test_links_are_refused(tmp_path):
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("images/train/cat/0.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(DataError, match="not a plain file"):
        cifar.read(archive)


def test_local_archive_checksum_mismatch(tmp_path, monkeypatch):
    bad = tmp_path / "cifar10-jpg.tar.gz"
    make_cifar10_archive(bad)  # a valid archive, but not the one of the manifest
    monkeypatch.setenv(cifar.ENV_VARIABLE, str(bad))
    with pytest.raises(ChecksumError, match=r"cifar10-jpg.tar.gz: sha256 .* does not match"):
        cifar.load("cifar10")
    renamed = bad.rename(tmp_path / "my-copy.tgz")  # the variable's archive is always checked
    monkeypatch.setenv(cifar.ENV_VARIABLE, str(renamed))
    with pytest.raises(ChecksumError):
        cifar.load("cifar10")


def test_not_an_archive(tmp_path):
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(cifar.MalformedDataError, match="broken.tar.gz: not a readable tar"):
        cifar.read(tmp_path / "broken.tar.gz")


def test_canonical_archive_md5_mismatch(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    make_cifar10_archive(archive)
    with pytest.raises(ChecksumError, match="md5 .* does not match the published c58f3010"):
        cifar.load("cifar10", source=archive)


def test_missing_sources_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(cifar.ENV_VARIABLE, str(tmp_path / "nowhere.tar.gz"))
    with pytest.raises(DataError, match="COMPANION_CIFAR10_JPG points at .*nowhere"):
        cifar.load("cifar10")
    monkeypatch.delenv(cifar.ENV_VARIABLE)

    def offline(*args, **kwargs):
        raise DataError("no network")

    monkeypatch.setattr(cifar, "download", offline)
    with pytest.raises(DataError, match=r"cifar100: not in the cache .*pass source="):
        cifar.load("cifar100")
    with pytest.raises(DataError, match="set COMPANION_CIFAR10_JPG"):
        cifar.load("cifar10")
    cifar.prepare()  # without the variable and offline: a note, not a failure


# ---------------------------------------------------------------- cache


def test_archives_are_decoded_once(tmp_path, monkeypatch):
    archive = tmp_path / "fake.tar.gz"
    make_cifar10_archive(archive)
    first = cifar.load("cifar10", source=archive)
    files = list((Path(os.environ["COMPANION_DATA_DIR"]) / "cifar10").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left

    def fail(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cifar, "read", fail)
    again = cifar.load("cifar10", source=archive)
    np.testing.assert_array_equal(first.train_x, again.train_x)
    assert again.classes == first.classes


def test_validation_split_is_seeded(tmp_path):
    archive = tmp_path / "fake.tar.gz"
    make_cifar10_archive(archive)
    data = cifar.load("cifar10", source=archive)
    a, b = cifar.validation_split(data, 5, seed=1), cifar.validation_split(data, 5, seed=1)
    assert len(a.test_y) == 5 and len(a.train_y) == 25
    np.testing.assert_array_equal(a.test_x, b.test_x)
    assert not np.array_equal(a.test_x, cifar.validation_split(data, 5, seed=2).test_x)


# ---------------------------------------------------------------- the real archive


def test_real_cifar10_jpeg_archive(monkeypatch):
    """The project's CIFAR-10 copy: 50,000 + 10,000 images in 10 balanced classes.

    Decoded once (about 10 s) into the repository's `data/` cache, then read back in < 1 s.
    """
    archive = REAL_ARCHIVE
    if not archive:
        pytest.fail(f"{cifar.ENV_VARIABLE} is not set: point it at cifar10-jpg.tar.gz (on the "
                    "project's machines ../shared/data/cifar10-jpg.tar.gz; `.ci/run` and the "
                    "Makefile set it) to run this test.")
    monkeypatch.setenv(cifar.ENV_VARIABLE, archive)
    if USER_DATA_DIR:  # keep the decoded copy in the user's cache (default data/) between runs
        monkeypatch.setenv("COMPANION_DATA_DIR", USER_DATA_DIR)
    else:
        monkeypatch.delenv("COMPANION_DATA_DIR")
    cifar.load("cifar10")
    start = time.perf_counter()
    data = cifar.load("cifar10")
    assert time.perf_counter() - start < 10
    assert data.train_x.shape == (50_000, 32, 32, 3) and data.test_x.shape == (10_000, 32, 32, 3)
    assert data.classes == CIFAR10_CLASSES
    assert np.bincount(data.train_y).tolist() == [5000] * 10
    assert np.bincount(data.test_y).tolist() == [1000] * 10
    mean, std = channel_statistics(data.train_x)
    np.testing.assert_allclose(mean, CHANNEL_STATISTICS["cifar10"][0], atol=3e-3)
    np.testing.assert_allclose(std, CHANNEL_STATISTICS["cifar10"][1], atol=3e-3)

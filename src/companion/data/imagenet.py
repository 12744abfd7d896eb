"""ImageNet-format image folders: the ResNet recipe's transforms, decoded by PIL in workers.

Layout (the standard one of ILSVRC-2012 after the usual preparation)::

    <root>/train/<wnid>/*.JPEG
    <root>/val/<wnid>/*.JPEG

`<root>` is `$COMPANION_IMAGENET_DIR` or the `source` argument. Classes are the sorted folder
names of `train/`. The validation images as distributed (one flat `val/` folder plus a label
file) are sorted into `val/<wnid>/` once by

    python -m companion.data.imagenet sort-val <root> <labels file>

where the label file has one `<image file name> <wnid>` pair a line (space, tab or comma), or is
Kaggle's `LOC_val_solution.csv` (`ImageId,PredictionString` whose first word is the wnid).

Transforms (He et al. 2016, as torchvision's reference recipe): training images get a random
resized crop (8%-100% of the area, aspect ratio 3/4-4/3) to 224 x 224 and a horizontal flip with
probability 1/2; validation images are resized so that the short side is 256 and center-cropped
to 224. Both return uint8 tensors (3, H, W): the trainer normalises with `IMAGENET_MEAN/STD` on
its device (a quarter of the bytes between processes, and the GPU does the arithmetic).
Randomness comes from torch's generator, which the DataLoader seeds per worker and epoch.

`generate_folder` writes a small ImageNet-format folder of JPEGs of varied sizes (the tests'
and the smoke profile's fixture).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from companion.data.sources import DataError, env_path

ENV_VARIABLE = "COMPANION_IMAGENET_DIR"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EXTENSIONS = (".jpeg", ".jpg", ".png")
SORT_COMMAND = "python -m companion.data.imagenet sort-val <root> <labels file>"


# ---------------------------------------------------------------- transforms


def _pil():
    from PIL import Image

    return Image


def to_tensor(image) -> torch.Tensor:
    """A PIL RGB image -> uint8 tensor (3, H, W)."""
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


@dataclass(frozen=True)
class TrainTransform:
    """Random resized crop to `size` (area 8%-100%, ratio 3/4-4/3) + flip; uint8 (3, s, s)."""

    size: int = 224
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, crop width, crop height): 10 tries at a random box, else the center."""
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * float(torch.empty(1).uniform_(*self.scale))
            aspect = math.exp(float(torch.empty(1).uniform_(*log_ratio)))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                left = int(torch.randint(0, width - w + 1, (1,)))
                top = int(torch.randint(0, height - h + 1, (1,)))
                return left, top, w, h
        aspect = width / height  # fallback: the largest center crop within the ratio range
        w, h = width, height
        if aspect < self.ratio[0]:
            h = round(width / self.ratio[0])
        elif aspect > self.ratio[1]:
            w = round(height * self.ratio[1])
        return (width - w) // 2, (height - h) // 2, w, h

    def __call__(self, image) -> torch.Tensor:
        image_module = _pil()
        left, top, w, h = self.crop_box(*image.size)
        image = image.resize((self.size, self.size), image_module.Resampling.BILINEAR,
                             box=(left, top, left + w, top + h))
        if float(torch.rand(1)) < 0.5:
            image = image.transpose(image_module.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor(image)


@dataclass(frozen=True)
class EvalTransform:
    """Resize the short side to `resize`, center-crop `size` x `size`; uint8 (3, s, s)."""

    size: int = 224
    resize: int = 256

    def __call__(self, image) -> torch.Tensor:
        width, height = image.size
        scale = self.resize / min(width, height)
        new = (max(self.size, round(width * scale)), max(self.size, round(height * scale)))
        image = image.resize(new, _pil().Resampling.BILINEAR)
        left, top = (new[0] - self.size) // 2, (new[1] - self.size) // 2
        return to_tensor(image.crop((left, top, left + self.size, top + self.size)))


# ---------------------------------------------------------------- folders


class ImageFolder(Dataset):
    """(path, label) samples of one split; `__getitem__` decodes with PIL and transforms.

    Decoding happens where `__getitem__` runs: in the DataLoader's worker processes.
    """

    def __init__(self, samples: Sequence[tuple[str, int]], classes: Sequence[str],
                 transform) -> None:
        self.samples = list(samples)
        self.classes = tuple(classes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        return np.array([label for _, label in self.samples], dtype=np.int64)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        try:
            with _pil().open(path) as image:
                image = image.convert("RGB")
        except OSError as error:
            raise DataError(f"{path}: not a readable image ({error}); delete or replace it"
                            ) from error
        return self.transform(image), label


@dataclass(frozen=True)
class ImageNetFolders:
    """The training and validation splits of an ImageNet-format folder."""

    root: Path
    classes: tuple[str, ...]
    train: list[tuple[str, int]]
    val: list[tuple[str, int]]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file()
                  and p.suffix.lower() in EXTENSIONS)


def find_root(source: Path | str | None = None) -> Path:
    """`source`, else `$COMPANION_IMAGENET_DIR`; a DataError that says what to set otherwise."""
    root = Path(source).expanduser() if source is not None else env_path(ENV_VARIABLE)
    if root is None:
        raise DataError(f"no ImageNet folder: set {ENV_VARIABLE} to a directory with train/<wnid>/"
                        "*.JPEG and val/<wnid>/*.JPEG (or pass source=)")
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise DataError(f"{root}: expected the folders train/ and val/ (ImageNet layout "
                        "train/<wnid>/*.JPEG, val/<wnid>/*.JPEG)")
    return root


def scan(source: Path | str | None = None) -> ImageNetFolders:
    """List the images of both splits (no decoding); classes are train/'s sorted folders."""
    root = find_root(source)
    classes = tuple(sorted(p.name for p in (root / "train").iterdir() if p.is_dir()))
    if not classes:
        raise DataError(f"{root / 'train'}: no class folders (train/<wnid>/*.JPEG)")
    if _images(root / "val"):
        raise DataError(f"{root / 'val'} holds images directly (the flat validation layout): "
                        f"sort them into val/<wnid>/ with `{SORT_COMMAND}`")
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(p.name for p in (root / "val").iterdir() if p.is_dir()
                     and p.name not in index)
    if unknown:
        raise DataError(f"{root / 'val'}: classes {unknown[:5]} have no training folder")
    splits = {}
    for split in ("train", "val"):
        splits[split] = [(str(path), index[name]) for name in classes
                         if (root / split / name).is_dir()
                         for path in _images(root / split / name)]
        if not splits[split]:
            raise DataError(f"{root / split}: no images ({', '.join(EXTENSIONS)})")
    return ImageNetFolders(root, classes, splits["train"], splits["val"])


# ---------------------------------------------------------------- flat validation folder


def read_val_labels(labels_file: Path | str) -> dict[str, str]:
    """{image file name: wnid} from `<name> <wnid>` lines or Kaggle's LOC_val_solution.csv."""
    labels: dict[str, str] = {}
    with open(labels_file, newline="") as handle:
        for row in csv.reader(handle):
            if len(row) == 1:
                row = row[0].split()
            if len(row) < 2 or row[0] == "ImageId":
                continue
            name, wnid = row[0].strip(), row[1].split()[0]
            labels[name if Path(name).suffix else f"{name}.JPEG"] = wnid
    if not labels:
        raise DataError(f"{labels_file}: no '<image> <wnid>' lines found")
    return labels


def sort_val(root: Path | str, labels_file: Path | str) -> int:
    """Move the flat `root/val/*.JPEG` into `root/val/<wnid>/`; returns the number moved.

    Every image's label is checked before anything moves: a missing label changes nothing.
    """
    val = Path(root) / "val"
    labels = read_val_labels(labels_file)
    images = _images(val)
    missing = [p.name for p in images if p.name not in labels]
    if missing:
        raise DataError(f"{labels_file} has no label for {len(missing)} images of {val} "
                        f"(e.g. {missing[:3]}); nothing was moved")
    for path in images:
        target = val / labels[path.name] / path.name
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)
    return len(images)


# ---------------------------------------------------------------- generated fixture


def generate_folder(root: Path | str, classes: int = 4, train_per_class: int = 8,
                    val_per_class: int = 4, seed: int = 0) -> Path:
    """A small ImageNet-format folder of JPEGs (sizes 40-96 px), learnable by colour.

    Class k's images are noise around a colour of its own, so a few epochs separate them.
    """
    image_module = _pil()
    rng = np.random.default_rng(seed)
    root = Path(root)
    colours = rng.integers(30, 226, (classes, 3))
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for k in range(classes):
            folder = root / split / f"n{k:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                width, height = (int(v) for v in rng.integers(40, 97, 2))
                noise = rng.normal(0, 25, (height, width, 3))
                pixels = np.clip(colours[k] + noise, 0, 255).astype(np.uint8)
                image_module.fromarray(pixels).save(folder / f"{split}_{k}_{i}.JPEG",
                                                    quality=90)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ImageNet folder tools")
    commands = parser.add_subparsers(dest="command", required=True)
    sort = commands.add_parser("sort-val", help="sort a flat val/ into val/<wnid>/")
    sort.add_argument("root", help="the folder holding train/ and val/")
    sort.add_argument("labels", help="'<image> <wnid>' lines or LOC_val_solution.csv")
    make = commands.add_parser("generate", help="write a small generated folder (tests, demos)")
    make.add_argument("root")
    make.add_argument("--classes", type=int, default=4)
    args = parser.parse_args(argv)
    if args.command == "sort-val":
        print(f"moved {sort_val(args.root, args.labels)} images into {args.root}/val/<wnid>/")
    else:
        print(f"wrote {generate_folder(args.root, args.classes)}")


if __name__ == "__main__":
    main()

"""What the ImageNet curves notebook shows: our records when there are any, else the paper's.

ImageNet is trained from the command line (`companion.fixed_classifier.imagenet`, on torchrun);
the notebook reads the records. At the smoke profile it trains in-process on a generated
ImageNet-format folder (seconds), so the whole path runs in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from companion.data import imagenet as folders
from companion.data.sources import cache_dir, env_path
from companion.fixed_classifier import imagenet, tables

GENERATED = "imagenet-generated"


def generated_folder() -> Path:
    """The smoke profile's ImageNet-format folder (4 classes, 8 + 8 JPEGs), made once."""
    root = cache_dir() / GENERATED
    if not (root / "val").is_dir():
        folders.generate_folder(root.with_name(GENERATED + ".partial"), train_per_class=2,
                                val_per_class=2)
        root.with_name(GENERATED + ".partial").rename(root)
    return root


def data_source(profile: str, requested: str | None) -> tuple[str | None, bool]:
    """(the configs' `data_source`, whether images are here to train on).

    `requested` wins; else `$COMPANION_IMAGENET_DIR` (the configs keep None, so records made
    on any machine are found); else, at smoke, the generated folder.
    """
    if requested is not None:
        return str(requested), True
    if env_path(folders.ENV_VARIABLE) is not None:
        return None, True
    if profile == "smoke":
        return str(generated_folder()), True
    return None, False


def command(network: str, classifier: str, profile: str, gpus: int | None = None) -> str:
    """The shell command that trains (and records) one run on `gpus` GPUs of one node."""
    launcher = (f"torchrun --nproc_per_node {gpus} -m" if gpus
                else "torchrun --nproc_per_node <GPUs> -m")
    return (f"{launcher} companion.fixed_classifier.imagenet --network {network} "
            f"--classifier {classifier} --profile {profile}")


def paper_name(network: str) -> str:
    """The paper's Table 1 name of one of our networks (e.g. resnet50 -> ResNet50)."""
    return tables.PAPER_ROWS[network].paper_network


def table1_imagenet(found: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Table 1's ImageNet rows, the paper's and ours (from `found` ImageNet records)."""
    table = tables.accuracy_table(list(found))
    return table[table["dataset"] == "ImageNet"]


def final_errors(runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Final training and validation error (%) of each run."""
    return pd.DataFrame({label: {
        "training error (%)": 100 * record["history"]["train_error"][-1],
        "validation error (%)": 100 * record["history"]["test_error"][-1],
        "epochs": record["history"]["epoch"][-1]} for label, record in runs.items()}).T


def runs_for(network: str, classifiers: Sequence[str], profile: str, seed: int,
             requested_source: str | None, train_missing: bool
             ) -> tuple[list[imagenet.ImageNetRunConfig], dict[str, dict[str, Any]], bool]:
    """(configs, {classifier: record} of those that have run, whether ImageNet data is here).

    Missing runs are trained in this process when `train_missing` and the data are here (the
    smoke profile's generated folder; a real ImageNet run belongs on torchrun).
    """
    source, available = data_source(profile, requested_source)
    configs = [imagenet.make_config(network, kind, profile, seed, data_source=source)
               for kind in classifiers]
    found = {}
    for kind, config in zip(classifiers, configs):
        if available and train_missing:
            # the generated folder decodes faster than a worker process starts
            found[kind] = imagenet.run_and_record(config, workers=0 if profile == "smoke"
                                                  else None)
        elif imagenet.record_path(config).is_file():
            (found[kind],) = imagenet.recorded([config])
    return configs, found, available

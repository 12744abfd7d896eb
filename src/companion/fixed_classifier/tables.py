"""Table 1 of "Fix your classifier": parameter counts (ours vs the paper's) and top-1 accuracy.

The paper's Table 1 (as in the authors' slides; `fix_your_classifier_table1.csv` of the
project's papers folder) is written down once, in `paper.json`, read into `PAPER_TABLE1`.
Two fixed-model counts exist:

- the paper's README quotes learned - N*C (855,130 for ResNet-56): the N x C matrix removed,
  nothing added;
- a fixed classifier whose scale alpha is learned has one more trainable parameter,
  learned - N*C + 1 (855,131). That is what `count_parameters` gives for our fixed models, and
  what the tests check for all five networks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from companion import comparisons, provenance, records
from companion.fixed_classifier.experiment import EXPERIMENT
from companion.fixed_classifier.layers import classifier_features
from companion.fixed_classifier.networks import build, count_parameters

NEEDS_DATA = "needs data"
NOT_RUN = "not run"


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's Table 1 and the name of our network for it."""

    paper_network: str
    network: str
    dataset: str
    num_classes: int
    learned_top1: float
    fixed_top1: float
    classifier_features: int
    params_learned: int
    classifier_share: str


PAPER_VALUES = Path(__file__).with_name("paper.json")
"""The paper's published numbers: the one place they are written down."""

_PAPER = json.loads(PAPER_VALUES.read_text())
PAPER_TABLE1 = tuple(PaperRow(**row) for row in _PAPER["table1"])
"""The paper's Table 1: top-1 accuracy (%) with a learned and a fixed classifier."""
PAPER_ROWS = {row.network: row for row in PAPER_TABLE1}
"""Table 1's rows by our network name (`resnet56`, `resnet50`, ...), in the paper's order."""
PAPER_FIGURE2_VALIDATION_ERROR = float(_PAPER["figure2"]["validation_error_percent"])
"""Figure 2's validation error (%, ResNet-56 on CIFAR-10, both classifiers), read off the plot."""

DATASET_KEYS = {"CIFAR-10": "cifar10", "CIFAR-100": "cifar100", "ImageNet": "imagenet"}


def parameter_counts(row: PaperRow) -> dict[str, Any]:
    """Our trainable parameter counts for one Table 1 network: learned, fixed, fixed scale."""
    learned = build(row.network, row.num_classes)
    features = classifier_features(learned)
    counts = {"N": features, "C": row.num_classes, "N*C": features * row.num_classes,
              "learned": count_parameters(learned)}
    del learned
    counts["fixed (alpha learned)"] = count_parameters(build(row.network, row.num_classes,
                                                             "fixed"))
    counts["fixed (alpha fixed)"] = count_parameters(build(row.network, row.num_classes,
                                                           "hadamard", scale=1.0))
    return counts


def parameter_table(rows: Sequence[PaperRow] = PAPER_TABLE1) -> pd.DataFrame:
    """Parameter counts, ours beside the paper's, one row per network.

    Columns: N, C, N*C; learned (ours, paper); fixed with learned alpha (ours: learned - N*C +
    1); fixed as the paper's README quotes it (learned - N*C, ours and paper); the classifier's
    share of the learned model (ours, paper).
    """
    table = []
    for row in rows:
        counts = parameter_counts(row)
        table.append({
            "network": row.paper_network,
            "dataset": row.dataset,
            "N": counts["N"],
            "C": counts["C"],
            "N*C": counts["N*C"],
            "learned (ours)": counts["learned"],
            "learned (paper)": row.params_learned,
            "fixed, alpha learned (ours)": counts["fixed (alpha learned)"],
            "fixed, learned - N*C (ours)": counts["fixed (alpha fixed)"],
            "fixed, learned - N*C (paper)": row.params_learned - counts["N*C"],
            "classifier share (ours)": f"{100 * counts['N*C'] / counts['learned']:.2f}%",
            "classifier share (paper)": row.classifier_share,
        })
    return pd.DataFrame(table).set_index("network")


def _run_description(record: dict[str, Any]) -> str:
    config = record["config"]
    return (f"{config['network']}, {record['n_train']:,} train images, {config['epochs']} "
            f"epochs ({config['profile']})")


def _pick(ours: dict[tuple[str, str, str], dict[str, Any]], row: PaperRow, kind: str,
          only_row: bool) -> dict[str, Any] | None:
    """The record for `row` and classifier `kind`: same network, or (when `row` is its data
    set's only row, as for CIFAR-10 and CIFAR-100) a run of any network on that data set."""
    dataset = DATASET_KEYS[row.dataset]
    exact = ours.get((dataset, row.network, kind))
    if exact is not None or not only_row:
        return exact
    return next((r for (d, _, k), r in ours.items() if d == dataset and k == kind), None)


def accuracy_table(found: Sequence[dict[str, Any]], rows: Sequence[PaperRow] = PAPER_TABLE1
                   ) -> pd.DataFrame:
    """Top-1 accuracy (%), the paper's and ours, one row per Table 1 network.

    `found` are run records (any profile; the first finished learned-alpha record of each data
    set, network and classifier is used). ImageNet's three rows take only runs of their own
    network; CIFAR-10's and CIFAR-100's single rows take a run of any network (our CPU runs are
    smaller ResNets than ResNet-56), named in the "our run" column. Data sets without a record
    show "needs data": CIFAR-100 and ImageNet are not in the project's local data (the loaders
    accept them, see `companion.data.cifar`). A classifier not run where others were shows
    "not run".
    """
    ours: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in found:
        if record.get("test_accuracy") is None or record["config"].get("scale") is not None:
            continue
        config = record["config"]
        ours.setdefault((config["dataset"], config["network"], config["classifier"]), record)
    rows_per_dataset = Counter(row.dataset for row in rows)
    table = []
    for row in rows:
        only_row = rows_per_dataset[row.dataset] == 1
        entry: dict[str, Any] = {"network": row.paper_network, "dataset": row.dataset,
                                 "learned (paper)": row.learned_top1,
                                 "fixed (paper)": row.fixed_top1}
        picked = {kind: _pick(ours, row, kind, only_row) for kind in ("learned", "fixed",
                                                                       "hadamard")}
        has_data = any(dataset == DATASET_KEYS[row.dataset] for dataset, _, _ in ours)
        missing = NOT_RUN if has_data else NEEDS_DATA
        for kind, record in picked.items():
            entry[f"{kind} (ours)"] = round(100 * record["test_accuracy"], 2) if record else missing
        entry.update(_uncertainty(row, picked["learned"], picked["fixed"], missing))
        described = next((r for r in picked.values() if r), None)
        entry["our run"] = _run_description(described) if described else missing
        # records from other run code than the checkout's are shown, and said to be (provenance.py)
        entry["code"] = missing if described is None else provenance.code_status(
            described, described.get("experiment", EXPERIMENT))
        table.append(entry)
    frame = pd.DataFrame(table).set_index("network")
    # The row is the paper's network; which network we ran comes first, so a ResNet-20 run
    # is never read as ResNet-56 numbers.
    frame.index.name = "paper's network"
    return frame[["our run", *(c for c in frame.columns if c != "our run")]]


def _uncertainty(row: PaperRow, learned: dict[str, Any] | None, fixed: dict[str, Any] | None,
                 missing: str) -> dict[str, Any]:
    """Test-set noise beside the accuracies: the binomial SE of our learned run (points) and
    fixed - learned, the paper's and ours with its 95% interval, "(paired)" image by image when
    both records keep which test images were right, "(Wald)" as if over two independent test
    sets when not (`comparisons.test_accuracy_difference`). Both hold test-set noise only; a
    second seed would add its spread."""
    entry: dict[str, Any] = {"binomial SE (ours)": missing,
                             "fixed - learned (paper)": round(row.fixed_top1 - row.learned_top1,
                                                              2),
                             "fixed - learned (ours, 95%)": missing}
    if learned is not None:
        entry["binomial SE (ours)"] = round(comparisons.binomial_se(
            100 * learned["test_accuracy"], learned["n_test"]), 2)
    if learned is not None and fixed is not None:
        change = comparisons.test_accuracy_difference(fixed, learned)
        kind = "paired" if change.method == "paired t" else "Wald"
        entry["fixed - learned (ours, 95%)"] = (f"{change.estimate:+.2f} [{change.low:+.2f}, "
                                                f"{change.high:+.2f}] ({kind})")
    return entry


def recorded_runs(profile: str, datasets: Sequence[str] = ("cifar10", "cifar100", "imagenet")
                  ) -> list[dict[str, Any]]:
    """Every record of `profile` on `datasets` (what a user with CIFAR-100 or ImageNet ran)."""
    return [record for dataset in datasets
            for record in records.load_records(f"{EXPERIMENT}-{dataset}-{profile}")]

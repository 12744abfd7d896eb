"""Fixed classifiers of Hoffer, Hubara & Soudry, "Fix your classifier" (ICLR 2018).

Public API:

* layers: :class:`FixedClassifier`, :class:`HadamardClassifier`, :func:`replace_classifier`,
  :func:`find_classifier`, :func:`classifier_features`;
* fast transforms: :func:`fwht`, :func:`truncated_hadamard`, :func:`sylvester_hadamard`;
* networks of Table 1: :func:`build`, :data:`NETWORKS`, :func:`count_parameters`;
* the paper's published numbers: `paper.json`, read into `tables.PAPER_TABLE1`.

Module roles (the same as in `companion.class_lr`): `experiment` (one CIFAR config -> one
record), `sweep` (grids, running them, reading what is recorded, the command line), `tables`
and `figures` (what the notebooks show); the language model and ImageNet follow the same split
(`lm_experiment` / `lm_sweep`, `imagenet` with its torchrun command line).
"""

from .hadamard import fwht, next_power_of_two, sylvester_hadamard, truncated_hadamard
from .layers import (
    CLASSIFIER_KINDS,
    FixedClassifier,
    HadamardClassifier,
    classifier_features,
    find_classifier,
    replace_classifier,
)
from .networks import NETWORKS, build, count_parameters

__all__ = [
    "CLASSIFIER_KINDS",
    "NETWORKS",
    "FixedClassifier",
    "HadamardClassifier",
    "build",
    "classifier_features",
    "count_parameters",
    "find_classifier",
    "fwht",
    "next_power_of_two",
    "replace_classifier",
    "sylvester_hadamard",
    "truncated_hadamard",
]

"""Registry of the Table 1 networks with a learned, fixed-orthonormal or Hadamard classifier.

``build(name, num_classes, classifier)`` constructs the network with its usual learned
``nn.Linear`` and, for ``classifier="fixed"``/``"hadamard"``, swaps it with
:func:`~companion.fixed_classifier.layers.replace_classifier`.

Trainable parameters (learned -> fixed with learned alpha = learned - N*C + 1):

=====================  =====  ====  ==========  ==========
name                   C      N     learned     fixed
=====================  =====  ====  ==========  ==========
resnet56               10     64       855,770     855,131
densenet_bc_100_12     100    342      800,032     765,833
resnet50               1000   2048  25,557,032  23,509,033
densenet169            1000   1664  14,149,480  12,485,481
shufflenet             1000   960    1,826,554     866,555
=====================  =====  ====  ==========  ==========

With a fixed scale (``scale=<float>``) the fixed counts are one lower (learned - N*C). See
:mod:`~companion.fixed_classifier.shufflenet` for why ShuffleNet is one below Table 1.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .densenet import densenet169, densenet_bc_cifar
from .layers import CLASSIFIER_KINDS, replace_classifier
from .resnet import cifar_resnet, resnet50
from .shufflenet import shufflenet

__all__ = ["build", "NETWORKS", "count_parameters"]

NETWORKS: dict[str, Callable[[int], nn.Module]] = {
    "resnet20": lambda c: cifar_resnet(20, c),
    "resnet32": lambda c: cifar_resnet(32, c),
    "resnet44": lambda c: cifar_resnet(44, c),
    "resnet56": lambda c: cifar_resnet(56, c),
    "resnet110": lambda c: cifar_resnet(110, c),
    "densenet_bc_100_12": lambda c: densenet_bc_cifar(100, 12, c),
    "resnet50": resnet50,
    "densenet169": densenet169,
    "shufflenet": shufflenet,
}
"""Network constructors, ``num_classes -> nn.Module`` with a learned final ``nn.Linear``."""


def build(name: str, num_classes: int, classifier: str = "learned", **kwargs: object) -> nn.Module:
    """Build a Table 1 network.

    Args:
        name: one of :data:`NETWORKS` (``resnet20/32/44/56/110``, ``densenet_bc_100_12``,
            ``resnet50``, ``densenet169``, ``shufflenet``).
        num_classes: ``C``.
        classifier: ``"learned"`` (``nn.Linear``), ``"fixed"`` (random orthonormal ``Q``) or
            ``"hadamard"`` (truncated Hadamard ``Q`` applied by a fast transform).
        **kwargs: passed to the fixed classifier (``scale``, ``seed``, ``init_scale`` ...);
            not allowed with ``"learned"``.

    Returns:
        The model, mapping ``(B, 3, H, W)`` images to ``(B, C)`` logits.
    """
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; valid names: {', '.join(NETWORKS)}")
    if classifier != "learned" and classifier not in CLASSIFIER_KINDS:
        valid = ["learned", *CLASSIFIER_KINDS]
        raise ValueError(f"unknown classifier {classifier!r}; valid: {', '.join(valid)}")
    model = NETWORKS[name](num_classes)
    if classifier == "learned":
        if kwargs:
            raise ValueError(f"classifier options {sorted(kwargs)} need a fixed classifier")
        return model
    return replace_classifier(model, classifier, **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

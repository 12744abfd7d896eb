"""Parameter counts of the Table 1 networks (learned vs fixed classifier) and a smoke test.

Table 1 (``/work/shared/papers/fix_your_classifier_table1.csv``) gives the learned counts; the
fixed counts quoted with it are learned - N*C. A fixed classifier with a *learned* alpha has one
more trainable parameter (learned - N*C + 1), one with a fixed scale exactly learned - N*C.
ShuffleNet is the exception: no ShuffleNet v1 (g=3, N=960) can have the odd total 1,826,555
(see ``companion.fixed_classifier.shufflenet``); ours has 1,826,554, and its learned-alpha fixed
version matches the quoted 866,555.
"""

from __future__ import annotations

import pytest
import torch

from companion.fixed_classifier import (
    FixedClassifier,
    HadamardClassifier,
    build,
    count_parameters,
)


@pytest.mark.parametrize("name, classes", [("resnet56", 10), ("densenet_bc_100_12", 100),
                                           ("resnet50", 1000), ("densenet169", 1000),
                                           ("shufflenet", 1000)])
def test_table1_networks_swap_their_classifier(name: str, classes: int) -> None:
    """The head each classifier kind installs (the counts: tests/test_paper_fixed_classifier)."""
    assert isinstance(build(name, classes, "fixed").get_submodule(_head(name)), FixedClassifier)
    hadamard = build(name, classes, "hadamard", scale=10.0)
    assert isinstance(hadamard.get_submodule(_head(name)), HadamardClassifier)


def _head(name: str) -> str:
    return "classifier" if name.startswith("densenet") else "fc"


@pytest.mark.parametrize(
    "name, count",
    [("resnet20", 272_474), ("resnet32", 466_906), ("resnet44", 661_338), ("resnet110", 1_730_714)],
)
def test_cifar_resnet_family(name: str, count: int) -> None:
    model = build(name, 10)
    assert count_parameters(model) == count
    assert count_parameters(build(name, 10, "fixed", seed=1)) == count - 64 * 10 + 1


@pytest.mark.parametrize("classifier", ["learned", "fixed", "hadamard"])
def test_resnet20_output_shape(classifier: str) -> None:
    torch.manual_seed(0)
    model = build("resnet20", 10, classifier).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_build_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="resnet56"):
        build("vgg16", 10)
    with pytest.raises(ValueError, match="hadamard"):
        build("resnet20", 10, "random")
    with pytest.raises(ValueError):
        build("resnet20", 10, "learned", scale=1.0)

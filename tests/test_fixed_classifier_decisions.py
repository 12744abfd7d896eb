"""Two decisions about "Fix your classifier" that the paper leaves open, pinned by tests.

(a) Parameter count of a fixed model: the N x C matrix goes and the learned scale alpha comes,
    so count(fixed) = count(learned) - N*C + 1. The paper's README quotes learned - N*C
    (e.g. 855,130 for ResNet-56), which is the count with a fixed (untrained) alpha.
(b) Initial scale of the Hadamard classifier: the authors multiply the +-1 matrix H[:C, :N] by
    an alpha starting at 1/sqrt(C). Our Q has unit columns (H^T / sqrt(N)), so the same
    starting logits need alpha = sqrt(N / C), the layer's default.
Also: weight decay applies to alpha and the classifier's bias (the authors' optimizer decayed
every parameter; the paper says alpha was regularised with the classifier's weight decay).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from companion.fixed_classifier import (
    HadamardClassifier,
    build,
    classifier_features,
    count_parameters,
    experiment,
    replace_classifier,
    sylvester_hadamard,
)
from companion.fixed_classifier.tables import PAPER_TABLE1
from companion.fixed_classifier.training import parameter_groups

# The README's fixed counts: learned - N*C (ShuffleNet's learned count is one above ours).
QUOTED_FIXED = {"resnet56": 855_130, "densenet_bc_100_12": 765_832, "resnet50": 23_509_032,
                "densenet169": 12_485_480, "shufflenet": 866_555}


@pytest.mark.parametrize("row", PAPER_TABLE1, ids=[row.network for row in PAPER_TABLE1])
def test_fixed_model_drops_the_matrix_and_gains_alpha(row):
    model = build(row.network, row.num_classes)
    learned, features = count_parameters(model), classifier_features(model)
    matrix = features * row.num_classes
    replace_classifier(model, "fixed")
    assert count_parameters(model) == learned - matrix + 1
    assert row.params_learned - matrix == QUOTED_FIXED[row.network]  # the README: no alpha
    if row.network == "shufflenet":
        assert learned == row.params_learned - 1
        assert count_parameters(model) == QUOTED_FIXED[row.network]
    else:
        assert learned == row.params_learned
        assert count_parameters(model) == QUOTED_FIXED[row.network] + 1


@pytest.mark.parametrize("features, classes", [(64, 10), (342, 100), (2048, 1000), (64, 1000)])
def test_hadamard_starts_where_the_authors_start(features, classes):
    layer = HadamardClassifier(features, classes).double()
    assert layer.alpha.item() == pytest.approx(math.sqrt(features / classes))
    size = 1 << (max(features, classes) - 1).bit_length()
    plus_minus_one = sylvester_hadamard(size, dtype=torch.float64)[:classes, :features]
    x = torch.randn(5, features, dtype=torch.float64)
    authors = (1 / math.sqrt(classes)) * F.normalize(x, dim=-1) @ plus_minus_one.T
    with torch.no_grad():
        torch.testing.assert_close(layer(x), authors)


def test_weight_decay_reaches_alpha_and_bias_by_default():
    config = experiment.make_config("fixed", profile="smoke")
    assert config.decay_scale_and_bias and config.weight_decay == 1e-4
    model = experiment.build_model(config, 10)
    (group,) = parameter_groups(model, config.weight_decay, config.decay_scale_and_bias)
    decayed = {id(p) for p in group["params"]}
    assert id(model.fc.alpha) in decayed and id(model.fc.bias) in decayed
    assert group["weight_decay"] == 1e-4

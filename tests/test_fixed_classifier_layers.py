"""Tests of the fixed classifier layers and the fast Walsh-Hadamard transforms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from companion.fixed_classifier import (
    FixedClassifier,
    HadamardClassifier,
    classifier_features,
    count_parameters,
    find_classifier,
    fwht,
    replace_classifier,
    sylvester_hadamard,
    truncated_hadamard,
)

F64 = torch.float64


def _reference_logits(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The paper's formula with an explicit Q: alpha * Q^T (x / ||x||) + b."""
    q = layer.dense_matrix().to(x.dtype)
    return layer.alpha * (F.normalize(x, dim=-1, eps=layer.eps) @ q) + layer.bias


# ---------------------------------------------------------------- FixedClassifier


@pytest.mark.parametrize("n, c", [(64, 10), (342, 100), (100, 100)])
def test_fixed_q_has_orthonormal_columns(n: int, c: int) -> None:
    q = FixedClassifier(n, c).dense_matrix().double()
    assert q.shape == (n, c)
    torch.testing.assert_close(q.T @ q, torch.eye(c, dtype=F64), atol=1e-5, rtol=0)


def test_fixed_q_rows_orthonormal_when_more_classes_than_features() -> None:
    n, c = 16, 50
    q = FixedClassifier(n, c).dense_matrix().double()
    assert q.shape == (n, c)
    torch.testing.assert_close(q @ q.T, torch.eye(n, dtype=F64), atol=1e-5, rtol=0)


def test_fixed_q_is_a_buffer_not_a_parameter() -> None:
    layer = FixedClassifier(32, 10)
    names = {name for name, _ in layer.named_parameters()}
    assert names == {"alpha", "bias"}
    assert "Q" in dict(layer.named_buffers()) and "Q" in layer.state_dict()
    assert not layer.Q.requires_grad
    assert count_parameters(layer) == 10 + 1
    assert layer.alpha.item() == 10.0 and torch.all(layer.bias == 0)


def test_fixed_q_leaves_global_rng_untouched() -> None:
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    FixedClassifier(128, 40, seed=7)
    assert torch.equal(torch.get_rng_state(), state)


def test_fixed_q_seed_reproducible() -> None:
    a = FixedClassifier(64, 10, seed=3).dense_matrix()
    b = FixedClassifier(64, 10, seed=3).dense_matrix()
    c = FixedClassifier(64, 10, seed=4).dense_matrix()
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_fixed_forward_matches_formula_and_scale_invariance() -> None:
    torch.manual_seed(0)
    layer = FixedClassifier(40, 7).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(5, 40, dtype=F64)
    out = layer(x)
    assert out.shape == (5, 7)
    torch.testing.assert_close(out, _reference_logits(layer, x))
    torch.testing.assert_close(layer(3.0 * x), out)  # x is normalised


@pytest.mark.parametrize("cls", [FixedClassifier, HadamardClassifier])
def test_fixed_scale_is_not_trainable(cls: type[nn.Module]) -> None:
    layer = cls(48, 10, scale=5.0)
    assert layer.alpha.item() == 5.0
    assert not layer.alpha.requires_grad
    assert "alpha" not in dict(layer.named_parameters())
    assert "alpha" in dict(layer.named_buffers())
    assert count_parameters(layer) == 10  # bias only
    layer(torch.randn(3, 48)).sum().backward()
    assert layer.alpha.grad is None


@pytest.mark.parametrize("cls", [FixedClassifier, HadamardClassifier])
def test_zero_input_is_safe(cls: type[nn.Module]) -> None:
    out = cls(12, 5)(torch.zeros(2, 12))
    assert torch.isfinite(out).all()
    assert torch.equal(out, torch.zeros(2, 5))  # bias starts at 0


# ---------------------------------------------------------------- fast transforms


@pytest.mark.parametrize("size", [1, 2, 8, 256])
@pytest.mark.parametrize("radix_bits", [1, 2, 6])
def test_fwht_matches_dense_hadamard(size: int, radix_bits: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, size, dtype=F64)
    h = sylvester_hadamard(size, dtype=F64)
    torch.testing.assert_close(fwht(x, radix_bits), x @ h)
    torch.testing.assert_close(fwht(fwht(x, radix_bits), radix_bits), size * x)


def test_sylvester_hadamard_is_orthogonal_and_symmetric() -> None:
    h = sylvester_hadamard(64, dtype=F64)
    assert torch.equal(h, h.T)
    torch.testing.assert_close(h @ h.T, 64 * torch.eye(64, dtype=F64))
    assert torch.equal(h[:32, :32], sylvester_hadamard(32, dtype=F64))  # nesting


@pytest.mark.parametrize(
    "n, c, radix_bits",
    [
        (342, 100, 6),
        (64, 1000, 6),  # C > N
        (2048, 1000, 6),
        (300, 70, 3),  # recursion on the high index
        (600, 1000, 3),
        (37, 90, 2),
        (100, 7, 1),  # radix-2 path
    ],
)
def test_truncated_hadamard_forward_and_backward(n: int, c: int, radix_bits: int) -> None:
    torch.manual_seed(0)
    size = 1 << (max(n, c) - 1).bit_length()
    h = sylvester_hadamard(size, dtype=F64)[:n, :c]
    x = torch.randn(4, n, dtype=F64, requires_grad=True)
    y = truncated_hadamard(x, c, radix_bits)
    torch.testing.assert_close(y, x @ h)
    g = torch.randn(4, c, dtype=F64)
    (grad,) = torch.autograd.grad(y, x, g)
    torch.testing.assert_close(grad, g @ h.T)


# ---------------------------------------------------------------- HadamardClassifier


@pytest.mark.parametrize("n, c", [(342, 100), (64, 1000), (512, 100), (1664, 1000), (10, 3)])
def test_hadamard_classifier_equals_dense_product(n: int, c: int) -> None:
    torch.manual_seed(0)
    layer = HadamardClassifier(n, c).double()
    with torch.no_grad():
        layer.alpha.fill_(1.7)
        layer.bias.normal_()
    x = torch.randn(6, n, dtype=F64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    out, ref = layer(x), _reference_logits(layer, x_ref)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(out)
    out.backward(g)
    alpha_grad, bias_grad = layer.alpha.grad.clone(), layer.bias.grad.clone()
    layer.zero_grad()
    ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(alpha_grad, layer.alpha.grad)
    torch.testing.assert_close(bias_grad, layer.bias.grad)


def test_hadamard_classifier_gradcheck_and_batch_dims() -> None:
    layer = HadamardClassifier(20, 9).double()
    x = torch.randn(3, 20, dtype=F64, requires_grad=True)
    alpha = torch.tensor(0.8, dtype=F64, requires_grad=True)
    bias = torch.randn(9, dtype=F64, requires_grad=True)

    def fn(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return functional_call(layer, {"alpha": a, "bias": b}, (x,))

    assert torch.autograd.gradcheck(fn, (x, alpha, bias))
    assert layer(torch.randn(2, 3, 20, dtype=F64)).shape == (2, 3, 9)


def test_hadamard_dense_matrix_unit_columns_and_orthogonality() -> None:
    q = HadamardClassifier(256, 100).dense_matrix().double()
    assert q.shape == (256, 100)
    torch.testing.assert_close(q.T @ q, torch.eye(100, dtype=F64))  # N a power of two
    q = HadamardClassifier(342, 100).dense_matrix().double()
    torch.testing.assert_close(q.norm(dim=0), torch.ones(100, dtype=F64))
    h = sylvester_hadamard(512, dtype=F64)
    torch.testing.assert_close(q, h[:100, :342].T / math.sqrt(342))


def test_hadamard_stores_nothing_and_default_scale() -> None:
    layer = HadamardClassifier(2048, 1000)
    assert list(layer.buffers()) == []
    assert set(layer.state_dict()) == {"alpha", "bias"}
    assert layer.alpha.item() == pytest.approx(math.sqrt(2048 / 1000))  # the authors' start


# ---------------------------------------------------------------- replace_classifier


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.0), nn.Linear(32, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@pytest.mark.parametrize(
    "kind, cls", [("fixed", FixedClassifier), ("hadamard", HadamardClassifier)]
)
def test_replace_classifier_swaps_last_linear(kind: str, cls: type[nn.Module]) -> None:
    net = _Net()
    learned = count_parameters(net)
    first = net.body[0]
    assert replace_classifier(net, kind) is net
    assert isinstance(net.head[1], cls) and net.body[0] is first
    assert count_parameters(net) == learned - 32 * 6 + 1
    assert find_classifier(net)[0] == "head.1"
    assert classifier_features(net) == 32
    assert net(torch.randn(4, 8)).shape == (4, 6)


def test_replace_classifier_fixed_scale_and_errors() -> None:
    net = _Net()
    learned = count_parameters(net)
    replace_classifier(net, "fixed", scale=10.0, seed=1)
    assert count_parameters(net) == learned - 32 * 6
    with pytest.raises(ValueError, match="kind"):
        replace_classifier(_Net(), "learned")
    with pytest.raises(ValueError, match="Linear"):
        replace_classifier(nn.Sequential(nn.ReLU()), "fixed")

import copy

import pytest
import torch
from torch import nn

from companion.class_lr.models import SelfNormalizingMLP
from companion.class_lr.optimizer import ClassLR, ReferenceClassLR, managed_layers


def _setup(activation="selu", layers=3, n_classes=4, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    model = SelfNormalizingMLP(6, n_classes, layers=layers, hidden=16, shape="conic",
                               activation=activation, dropout=dropout).double()
    data = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(5, 12, 6, generator=data, dtype=torch.float64)
    y = torch.randint(0, n_classes, (5, 12), generator=data)
    y[0, :] = 1  # a batch with a single class
    return model, x, y


@pytest.mark.parametrize("backend", ["fused", "torch"])
@pytest.mark.parametrize("statistic", ["per_sample", "class_gradient"])
@pytest.mark.parametrize("activation", ["selu", "relu", "tanh"])
def test_fast_step_equals_reference(statistic, activation, backend):
    model, x, y = _setup(activation)
    reference_model = copy.deepcopy(model)
    fast = ClassLR(list(model.parameters()), managed_layers(model.hidden_layers), 4,
                   lr=0.05, alpha_mu=300.0, statistic=statistic, backend=backend)
    reference = ReferenceClassLR(reference_model, reference_model.hidden_layers, 4,
                                 lr=0.05, alpha_mu=300.0, statistic=statistic)
    fast.attach()
    for batch_x, batch_y in zip(x, y):
        fast.step(nn.functional.cross_entropy(model(batch_x), batch_y), batch_y)
        reference.step(nn.functional.cross_entropy(
            reference_model(batch_x), batch_y, reduction="none"), batch_y)
    mus = [m for pair in zip(fast.mu_weight, fast.mu_bias) for m in pair]
    for fast_mu, reference_mu in zip(mus, reference.mu):
        torch.testing.assert_close(fast_mu, reference_mu, rtol=1e-5, atol=1e-7)
    assert max((m - 1).abs().max().item() for m in reference.mu) > 1e-3  # mu really moved
    for fast_p, reference_p in zip(model.parameters(), reference_model.parameters()):
        torch.testing.assert_close(fast_p, reference_p, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("backend", ["fused", "torch"])
def test_multipliers_at_one_give_plain_sgd(backend):
    model, x, y = _setup("relu", layers=4)
    sgd_model = copy.deepcopy(model)
    fast = ClassLR(list(model.parameters()), managed_layers(model.hidden_layers), 4,
                   lr=0.1, alpha_mu=0.0, backend=backend)
    sgd = torch.optim.SGD(sgd_model.parameters(), lr=0.1)
    fast.attach()
    for batch_x, batch_y in zip(x, y):
        fast.step(nn.functional.cross_entropy(model(batch_x), batch_y), batch_y)
        sgd.zero_grad()
        nn.functional.cross_entropy(sgd_model(batch_x), batch_y).backward()
        sgd.step()
    for a, b in zip(model.parameters(), sgd_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_fused_float32_matches_torch_path():
    model, x, y = _setup("selu")
    model = model.float()
    other = copy.deepcopy(model)
    fused = ClassLR(list(model.parameters()), managed_layers(model.hidden_layers), 4,
                    lr=0.05, alpha_mu=300.0, backend="fused")
    plain = ClassLR(list(other.parameters()), managed_layers(other.hidden_layers), 4,
                    lr=0.05, alpha_mu=300.0, backend="torch")
    fused.attach(), plain.attach()
    for batch_x, batch_y in zip(x.float(), y):
        fused.step(nn.functional.cross_entropy(model(batch_x), batch_y), batch_y)
        plain.step(nn.functional.cross_entropy(other(batch_x), batch_y), batch_y)
    for a, b in zip(model.parameters(), other.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(fused.mu_weight, plain.mu_weight):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_multipliers_only_grow_and_reset():
    model, x, y = _setup("tanh")
    fast = ClassLR(list(model.parameters()), managed_layers(model.hidden_layers), 4,
                   lr=0.05, alpha_mu=1e3)
    fast.attach()
    fast.step(nn.functional.cross_entropy(model(x[1]), y[1]), y[1])
    assert all((mu >= 1).all() for mu in fast.mu_weight)
    absent = sorted(set(range(4)) - set(y[1].tolist()))
    for c in absent:  # a class absent from the batch keeps its multipliers
        assert (fast.mu_weight[0][c] == 1).all()
    fast.reset()
    assert all((mu == 1).all() for mu in [*fast.mu_weight, *fast.mu_bias])
    assert fast.multiplier_bytes == 4 * 8 * sum(  # 4 classes x float64
        layer.weight.numel() + layer.bias.numel() for layer in fast.layers)


def test_only_bottom_sixteen_layers_are_managed():
    model = SelfNormalizingMLP(3, 2, layers=20, hidden=8)
    assert managed_layers(model.hidden_layers) == list(model.hidden_layers)[:16]


def test_evaluation_under_no_grad_while_attached():
    model, x, y = _setup("selu")
    fast = ClassLR(list(model.parameters()), managed_layers(model.hidden_layers), 4,
                   lr=0.05, alpha_mu=10.0)
    fast.attach()
    with torch.no_grad():
        logits = model(x[0])  # an evaluation pass between steps must not try to capture
    assert logits.shape == (12, 4)
    fast.step(nn.functional.cross_entropy(model(x[1]), y[1]), y[1])


def test_auto_backend_falls_back_to_torch_without_a_compiler(monkeypatch):
    from companion.class_lr import optimizer

    def no_compiler():
        raise RuntimeError("Error building extension: c++ not found")

    monkeypatch.setattr(optimizer, "fused_kernel", no_compiler)
    model, x, y = _setup("relu")
    with pytest.warns(UserWarning, match="torch-ops"):
        fallback = ClassLR(list(model.parameters()), managed_layers(model.hidden_layers), 4,
                           lr=0.05, alpha_mu=1.0)
    assert fallback.kernel is None
    with pytest.raises(RuntimeError, match="c\\+\\+ not found"):
        ClassLR(list(model.parameters()), managed_layers(model.hidden_layers), 4, lr=0.05,
                alpha_mu=1.0, backend="fused")


@pytest.mark.timeout(300)
def test_fused_kernel_survives_a_build_lock_left_by_a_killed_process():
    from pathlib import Path

    from companion.class_lr.optimizer import fused_kernel

    fused_kernel.cache_clear()
    kernel = fused_kernel()
    (Path(kernel.__file__).parent / "lock").touch()  # what a build killed mid-way leaves
    fused_kernel.cache_clear()
    assert hasattr(fused_kernel(), "fused_class_lr_update")  # torch alone would wait forever


def test_weights_off_the_cpu_take_the_torch_ops_step():
    """The fused kernel is CPU code: on another device "auto" steps in torch ops, and asking
    for "fused" there is an error that says what to use (a 'meta' tensor stands in for a GPU)."""
    from companion.class_lr.optimizer import _kernel_for

    elsewhere = torch.device("meta")
    assert _kernel_for("auto", elsewhere) is None
    assert _kernel_for("torch", elsewhere) is None
    with pytest.raises(ValueError, match="backend='auto' or 'torch'"):
        _kernel_for("fused", elsewhere)
    assert _kernel_for("fused", torch.device("cpu")) is not None

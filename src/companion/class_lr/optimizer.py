"""Per-weight, per-class learning rates (the paper's section 3), fast and reference versions.

Every managed weight w (weights and biases of the bottom min(16, L) hidden layers) carries k
multipliers mu_w[c], one per class. With G_c the gradient of the batch loss restricted to the
batch's samples of class c (so sum_c G_c is the ordinary batch gradient), one step is

    w     <- w - lr * sum_c mu_w[c] * G_c                                  (Eq. 1)
    mu_w[c] <- mu_w[c] + alpha_mu * lr * S_c                               (Eq. 6)

with the multipliers of this step used in the weight update before they grow.

**The minibatch form of S_c.** The paper derives Eq. 5-6 for one sample (x, y) of class c:
dL(z(alpha))/dmu_c = -alpha (dL/dw)^2 + O(alpha^2), so S_c = (dl/dw)^2 for that sample's loss l.
A minibatch step with the mean loss L = (1/B) sum_i l_i moves w exactly as B one-sample steps
of learning rate lr/B taken from the same point. Applying Eq. 6 to each of those steps adds
alpha_mu (lr/B) (dl_i/dw)^2 to mu[c_i], so over the batch

    S_c = (1/B) sum_{i in c} (dl_i/dw)^2 = B sum_{i in c} (dL_i/dw)^2        (default)

where dL_i/dw = (1/B) dl_i/dw is sample i's share of the batch gradient. Every term is a
square, so S_c >= 0 and mu can only grow, as the paper says; this is why it is reset to 1 every
half epoch. The alternative `statistic="class_gradient"` uses S_c = G_c^2 (the square of the
class's summed gradient, which lets samples of a class cancel).

**One backward pass.** For a linear layer with input rows a_i and output-gradient rows d_i
(`capture.CapturingLinear` records both), dL_i/dW = d_i a_i^T, so
G_c = D_c^T A_c and sum_{i in c} (dL_i/dW)^2 = (D_c^2)^T (A_c^2),
with D_c, A_c the rows of class c: per class two matmuls over n_c rows, together the cost of
two ordinary weight gradients. No per-sample weight tensors, no k backward passes.
`ReferenceClassLR` computes the same step the obvious way (a backward pass per class and per
sample) as the test oracle.

Kept whole (over 300 lines): the fast optimizer and its reference stay side by side, the
reference being the check of the fast one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from companion.class_lr.capture import Capture, CapturingLinear

STATISTICS = ("per_sample", "class_gradient")
BACKENDS = ("auto", "fused", "torch")
MAX_MANAGED_LAYERS = 16
_FUSED_SOURCE = Path(__file__).with_name("fused_update.cpp")


@cache
def fused_kernel() -> Any:
    """The compiled fused update (`fused_update.cpp`), built once per machine and cached under
    $TORCH_EXTENSIONS_DIR or ~/.cache/torch_extensions/companion (about a minute the first
    time; needs a C++ compiler)."""
    import hashlib
    import os
    import sys

    import torch
    from filelock import FileLock
    from torch.utils.cpp_extension import load

    # The name hashes the source, torch's version and the environment: an edited kernel or
    # another torch never reuses a build, and two environments (whose torch headers live at
    # different paths, which makes ninja rebuild) do not take turns rebuilding one directory.
    source_code = _FUSED_SOURCE.read_bytes()
    digest = hashlib.sha256(source_code + torch.__version__.encode() + sys.prefix.encode())
    name = f"companion_class_lr_fused_{digest.hexdigest()[:12]}"
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR", Path.home() / ".cache" / "torch_extensions"))
    build_directory = root / "companion" / name
    build_directory.mkdir(parents=True, exist_ok=True)
    # torch guards a build with a plain lock file that a killed process leaves behind, after
    # which every later build waits on it forever. An OS lock is released when its holder
    # dies; while we hold it, no live process is building here, so torch's file is stale.
    with FileLock(str(build_directory) + ".lock"):
        (build_directory / "lock").unlink(missing_ok=True)
        # Built from a copy inside the build directory: ninja rebuilds when a source's path
        # changes, and every clone of the project would otherwise recompile (about a minute).
        source = build_directory / _FUSED_SOURCE.name
        if not source.exists() or source.read_bytes() != source_code:
            source.write_bytes(source_code)
        return load(name=name, sources=[str(source)], build_directory=str(build_directory),
                    extra_cflags=["-O3", "-march=native"], verbose=False)


def managed_layers(hidden_layers: Sequence[nn.Module]) -> list[CapturingLinear]:
    """The bottom min(16, L) hidden layers (never the output layer)."""
    layers = list(hidden_layers)[:MAX_MANAGED_LAYERS]
    if not all(isinstance(layer, CapturingLinear) for layer in layers):
        raise TypeError("class-lr needs the hidden layers to be CapturingLinear")
    return layers  # type: ignore[return-value]


def _kernel_for(backend: str, device: torch.device) -> Any:
    """The compiled kernel for "fused"; for "auto" also, unless the weights are not on the CPU
    (the kernel is CPU code; on a GPU the step runs in torch ops) or the kernel cannot be built
    (no C++ compiler), in which case the same step runs in torch ops, with a warning."""
    if backend == "torch":
        return None
    if device.type != "cpu":
        if backend == "fused":
            raise ValueError(f"backend='fused' is CPU code, but the weights are on {device}; "
                             "use backend='auto' or 'torch' (torch ops, on any device)")
        return None
    if backend == "fused":
        return fused_kernel()
    try:
        return fused_kernel()
    except Exception as error:  # a missing compiler surfaces as various build errors
        warnings.warn(f"class-lr: fused kernel unavailable ({type(error).__name__}); using the "
                      "slower torch-ops update. Install a C++ compiler for the fast path.",
                      stacklevel=3)
        return None


class ClassLR:
    """Class-based learning rates for the managed layers; plain SGD for every other parameter.

    Use: `attach()`, then per batch a forward pass and `step(mean_loss, labels)` (it runs the
    backward pass itself). Multipliers live in `mu_weight[l]` (k, out, in) and `mu_bias[l]`
    (k, out), in the weights' dtype: k x (managed weights and biases) numbers.
    """

    def __init__(
        self,
        parameters: Sequence[nn.Parameter],
        layers: Sequence[CapturingLinear],
        n_classes: int,
        lr: float,
        alpha_mu: float,
        statistic: str = "per_sample",
        backend: str = "auto",
    ) -> None:
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {STATISTICS}, not {statistic!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        if lr <= 0 or alpha_mu < 0:
            raise ValueError("need lr > 0 and alpha_mu >= 0")
        self.kernel = _kernel_for(backend, layers[0].weight.device)
        self.layers = list(layers)
        self.n_classes, self.lr, self.alpha_mu, self.statistic = n_classes, lr, alpha_mu, statistic
        managed = {id(p) for layer in self.layers for p in (layer.weight, layer.bias)}
        self.other_parameters = [p for p in parameters if id(p) not in managed]
        # (k, out, in) and (k, out): one contiguous slab per class, in the weights' dtype
        self.mu_weight = [layer.weight.new_ones(n_classes, *layer.weight.shape)
                          for layer in self.layers]
        self.mu_bias = [layer.bias.new_ones(n_classes, layer.out_features)
                        for layer in self.layers]
        self._buffers = [torch.empty_like(layer.weight) for layer in self.layers] if (
            self.kernel is None) else []

    @property
    def multiplier_bytes(self) -> int:
        """Memory of all multipliers: k x (managed weights and biases) x bytes per number."""
        return sum(m.numel() * m.element_size() for m in [*self.mu_weight, *self.mu_bias])

    @torch.no_grad()
    def multiplier_summary(self) -> dict[str, Any]:
        """Largest multiplier of each managed layer (weights and bias) and the mean over all.

        Read just before a reset, it is how far mu grew within the half epoch: the evidence
        of where a run blows up. Non-finite values are reported as None (JSON has no inf).
        """
        maxima, total, count = [], 0.0, 0
        for mu_weight, mu_bias in zip(self.mu_weight, self.mu_bias):
            largest = max(mu_weight.max().item(), mu_bias.max().item())
            maxima.append(largest if math.isfinite(largest) else None)
            total += mu_weight.sum(dtype=torch.float64).item() + mu_bias.sum(
                dtype=torch.float64).item()
            count += mu_weight.numel() + mu_bias.numel()
        mean = total / count
        return {"max_per_layer": maxima, "mean": mean if math.isfinite(mean) else None}

    def reset(self) -> None:
        """Every multiplier back to 1 (the paper: every half epoch)."""
        for mu in [*self.mu_weight, *self.mu_bias]:
            mu.fill_(1.0)

    def attach(self) -> None:
        """Start capturing inputs and output gradients of the managed layers."""
        for layer in self.layers:
            layer.capture = Capture()

    def detach(self) -> None:
        """Stop capturing: the layers behave as plain nn.Linear again (for SGD after cutoff)."""
        for layer in self.layers:
            layer.capture = None

    def step(self, loss: torch.Tensor, labels: torch.Tensor) -> None:
        """Backward pass of the batch's mean `loss`, then one class-lr step.

        The forward pass must have run with the layers attached.
        """
        for parameter in self.other_parameters:
            parameter.grad = None
        loss.backward()
        with torch.no_grad():
            for parameter in self.other_parameters:
                if parameter.grad is not None:
                    parameter.add_(parameter.grad, alpha=-self.lr)
            order = torch.argsort(labels, stable=True)
            counts = torch.bincount(labels, minlength=self.n_classes)
            if self.kernel is not None:
                offsets = torch.zeros(self.n_classes + 1, dtype=torch.int64)
                torch.cumsum(counts, 0, out=offsets[1:])
                for index, layer in enumerate(self.layers):
                    self._fused_update_layer(index, layer, order, offsets, len(labels))
            else:
                for index, layer in enumerate(self.layers):
                    self._update_layer(index, layer, order, counts.tolist(), len(labels))

    def _fused_update_layer(
        self, index: int, layer: CapturingLinear, order: torch.Tensor, offsets: torch.Tensor,
        batch: int
    ) -> None:
        """One pass over the layer's multipliers in C++ (see fused_update.cpp)."""
        inputs, grads = _rows_by_class(layer, order)
        per_sample = self.statistic == "per_sample"
        growth = self.alpha_mu * self.lr * (batch if per_sample else 1)
        self.kernel.fused_class_lr_update(
            layer.weight.data, layer.bias.data, self.mu_weight[index], self.mu_bias[index],
            inputs, grads, offsets, self.lr, growth, per_sample)

    def _update_layer(
        self, index: int, layer: CapturingLinear, order: torch.Tensor, counts: list[int], batch: int
    ) -> None:
        inputs, grads = _rows_by_class(layer, order)
        mu_weight, mu_bias = self.mu_weight[index], self.mu_bias[index]
        gradient = self._buffers[index]
        growth = self.alpha_mu * self.lr
        per_sample = self.statistic == "per_sample"
        if per_sample:
            inputs_squared, grads_squared = inputs.square(), grads.square()
        start = 0
        for c, count in enumerate(counts):
            if count == 0:
                continue  # G_c = S_c = 0: nothing to read or write for this class
            rows = slice(start, start + count)
            start += count
            torch.mm(grads[rows].t(), inputs[rows], out=gradient)  # G_c (out, in)
            bias_gradient = grads[rows].sum(0)
            layer.weight.addcmul_(mu_weight[c], gradient, value=-self.lr)
            layer.bias.addcmul_(mu_bias[c], bias_gradient, value=-self.lr)
            if per_sample:
                mu_weight[c].addmm_(grads_squared[rows].t(), inputs_squared[rows],
                                    alpha=growth * batch)
                mu_bias[c].add_(grads_squared[rows].sum(0), alpha=growth * batch)
            else:
                mu_weight[c].addcmul_(gradient, gradient, value=growth)
                mu_bias[c].addcmul_(bias_gradient, bias_gradient, value=growth)


def _rows_by_class(layer: CapturingLinear, order: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The layer's captured inputs (B, in) and output gradients (B, out), rows sorted by class;
    the capture is emptied so that a step never reuses another step's rows."""
    capture = layer.capture
    assert capture is not None and capture.grad_outputs is not None, "attach() first"
    inputs = capture.inputs.index_select(0, order)
    grads = capture.grad_outputs.index_select(0, order)
    capture.inputs = capture.grad_outputs = None
    return inputs, grads


class ReferenceClassLR:
    """The same step computed the obvious way: one backward pass per class for G_c and one per
    sample for S_c. Slow; the oracle of the tests."""

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[nn.Linear],
        n_classes: int,
        lr: float,
        alpha_mu: float,
        statistic: str = "per_sample",
    ) -> None:
        self.model, self.layers, self.n_classes = model, list(layers), n_classes
        self.lr, self.alpha_mu, self.statistic = lr, alpha_mu, statistic
        self.managed = [p for layer in self.layers for p in (layer.weight, layer.bias)]
        self.mu = [p.new_ones(n_classes, *p.shape) for p in self.managed]

    def step(self, losses: torch.Tensor, labels: torch.Tensor) -> None:
        """`losses` (batch,): the per-sample losses of a forward pass (reduction="none")."""
        batch = len(labels)
        managed_ids = {id(p) for p in self.managed}
        others = [p for p in self.model.parameters() if id(p) not in managed_ids]
        full = torch.autograd.grad(losses.mean(), others, retain_graph=True)
        updates = [torch.zeros_like(p) for p in self.managed]
        growth = [torch.zeros_like(mu) for mu in self.mu]
        for c in labels.unique().tolist():
            members = labels == c
            class_loss = losses[members].sum() / batch
            class_grads = torch.autograd.grad(class_loss, self.managed, retain_graph=True)
            for j, g in enumerate(class_grads):
                updates[j] += self.mu[j][c] * g
                if self.statistic == "class_gradient":
                    growth[j][c] += g.square()
            if self.statistic == "per_sample":
                for i in torch.nonzero(members).flatten().tolist():
                    sample = torch.autograd.grad(losses[i] / batch, self.managed,
                                                 retain_graph=True)
                    for j, g in enumerate(sample):
                        growth[j][c] += batch * g.square()
        with torch.no_grad():
            for p, g in zip(others, full):
                p.sub_(self.lr * g)
            for p, update in zip(self.managed, updates):
                p.sub_(self.lr * update)
            for mu, g in zip(self.mu, growth):
                mu.add_(self.alpha_mu * self.lr * g)

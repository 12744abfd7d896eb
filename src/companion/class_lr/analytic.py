"""The analytical continuation of section 3, checked numerically (used by the walkthrough).

For one sample (x, y) of class c the paper places a "handle" on every weight,

    z(alpha) = w - alpha (mu_w^T y) dL/dw                                   (Eq. 2)

and differentiates the loss after this look-ahead step with respect to the multipliers:

    dL(z(alpha))/dmu_j = dL/dz * (-alpha y_j dL/dw)                         (Eq. 3)
                       = -alpha y_j (dL/dw)^2 + O(alpha^2)                  (Eq. 5)

because dL/dz = dL/dw + O(alpha) (Eq. 4). `lookahead_error` computes the exact left side
with autograd through the look-ahead step and compares it with Eq. 5: the error must shrink
as alpha^2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call

from companion.class_lr.experiment import MAX_ALPHA_RETRIES, make_config
from companion.class_lr.training import Training


def mu_gradients(
    model: nn.Module, x: torch.Tensor, label: int, n_classes: int, alpha: float
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Exact dL(z(alpha))/dmu (autograd through Eq. 2) and Eq. 5's first-order form.

    `x` is one sample (1, features). Both dicts map parameter names to (k, *shape) tensors;
    mu starts at 1 (as in the paper) for every weight and class.
    """
    params = {name: p.detach().requires_grad_() for name, p in model.named_parameters()}
    target = torch.tensor([label])
    loss = nn.functional.cross_entropy(functional_call(model, params, (x,)), target)
    gradient = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
    one_hot = nn.functional.one_hot(target, n_classes)[0].to(x.dtype)  # y, (k,)
    mus = {n: torch.ones(n_classes, *p.shape, dtype=x.dtype, requires_grad=True)
           for n, p in params.items()}
    # z = w - alpha * (mu^T y) * dL/dw, with dL/dw held fixed (it does not depend on mu)
    params = {n: p.detach() for n, p in params.items()}
    shifted = {n: params[n] - alpha * torch.tensordot(one_hot, mus[n], dims=1) * gradient[n]
               for n in params}
    lookahead = nn.functional.cross_entropy(functional_call(model, shifted, (x,)), target)
    exact = dict(zip(mus, torch.autograd.grad(lookahead, list(mus.values()))))
    first_order = {n: -alpha * one_hot.view(-1, *[1] * g.dim()) * g.square()
                   for n, g in gradient.items()}
    return exact, first_order


def lookahead_error(
    model: nn.Module, x: torch.Tensor, label: int, n_classes: int, alphas: np.ndarray
) -> pd.DataFrame:
    """Per alpha: |exact - Eq. 5| over all weights and classes, and |Eq. 5| for scale."""
    rows = []
    for alpha in alphas:
        exact, first_order = mu_gradients(model, x, label, n_classes, float(alpha))
        difference = torch.cat([(exact[n] - first_order[n]).flatten() for n in exact])
        size = torch.cat([first_order[n].flatten() for n in exact])
        rows.append({"alpha": float(alpha), "error": difference.norm().item(),
                     "first_order_norm": size.norm().item()})
    return pd.DataFrame(rows)


def log_log_slope(frame: pd.DataFrame) -> float:
    """Least-squares slope of log(error) against log(alpha): 2 for an O(alpha^2) error."""
    return float(np.polyfit(np.log(frame["alpha"]), np.log(frame["error"]), 1)[0])


def multiplier_trace(dataset: str, activation: str = "selu", epochs: int = 2,
                     **overrides: Any) -> pd.DataFrame:
    """Mean multiplier of the bottom layer per class after every class-lr step.

    Trains `epochs` epochs of class-lr (no cutoff inside them) on the real data set, so the
    trace shows mu growing within each half epoch and falling back to 1 at every reset. Like
    every class-lr run, a trace whose training does not converge (the config's divergence
    rule, applied to the loss and the multipliers) is retried at alpha_mu / 10; the `alpha_mu`
    column says which value the trace shows.
    """
    config = make_config(dataset, activation, "class_lr", "paper", cutoff=epochs,
                         epochs=epochs, **overrides)
    retries = MAX_ALPHA_RETRIES if config.alpha_retries is None else config.alpha_retries
    for attempt in range(retries + 1):
        alpha_mu = config.alpha_mu / 10**attempt
        rows, diverged = _trace(config, alpha_mu)
        means = np.array([row["mean_mu"] for row in rows])
        if not diverged and np.isfinite(means).all() and means.max() <= TRACE_BOUND:
            break
    return pd.DataFrame(rows)


# A mean multiplier above this within a half epoch is the runaway growth that makes a run
# blow up (see convergence.py); the trace is then redone at alpha_mu / 10.
TRACE_BOUND = 1e4


def _trace(config: Any, alpha_mu: float) -> tuple[list[dict[str, Any]], bool]:
    """The per-step rows of one class-lr training at `alpha_mu`, and whether it diverged."""
    training = Training(config)
    rows: list[dict[str, Any]] = []

    def record(optimizer: Any, epoch: int, index: int, n_batches: int) -> None:
        means = optimizer.mu_weight[0].mean(dim=(1, 2))  # (k,)
        for c, value in enumerate(means.tolist()):
            rows.append({"step": epoch * n_batches + index, "epoch": epoch + index / n_batches,
                         "class": c, "mean_mu": value, "alpha_mu": alpha_mu})

    training.train_class_lr(config.cutoff, alpha_mu, on_step=record)
    return rows, training.diverged


def multiplier_memory(dataset: str) -> dict[str, float]:
    """Managed weights (weights and biases of the bottom min(16, L) hidden layers) of the
    data set's Table 1 net, and the float32 memory of its k multipliers per weight."""
    from companion.class_lr.optimizer import managed_layers
    from companion.class_lr.training import build_model
    from companion.data import uci

    arrays = uci.arrays(dataset)
    n_classes, n_features = int(arrays["n_classes"]), arrays["x"].shape[1]
    model = build_model(make_config(dataset, "selu"), n_features, n_classes)
    weights = sum(p.numel() for layer in managed_layers(model.hidden_layers)
                  for p in (layer.weight, layer.bias))
    return {"classes": n_classes, "managed weights": weights,
            "multiplier MiB": n_classes * weights * 4 / 2**20}

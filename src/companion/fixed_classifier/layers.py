"""Fixed (non-trainable) classifier layers of Hoffer, Hubara & Soudry (ICLR 2018).

Both layers replace a learned ``nn.Linear(N, C)`` by

    logits = alpha * Q^T x_hat + b,        x_hat = x / ||x||_2,

with ``Q`` (``N x C``) fixed, ``alpha`` a single scalar (learned by default: it plays the role of
an inverse softmax temperature, because ``q_i . x_hat`` is bounded in ``[-1, 1]``) and ``b`` a
learned bias. The trainable parameter count therefore drops by ``N * C`` and gains one (alpha),
or drops by exactly ``N * C`` when the scale is fixed.

Implementation note: instead of normalising the ``(B, N)`` input, the per-sample factor
``alpha / ||x||`` is applied to the ``(B, C)`` projection -- the same function, fewer flops.

Kept whole (over 300 lines): the two layers share their base class and backward pass.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .hadamard import (
    DEFAULT_RADIX_BITS,
    _truncated_forward,
    sylvester_hadamard,
    truncated_hadamard,
)

__all__ = [
    "FixedClassifier",
    "HadamardClassifier",
    "replace_classifier",
    "find_classifier",
    "classifier_features",
    "CLASSIFIER_KINDS",
]


class _ScaledNormalizedProjection(nn.Module):
    """Shared alpha / bias / normalisation logic; subclasses implement ``_project``."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        scale: float | None,
        init_scale: float,
        bias: bool,
        eps: float,
    ) -> None:
        super().__init__()
        if in_features < 1 or num_classes < 1:
            raise ValueError(f"need positive sizes, got N={in_features}, C={num_classes}")
        self.in_features = in_features
        self.out_features = num_classes
        self.eps = eps
        if scale is None:
            self.alpha = nn.Parameter(torch.tensor(float(init_scale)))
        else:
            self.register_buffer("alpha", torch.tensor(float(scale)))
        self.bias = nn.Parameter(torch.zeros(num_classes)) if bias else None

    @property
    def learn_scale(self) -> bool:
        return isinstance(self.alpha, nn.Parameter)

    def _project(self, x: Tensor) -> Tensor:
        """``(..., N) -> (..., C)``: the unnormalised product ``x @ Q``."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(..., N)`` features -> ``(..., C)`` logits."""
        norm = x.norm(dim=-1, keepdim=True).clamp_min(self.eps)
        logits = self._project(x) * (self.alpha / norm)
        if self.bias is not None:
            logits = logits + self.bias
        return logits

    def dense_matrix(self) -> Tensor:
        """The fixed projection ``Q`` as an explicit ``(N, C)`` tensor (for tests/analysis)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        kind = "learned" if self.learn_scale else "fixed"
        return (
            f"in_features={self.in_features}, num_classes={self.out_features}, "
            f"alpha={self.alpha.item():.4g} ({kind}), bias={self.bias is not None}"
        )


class FixedClassifier(_ScaledNormalizedProjection):
    """Fixed random orthonormal classifier: ``logits = alpha * Q^T (x / ||x||) + b``.

    ``Q`` (``N x C``) is drawn once by orthogonal initialisation of a random ``C x N`` matrix
    ``W`` (as the authors do) with a private ``torch.Generator`` seeded by ``seed`` -- the global
    RNG is never touched -- and stored as a non-trainable buffer ``Q = W^T`` (it is part of the
    ``state_dict`` so a checkpoint restores the same classifier).

    * ``C <= N`` (the usual case): the columns ``q_i`` are orthonormal, ``Q^T Q = I_C``.
    * ``C > N``: ``C`` orthonormal vectors do not exist in ``R^N``; the rows are orthonormal
      instead, ``Q Q^T = I_N`` (a tight frame; the columns have mean squared norm ``N / C``).

    Args:
        in_features: ``N``, size of the final representation.
        num_classes: ``C``.
        scale: ``None`` -> alpha is one learned scalar initialised to ``init_scale``;
            a float -> alpha is fixed to that value (a buffer, not trainable).
        seed: seed of the private generator that draws ``Q``.
        init_scale: initial alpha when learned (authors: 10).
        bias: keep a learned bias ``b`` (initialised to 0).
        eps: lower bound on ``||x||`` to avoid division by zero.

    Shapes: input ``(..., N)``, output ``(..., C)``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        scale: float | None = None,
        seed: int = 0,
        init_scale: float = 10.0,
        bias: bool = True,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(in_features, num_classes, scale, init_scale, bias, eps)
        self.seed = seed
        generator = torch.Generator().manual_seed(seed)
        weight = torch.empty(num_classes, in_features, dtype=torch.float64)
        nn.init.orthogonal_(weight, generator=generator)  # C x N
        self.register_buffer("Q", weight.t().contiguous().to(torch.get_default_dtype()))

    def _project(self, x: Tensor) -> Tensor:
        return x @ self.Q

    def dense_matrix(self) -> Tensor:
        return self.Q.clone()


class HadamardClassifier(_ScaledNormalizedProjection):
    """Fixed truncated-Hadamard classifier applied with a fast Walsh-Hadamard transform.

    With ``H`` the ``P x P`` Sylvester Hadamard matrix, ``P = 2^ceil(log2 max(N, C))``, the
    authors keep its first ``C`` rows and ``N`` columns: ``Q^T = H[:C, :N] / sqrt(N)``, the
    division making every column of ``Q`` a unit vector (each row of ``H[:C, :N]`` has ``N``
    entries +-1). The columns are exactly orthogonal only when ``N`` is a power of two
    (e.g. not for DenseNet-BC, ``N = 342``) and ``C <= N``.

    Nothing is stored for ``Q`` (the state_dict holds only alpha and b): the product is
    computed by :func:`truncated_hadamard`, a mixed-radix FWHT that skips the zero padding and
    the unused outputs, in ``O(N log N)``-type work per sample instead of ``N * C``, using only
    tiny (at most ``2^radix_bits`` square) +-1 radix matrices cached per dtype and device. The
    backward is again a fast transform because ``H`` is symmetric; normalisation, scale and
    bias are fused into one autograd function with a hand-written backward.

    Args:
        in_features: ``N``.
        num_classes: ``C``.
        scale: ``None`` -> learned alpha initialised to ``init_scale``; float -> fixed alpha.
        init_scale: initial alpha when learned; default ``sqrt(N / C)``, the authors' start.
            Their module multiplies the *unnormalised* +-1 matrix ``H[:C, :N]`` by an alpha
            that starts at ``1 / sqrt(C)``; since ``H[:C, :N] = sqrt(N) Q^T`` here, their
            logits at the start are ``sqrt(N) / sqrt(C) * Q^T x_hat``, i.e. our alpha =
            ``sqrt(N / C)`` (2.53 for ResNet's N = 64, C = 10). Only the start is matched: a
            gradient step on their alpha moves the effective scale ``N`` times as far as the
            same step on ours (their alpha is ours divided by ``sqrt(N)``).
        bias: keep a learned bias (initialised to 0).
        radix_bits: butterfly stages fused per pass of the transform (1 = radix-2).
        eps: lower bound on ``||x||``.

    Shapes: input ``(..., N)``, output ``(..., C)``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        scale: float | None = None,
        init_scale: float | None = None,
        bias: bool = True,
        radix_bits: int = DEFAULT_RADIX_BITS,
        eps: float = 1e-8,
    ) -> None:
        if init_scale is None:
            init_scale = math.sqrt(in_features / num_classes)  # the authors' effective start
        super().__init__(in_features, num_classes, scale, init_scale, bias, eps)
        self.radix_bits = radix_bits

    def _project(self, x: Tensor) -> Tensor:
        return truncated_hadamard(x, self.out_features, self.radix_bits) / math.sqrt(
            self.in_features
        )

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(..., N)`` features -> ``(..., C)`` logits (fused normalise + FWHT)."""
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features).contiguous()
        logits = _HadamardLogits.apply(
            flat, self.alpha, self.bias, self.out_features, self.radix_bits, self.eps
        )
        return logits.reshape(*lead, self.out_features)

    def dense_matrix(self) -> Tensor:
        size = 1 << (max(self.in_features, self.out_features) - 1).bit_length()
        h = sylvester_hadamard(size, dtype=self.alpha.dtype, device=self.alpha.device)
        return h[: self.out_features, : self.in_features].t() / math.sqrt(self.in_features)


class _HadamardLogits(torch.autograd.Function):
    """Fused ``alpha * H[:C, :N] x / (sqrt(N) max(||x||, eps)) + b`` with a hand-written backward.

    Autograd through ``x / ||x||`` needs several extra full passes over the ``(B, N)`` input
    (division, masking, products); here the backward touches ``x`` once:
    ``grad_x = H[:N, :C] (g * s) - (alpha (g . y) / (sqrt(N) n^3)) x`` with ``s = alpha /
    (sqrt(N) n)`` and ``y = H[:C, :N] x``. First-order only (double backward raises).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        x: Tensor,
        alpha: Tensor,
        bias: Tensor | None,
        out_features: int,
        radix_bits: int,
        eps: float,
    ) -> Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        clamped = norm.clamp_min(eps)
        proj = _truncated_forward(x, out_features, radix_bits)  # (B, C), unscaled
        inv = 1.0 / (clamped * math.sqrt(x.shape[-1]))  # (B, 1)
        scale = alpha * inv
        logits = proj * scale if bias is None else torch.addcmul(bias, proj, scale)
        ctx.save_for_backward(x, alpha, proj, inv, norm > eps)
        ctx.radix_bits = radix_bits
        ctx.has_bias = bias is not None
        return logits

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, alpha, proj, inv, above_eps = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = grad_alpha = grad_bias = None
        gy = (grad * proj).sum(dim=-1, keepdim=True)  # (B, 1): g . y
        if ctx.needs_input_grad[0]:
            grad_x = _truncated_forward(grad * (alpha * inv), x.shape[-1], ctx.radix_bits)
            # d(1/n)/dx = -x / n^3; zero where the norm was clamped to eps.
            coef = torch.where(above_eps, -alpha * gy * inv * inv.square() * x.shape[-1], 0.0)
            grad_x = torch.addcmul(grad_x, x, coef)
        if ctx.needs_input_grad[1]:
            grad_alpha = (gy * inv).sum().reshape(alpha.shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(dim=0)
        return grad_x, grad_alpha, grad_bias, None, None, None


CLASSIFIER_KINDS = {"fixed": FixedClassifier, "hadamard": HadamardClassifier}
_CLASSIFIER_TYPES = (nn.Linear, FixedClassifier, HadamardClassifier)


def find_classifier(model: nn.Module) -> tuple[str, nn.Module]:
    """Return ``(attribute path, module)`` of the model's last classifier-like module.

    "Last" is the last ``nn.Linear`` / :class:`FixedClassifier` / :class:`HadamardClassifier`
    in ``model.named_modules()`` order (registration order), which is the output layer for all
    networks of this package and for torchvision-style models.
    """
    found: tuple[str, nn.Module] | None = None
    for name, module in model.named_modules():
        if isinstance(module, _CLASSIFIER_TYPES):
            found = (name, module)
    if found is None:
        raise ValueError(f"no nn.Linear found in {type(model).__name__}")
    return found


def classifier_features(model: nn.Module) -> int:
    """``N``: input width of the model's final classifier (learned or fixed)."""
    return find_classifier(model)[1].in_features


def replace_classifier(model: nn.Module, kind: str = "fixed", **kwargs: object) -> nn.Module:
    """Swap the model's last ``nn.Linear`` for a fixed classifier, in place; returns ``model``.

    The new layer has the same ``in_features`` / ``out_features`` and lives on the old layer's
    device and dtype. ``kwargs`` go to the classifier (e.g. ``scale=``, ``seed=``). With a learned
    alpha the trainable parameter count becomes ``learned - N * C + 1``
    (the ``N x C`` weight goes, the bias stays, alpha comes).

    Args:
        model: any module containing at least one ``nn.Linear``.
        kind: ``"fixed"`` (:class:`FixedClassifier`) or ``"hadamard"``
            (:class:`HadamardClassifier`).
    """
    if kind not in CLASSIFIER_KINDS:
        raise ValueError(f"unknown classifier kind {kind!r}; valid: {sorted(CLASSIFIER_KINDS)}")
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"no nn.Linear found in {type(model).__name__}")
    path, linear = linears[-1]
    new = CLASSIFIER_KINDS[kind](linear.in_features, linear.out_features, **kwargs)
    new = new.to(device=linear.weight.device, dtype=linear.weight.dtype)
    if not path:
        raise ValueError("the model itself is an nn.Linear; construct a classifier directly")
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, attr, new)
    return model

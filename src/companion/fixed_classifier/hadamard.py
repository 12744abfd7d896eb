"""Sylvester Hadamard matrices and fast Walsh-Hadamard transforms (FWHT).

The Hadamard classifier of Hoffer et al. (2018) multiplies the normalised feature vector by a
truncated Sylvester Hadamard matrix ``H[:C, :N]`` (entries +-1). Storing that matrix costs
``C * N`` numbers and multiplying by it ``C * N`` multiply-adds per sample, exactly like a
learned layer. The Sylvester matrix, however, factorises as a Kronecker product
``H_{2^m} = H_2 (x) H_2 (x) ... (x) H_2``, so the product can be computed with ``m`` butterfly
stages of additions and subtractions, ``O(P log P)`` per sample for the padded size ``P = 2^m``.

Two transforms live here:

* :func:`fwht` -- the full, unnormalised transform ``y = x @ H_P`` along the last dimension,
  applied as reshape-based butterflies. ``radix_bits=1`` is the textbook radix-2 butterfly; a
  larger radix fuses ``radix_bits`` consecutive stages into one product with a tiny
  ``2^radix_bits`` Sylvester matrix, which is far faster on CPUs (BLAS beats a chain of
  element-wise kernels) while keeping the same ``O(P log P)`` structure.
* :func:`truncated_hadamard` -- ``y = x @ H[:N, :C]`` computing only what the classifier needs:
  the ``P - N`` zero-padded inputs are never touched and only the output blocks that contain
  the first ``C`` entries are formed. It is differentiable through a custom autograd function;
  since ``H`` is symmetric the backward pass is the same kind of truncated transform with the
  roles of ``N`` and ``C`` swapped.

Nesting property used throughout: ``H_{2n}[:n, :n] == H_n``, so the top-left ``r x c`` block of
any Sylvester matrix of size ``>= max(r, c)`` is the same.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

__all__ = [
    "next_power_of_two",
    "sylvester_hadamard",
    "fwht",
    "truncated_hadamard",
]

DEFAULT_RADIX_BITS = 6
"""Stages fused per butterfly pass: radix 64 (a 64 x 64 +-1 matrix, 16 KiB in float32)."""


def next_power_of_two(n: int) -> int:
    """Smallest power of two ``>= n`` (``n >= 1``)."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    return 1 << (n - 1).bit_length()


def sylvester_hadamard(
    n: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """Dense ``n x n`` Sylvester Hadamard matrix, ``H[i, j] = (-1)^popcount(i & j)``.

    Built by the recursion ``H_{2k} = [[H_k, H_k], [H_k, -H_k]]``; symmetric, ``H H^T = n I``.
    Meant for tests and for the tiny radix matrices of the fast transform, not for classifiers.
    """
    if n < 1 or n & (n - 1):
        raise ValueError(f"Sylvester Hadamard size must be a power of two, got {n}")
    h = torch.ones(1, 1, dtype=dtype, device=device)
    while h.shape[0] < n:
        h = torch.cat((torch.cat((h, h), dim=1), torch.cat((h, -h), dim=1)), dim=0)
    return h


@functools.lru_cache(maxsize=64)
def _cached_hadamard(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    # Created outside inference mode so the cached tensor can be used under autograd later.
    with torch.inference_mode(False), torch.no_grad():
        return sylvester_hadamard(n, dtype=dtype, device=device)


def _radix_matrix(n: int, like: Tensor) -> Tensor:
    return _cached_hadamard(n, like.dtype, like.device)


def fwht(x: Tensor, radix_bits: int = DEFAULT_RADIX_BITS) -> Tensor:
    """Unnormalised fast Walsh-Hadamard transform along the last dimension.

    Args:
        x: ``(..., P)`` with ``P`` a power of two.
        radix_bits: stages fused per pass (``1`` = plain radix-2 add/sub butterflies).

    Returns:
        ``(..., P)`` tensor equal to ``x @ H_P`` (Sylvester order). Differentiable by autograd.
    """
    if radix_bits < 1:
        raise ValueError(f"radix_bits must be >= 1, got {radix_bits}")
    size = x.shape[-1]
    if size < 1 or size & (size - 1):
        raise ValueError(f"last dimension must be a power of two, got {size}")
    lead = x.shape[:-1]
    y = x.reshape(-1, size)
    rows = y.shape[0]
    stride = 1  # 2^(number of low bits already transformed)
    while stride < size:
        radix = min(1 << radix_bits, size // stride)
        # Index bits: [high | this radix | low], the butterfly acts on the middle axis.
        blocks = y.view(rows, size // (radix * stride), radix, stride)
        if radix == 2:
            even, odd = blocks[:, :, 0], blocks[:, :, 1]
            y = torch.stack((even + odd, even - odd), dim=2).view(rows, size)
        else:
            y = torch.matmul(_radix_matrix(radix, y), blocks).view(rows, size)
        stride *= radix
    return y.view(*lead, size)


def _truncated_forward(x: Tensor, out_features: int, radix_bits: int) -> Tensor:
    """``x @ H[:N, :out]`` for 2-D ``x`` of shape ``(R, N)``; returns ``(R, out)``."""
    rows, n_in = x.shape
    size = next_power_of_two(max(n_in, out_features))
    if radix_bits == 1:  # textbook path: pad, all log2(size) add/sub stages, slice
        padded = torch.nn.functional.pad(x, (0, size - n_in))
        return fwht(padded, radix_bits=1)[:, :out_features]
    radix = 1 << radix_bits
    if size <= radix:  # small enough: one product with a tiny dense block
        return x @ _radix_matrix(size, x)[:n_in, :out_features]
    # Split the index j = j_hi * radix + j_lo: H_size = H_(size/radix) (x) H_radix.
    rows_in = -(-n_in // radix)  # high blocks holding non-zero inputs
    rows_out = -(-out_features // radix)  # high blocks holding wanted outputs
    pad = rows_in * radix - n_in
    if pad:
        x = torch.nn.functional.pad(x, (0, pad))
    low = x.view(rows, rows_in, radix) @ _radix_matrix(radix, x)  # (R, rows_in, radix)
    if max(rows_in, rows_out) <= radix:
        h_hi = _radix_matrix(next_power_of_two(max(rows_in, rows_out)), x)
        out = torch.matmul(h_hi[:rows_out, :rows_in], low)  # (R, rows_out, radix)
    else:  # recurse on the high index for very large sizes
        flat = low.transpose(1, 2).reshape(rows * radix, rows_in)
        out = _truncated_forward(flat, rows_out, radix_bits)
        out = out.view(rows, radix, rows_out).transpose(1, 2)
    return out.reshape(rows, rows_out * radix)[:, :out_features]


class _TruncatedHadamard(torch.autograd.Function):
    """``y = x @ H[:N, :C]``; backward ``g @ H[:C, :N]`` (``H`` is symmetric)."""

    @staticmethod
    def forward(ctx, x: Tensor, out_features: int, radix_bits: int) -> Tensor:  # type: ignore[override]
        ctx.in_features = x.shape[-1]
        ctx.radix_bits = radix_bits
        return _truncated_forward(x, out_features, radix_bits)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        # Through .apply so that double backward works too.
        grad_in = _TruncatedHadamard.apply(grad.contiguous(), ctx.in_features, ctx.radix_bits)
        return grad_in, None, None


def truncated_hadamard(
    x: Tensor, out_features: int, radix_bits: int = DEFAULT_RADIX_BITS
) -> Tensor:
    """Fast product with the truncated Sylvester matrix: ``y = x @ H[:N, :C]``.

    Equivalent to zero-padding ``x`` to ``P = 2^ceil(log2 max(N, C))``, applying :func:`fwht`
    and keeping the first ``C`` outputs, but skips the padding and the unused outputs. No
    ``C x N`` matrix is ever formed; only ``2^radix_bits``-sized radix matrices are used.

    Args:
        x: ``(..., N)`` input.
        out_features: ``C``, number of leading transform outputs to return.
        radix_bits: butterfly stages fused per pass (see :func:`fwht`).

    Returns:
        ``(..., C)`` tensor. Differentiable (custom autograd function).
    """
    if out_features < 1:
        raise ValueError(f"out_features must be positive, got {out_features}")
    if radix_bits < 1:
        raise ValueError(f"radix_bits must be >= 1, got {radix_bits}")
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    out = _TruncatedHadamard.apply(flat, out_features, radix_bits)
    return out.reshape(*lead, out_features)

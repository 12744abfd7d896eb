"""A linear layer that hands its input and output gradient to an optimizer.

The class-lr step needs, for every managed layer, the layer's input activations A (batch, in)
and the gradient of the batch loss with respect to its output D (batch, out): every per-class
and per-sample weight gradient is a product of rows of these two. `CapturingLinear` records
both during the ordinary forward and backward pass and, while capturing, skips autograd's own
weight gradient (D^T A), which the optimizer forms per class instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Capture:
    """What one forward/backward pass left for the optimizer."""

    inputs: torch.Tensor | None = None  # (batch, in)
    grad_outputs: torch.Tensor | None = None  # (batch, out), gradient of the batch loss


class _CapturedLinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs, weight, bias, capture):  # type: ignore[override]
        ctx.save_for_backward(weight)
        ctx.capture = capture
        capture.inputs = inputs.detach()
        return torch.addmm(bias, inputs, weight.t())

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        (weight,) = ctx.saved_tensors
        ctx.capture.grad_outputs = grad_output.detach()
        grad_input = grad_output @ weight if ctx.needs_input_grad[0] else None
        return grad_input, None, None, None  # no weight/bias gradient: the optimizer forms it


class CapturingLinear(nn.Linear):
    """nn.Linear; while `capture` is set, it records inputs and output gradients instead of
    accumulating `.grad` for its weight and bias."""

    capture: Capture | None = None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.capture is None:
            return super().forward(inputs)
        return _CapturedLinearFunction.apply(inputs, self.weight, self.bias, self.capture)

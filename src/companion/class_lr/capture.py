"""A linear layer that hands its input and output gradient to an optimizer.

The class-lr step needs, for every managed layer, the layer's input activations A (batch, in)
and the gradient of the batch loss with respect to its output D (batch, out): every per-class
and per-sample weight gradient is a product of rows of these two. `CapturingLinear` records
both during the ordinary forward and backward pass (a tensor hook on the output) and, while
capturing, skips autograd's own weight gradient (D^T A), which the optimizer forms per class.
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

    def store_grad_outputs(self, grad: torch.Tensor) -> None:
        self.grad_outputs = grad


class CapturingLinear(nn.Linear):
    """nn.Linear; while `capture` is set, it records inputs and output gradients instead of
    accumulating `.grad` for its weight and bias."""

    capture: Capture | None = None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        capture = self.capture
        if capture is None or not torch.is_grad_enabled():  # evaluation passes: nothing to tap
            return super().forward(inputs)
        if not inputs.requires_grad:
            # The bottom layer's input is data: ask for its gradient (a tiny (B, features)
            # matmul) so that the output still has a backward pass that reaches the hook.
            inputs = inputs.detach().requires_grad_()
        capture.inputs = inputs.detach()
        # Detached weight and bias: autograd forms no weight gradient, only the input gradient.
        outputs = nn.functional.linear(inputs, self.weight.detach(), self.bias.detach())
        outputs.register_hook(capture.store_grad_outputs)
        return outputs

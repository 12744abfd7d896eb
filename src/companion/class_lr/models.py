"""Self-normalizing MLPs (Klambauer et al. 2017) as the class-lr paper uses them.

Reading of Table 1 (our choice, the paper does not spell it out):
- `layers` is the number of hidden layers; the softmax output layer comes on top.
- conic: hidden layer i (0-based) has round(hidden * (k / hidden) ** (i / layers)) units, a
  geometric progression from `hidden` that would reach the number of classes k at the output
  layer (i = layers); rectangular: every hidden layer has `hidden` units.
- SELU nets use AlphaDropout; ReLU and tanh nets the same architecture with plain Dropout (the
  only difference the paper names). Dropout follows every hidden activation.
- All weights start LeCun-normal (std = 1/sqrt(fan_in)), biases at zero, for every activation:
  the paper changes nothing but the dropout variant between activations. `init="he"`
  (std = sqrt(2/fan_in), the usual choice for ReLU) and `init="glorot"` (std =
  sqrt(2/(fan_in + fan_out)), the usual choice for tanh) are the alternatives the protocol
  study tests (see `notebooks/class_lr/protocol_findings.ipynb`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from companion.class_lr.capture import CapturingLinear

ACTIVATION_MODULES = {"selu": nn.SELU, "relu": nn.ReLU, "tanh": nn.Tanh}
INITS = ("lecun", "he", "glorot")


def init_std(init: str, fan_in: int, fan_out: int) -> float:
    """Standard deviation of the normal initialisation `init` for a (fan_out, fan_in) weight."""
    if init == "lecun":
        return 1 / math.sqrt(fan_in)
    if init == "he":
        return math.sqrt(2 / fan_in)
    if init == "glorot":
        return math.sqrt(2 / (fan_in + fan_out))
    raise ValueError(f"init must be one of {INITS}, not {init!r}")


def hidden_widths(layers: int, hidden: int, n_classes: int, shape: str) -> list[int]:
    """Widths of the hidden layers, bottom first."""
    if layers < 1 or hidden < 1:
        raise ValueError(f"need layers >= 1 and hidden >= 1, got {layers}, {hidden}")
    if shape == "rectangular":
        return [hidden] * layers
    if shape == "conic":
        ratio = n_classes / hidden
        return [max(n_classes, round(hidden * ratio ** (i / layers))) for i in range(layers)]
    raise ValueError(f"shape must be 'conic' or 'rectangular', not {shape!r}")


class SelfNormalizingMLP(nn.Module):
    """Fully connected net: [Linear -> activation -> dropout] x layers -> Linear (logits).

    `hidden_layers` is an nn.ModuleList of the hidden Linear layers (bottom first) so that
    methods acting per layer (class-lr, neuron specialisation) can find them.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        layers: int,
        hidden: int,
        shape: str = "rectangular",
        activation: str = "selu",
        dropout: float = 0.0,
        init: str = "lecun",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATION_MODULES:
            raise ValueError(f"activation must be one of {list(ACTIVATION_MODULES)}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), not {dropout}")
        init_std(init, 1, 1)  # validates the name before anything is built
        widths = [n_features, *hidden_widths(layers, hidden, n_classes, shape)]
        # CapturingLinear behaves as nn.Linear unless the class-lr optimizer taps it.
        self.hidden_layers = nn.ModuleList(
            CapturingLinear(fan_in, fan_out) for fan_in, fan_out in zip(widths, widths[1:])
        )
        self.output_layer = nn.Linear(widths[-1], n_classes)
        self.activation = ACTIVATION_MODULES[activation]()
        dropout_module = nn.AlphaDropout if activation == "selu" else nn.Dropout
        self.dropout = dropout_module(dropout) if dropout > 0 else nn.Identity()
        for linear in [*self.hidden_layers, self.output_layer]:
            std = init_std(init, linear.in_features, linear.out_features)
            nn.init.normal_(linear.weight, std=std)
            nn.init.zeros_(linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, n_features) -> logits (batch, n_classes)."""
        for linear in self.hidden_layers:
            x = self.dropout(self.activation(linear(x)))
        return self.output_layer(x)

    @torch.no_grad()
    def hidden_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Post-activation outputs of every hidden layer, each (batch, width), in eval mode."""
        outputs = []
        for linear in self.hidden_layers:
            x = self.activation(linear(x))
            outputs.append(x)
        return outputs

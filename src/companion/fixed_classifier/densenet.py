"""DenseNets used in Table 1 of "Fix your classifier" (Huang et al. 2017), without torchvision.

Both variants use bottleneck layers (BN-ReLU-1x1 conv to ``bn_size * k`` channels, BN-ReLU-3x3
conv to ``k`` channels) and transitions that halve the channels (compression 0.5) and the
resolution.

* DenseNet-BC (L=100, k=12) for CIFAR: a 3x3 stem with ``2k = 24`` channels, three dense blocks
  of ``(L - 4) / 6 = 16`` layers, final BN-ReLU and global pooling; ``N = 342`` features,
  800,032 parameters with 100 classes.
* DenseNet-169 for ImageNet in torchvision's layout (``features``/``classifier``): 7x7 stem with
  64 channels, blocks (6, 12, 32, 32), ``k = 32``, ``bn_size = 4``; ``N = 1664``,
  14,149,480 parameters with 1000 classes.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DenseNet", "densenet_bc_cifar", "densenet169"]


class _DenseLayer(nn.Module):
    """Bottleneck layer: ``(B, C_in, H, W) -> (B, C_in + k, H, W)`` (concatenated)."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        inner = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return torch.cat((x, out), dim=1)


def _transition(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.AvgPool2d(2, 2),
    )


class DenseNet(nn.Module):
    """DenseNet with bottleneck layers and compression. ``(B, 3, H, W) -> (B, C)``.

    Args:
        blocks: number of dense layers per block.
        growth_rate: ``k``.
        stem: ``"cifar"`` (3x3 conv to ``init_channels``) or ``"imagenet"`` (7x7/2 conv, BN,
            ReLU, 3x3/2 max-pool).
        init_channels: stem output channels.
        bn_size: bottleneck width multiplier.
        compression: channel fraction kept by a transition.
        num_classes: ``C``.
    """

    def __init__(
        self,
        blocks: tuple[int, ...],
        growth_rate: int,
        stem: str,
        init_channels: int,
        bn_size: int = 4,
        compression: float = 0.5,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        features: list[tuple[str, nn.Module]]
        if stem == "cifar":
            features = [("conv0", nn.Conv2d(3, init_channels, 3, padding=1, bias=False))]
        elif stem == "imagenet":
            features = [
                ("conv0", nn.Conv2d(3, init_channels, 7, 2, 3, bias=False)),
                ("norm0", nn.BatchNorm2d(init_channels)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(3, 2, 1)),
            ]
        else:
            raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
        channels = init_channels
        for i, count in enumerate(blocks):
            layers = []
            for _ in range(count):
                layers.append(_DenseLayer(channels, growth_rate, bn_size))
                channels += growth_rate
            features.append((f"denseblock{i + 1}", nn.Sequential(*layers)))
            if i != len(blocks) - 1:
                out = int(channels * compression)
                features.append((f"transition{i + 1}", _transition(channels, out)))
                channels = out
        features.append((f"norm{len(blocks) + 1}", nn.BatchNorm2d(channels)))
        self.features = nn.Sequential(OrderedDict(features))
        self.classifier = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.features(x))
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


def densenet_bc_cifar(depth: int = 100, growth_rate: int = 12, num_classes: int = 100) -> DenseNet:
    """CIFAR DenseNet-BC-``depth`` with growth ``k``; ``N = 342`` for (100, 12)."""
    if (depth - 4) % 6:
        raise ValueError(f"DenseNet-BC depth must be 6n+4, got {depth}")
    n = (depth - 4) // 6
    return DenseNet((n, n, n), growth_rate, "cifar", 2 * growth_rate, num_classes=num_classes)


def densenet169(num_classes: int = 1000) -> DenseNet:
    """ImageNet DenseNet-169 (torchvision layout), ``N = 1664``."""
    return DenseNet((6, 12, 32, 32), 32, "imagenet", 64, num_classes=num_classes)

"""ShuffleNet v1 (Zhang et al. 2017) for ImageNet, without torchvision.

Table 1 of "Fix your classifier" lists ShuffleNet with 1,826,555 parameters, final width
``N = 960`` and a classifier share of 52.56 % (``960 * 1000 / 1,826,555``). ``N = 960`` fixes the
configuration to **groups g = 3, width 1x** (stage widths 240 / 480 / 960, repeats 4 / 8 / 4);
no other standard (g, width) pair of the paper ends in 960 channels.

The remaining implementation details are not in the paper. The variant built here is the
common PyTorch one (3x3/2 stem conv *with bias* and no BN, 3x3/2 max-pool; every unit conv has a
bias and is followed by BN; ungrouped first 1x1 conv in the first unit of stage 2; FC with bias)
with the bottleneck width equal to a quarter of the *residual-branch* output, i.e.
``(out - in) / 4`` in the stride-2 units whose branch is concatenated with the pooled input.
It has **1,826,554** trainable parameters -- one fewer than the table -- and its fixed-classifier
version (learned alpha) has 866,555, exactly the table's fixed count. No variant can give the
table's learned number: with g = 3 and all channel counts even every parameter group (weights,
biases, 2 BN parameters per channel, 960 x 1000 FC) is even, while 1,826,555 is odd. The table's
learned figure is most plausibly the fixed count plus ``N * C``, i.e. it includes alpha.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ShuffleNet", "shufflenet", "STAGE_WIDTHS"]

STAGE_WIDTHS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
"""Output channels of stages 2-4 at width 1x, per number of groups (paper, Table 1)."""


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """``(B, g * c, H, W) -> (B, c * g, H, W)``: interleave the channels of the ``g`` groups."""
    b, ch, h, w = x.shape
    return x.view(b, groups, ch // groups, h, w).transpose(1, 2).reshape(b, ch, h, w)


class _ShuffleUnit(nn.Module):
    """GConv1x1-BN-ReLU, shuffle, DWConv3x3-BN, GConv1x1-BN; add (stride 1) or concat (stride 2)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        groups: int,
        stride: int,
        group_first: bool = True,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.groups = groups
        branch_out = out_channels - in_channels if stride == 2 else out_channels
        mid = branch_out // 4 // groups * groups  # a multiple of g (unchanged for g = 3)
        first_groups = groups if group_first else 1
        self.compress = nn.Conv2d(in_channels, mid, 1, groups=first_groups)
        self.bn1 = nn.BatchNorm2d(mid)
        self.depthwise = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid)
        self.bn2 = nn.BatchNorm2d(mid)
        self.expand = nn.Conv2d(mid, branch_out, 1, groups=groups)
        self.bn3 = nn.BatchNorm2d(branch_out)
        self.shuffle_groups = first_groups

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.compress(x)))
        if self.shuffle_groups > 1:
            out = channel_shuffle(out, self.shuffle_groups)
        out = self.bn3(self.expand(self.bn2(self.depthwise(out))))
        if self.stride == 2:
            return F.relu(torch.cat((F.avg_pool2d(x, 3, 2, 1), out), dim=1))
        return F.relu(x + out)


class ShuffleNet(nn.Module):
    """ShuffleNet v1, ``(B, 3, 224, 224) -> (B, C)``; ``N`` = last stage width (960 for g=3).

    Args:
        groups: groups of the pointwise convolutions (1, 2, 3, 4 or 8).
        width: channel multiplier (``0.5``, ``1.0`` ...); stage widths are rounded to a multiple
            of ``4 * groups`` so the bottleneck splits into groups.
        num_classes: ``C``.
        stem_channels: output channels of the first conv (24 at width 1x).
    """

    def __init__(
        self, groups: int = 3, width: float = 1.0, num_classes: int = 1000, stem_channels: int = 24
    ) -> None:
        super().__init__()
        if groups not in STAGE_WIDTHS:
            raise ValueError(f"groups must be one of {sorted(STAGE_WIDTHS)}, got {groups}")
        unit = 4 * groups
        widths = [max(unit, round(c * width / unit) * unit) for c in STAGE_WIDTHS[groups]]
        self.conv1 = nn.Conv2d(3, stem_channels, 3, 2, 1)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = stem_channels
        stages = []
        for i, (out, repeats) in enumerate(zip(widths, (4, 8, 4), strict=True)):
            units = [_ShuffleUnit(channels, out, groups, 2, group_first=i > 0)]
            units += [_ShuffleUnit(out, out, groups, 1) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            channels = out
        self.stage2, self.stage3, self.stage4 = stages
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def shufflenet(num_classes: int = 1000, groups: int = 3, width: float = 1.0) -> ShuffleNet:
    """ShuffleNet v1, default g = 3, 1x (the Table 1 model, ``N = 960``)."""
    return ShuffleNet(groups, width, num_classes)

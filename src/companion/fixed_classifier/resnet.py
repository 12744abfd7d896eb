"""ResNets used in Table 1 of "Fix your classifier", written without torchvision.

* :class:`CifarResNet` -- He et al. (2016), section 4.2: a 3x3 stem with 16 channels, three
  stages of ``n`` basic blocks with 16/32/64 channels (depth ``6n + 2``), global average pooling
  and a linear classifier on ``N = 64`` features. Shortcuts are identities except at the two
  blocks that change shape. There, option ``"B"`` (default) uses a 1x1 stride-2 projection conv
  plus BN, as in the authors' training code (convNet.pytorch); this is what Table 1's
  855,770 parameters for ResNet-56 / CIFAR-10 count. Option ``"A"`` of the ResNet paper
  (stride-2 subsampling plus zero-padded channels, parameter-free) gives 853,018: the two
  projections hold ``16*32 + 2*32 + 32*64 + 2*64 = 2,752`` parameters.
* :class:`ResNet` -- the ImageNet bottleneck ResNet in torchvision's module layout
  (``conv1, bn1, layer1..layer4, fc``; stride on the 3x3 convolution, projection shortcuts).
  ResNet-50 for 1000 classes has 25,557,032 parameters and ``N = 2048``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CifarResNet", "ResNet", "cifar_resnet", "resnet50"]


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class _BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers; option A (zero-pad) or B (projection) shortcut on shape change."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "B") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.pad = planes - in_planes  # zero channels added by an option-A shortcut
        self.downsample: nn.Module | None = None
        if shortcut == "B" and (stride != 1 or in_planes != planes):
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )
        elif shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}")

    def _shortcut(self, x: Tensor) -> Tensor:
        if self.downsample is not None:
            return self.downsample(x)
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return x

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._shortcut(x))


class CifarResNet(nn.Module):
    """CIFAR ResNet of depth ``6n + 2``. Input ``(B, 3, H, W)`` -> logits ``(B, C)``.

    ``shortcut``: ``"B"`` (projection at shape changes, default) or ``"A"`` (zero padding).
    """

    def __init__(self, depth: int, num_classes: int = 10, shortcut: str = "B") -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers: list[nn.Module] = []
        in_planes = 16
        for stage, planes in enumerate((16, 32, 64)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(_BasicBlock(in_planes, planes, stride, shortcut))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, num_classes)
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class _Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 (x4 channels) bottleneck with projection shortcut."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != out_planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, stride, bias=False),
                nn.BatchNorm2d(out_planes),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet(nn.Module):
    """ImageNet bottleneck ResNet. Input ``(B, 3, 224, 224)`` -> logits ``(B, C)``."""

    def __init__(self, blocks: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_planes = 64
        stages = []
        for i, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
            stage = []
            for j in range(count):
                stride = 2 if i > 0 and j == 0 else 1
                stage.append(_Bottleneck(in_planes, planes, stride))
                in_planes = planes * _Bottleneck.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(in_planes, num_classes)
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def cifar_resnet(depth: int, num_classes: int = 10, shortcut: str = "B") -> CifarResNet:
    """CIFAR ResNet-``depth`` (20, 32, 44, 56, 110, ...), ``N = 64``."""
    return CifarResNet(depth, num_classes, shortcut)


def resnet50(num_classes: int = 1000) -> ResNet:
    """ImageNet ResNet-50 (torchvision layout), ``N = 2048``."""
    return ResNet((3, 4, 6, 3), num_classes)

"""CIFAR augmentation and normalisation on whole batches of tensors.

The standard CIFAR recipe (He et al. 2016, and the authors' training code): pad each image with
4 black pixels on every side, take a random 32 x 32 crop, flip it horizontally with probability
1/2, then normalise each channel by the data set's mean and standard deviation. The padding is
applied to the raw pixels (before normalisation), as torchvision's `RandomCrop(32, padding=4)`
does on PIL images, so the padded border is black, not the mean colour.

Everything here works on a batch at once with one gather (no Python loop over images) and draws
its randomness from a `torch.Generator`, so a run's augmentation is reproducible from its seed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# Per-channel mean and standard deviation of the training images (pixel values in [0, 1]) of
# the canonical archives. Our JPEG copy of CIFAR-10 differs by less than 0.002.
CHANNEL_STATISTICS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def channel_statistics(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images (N, H, W, C), scaled to [0, 1]."""
    pixels = images.reshape(-1, images.shape[-1])
    values = np.arange(256) / 255
    mean, std = [], []
    for channel in range(pixels.shape[1]):  # a histogram: exact, and no float copy of the data
        counts = np.bincount(pixels[:, channel], minlength=256) / len(pixels)
        mean.append(float(counts @ values))
        std.append(float(np.sqrt(max(counts @ values**2 - mean[-1] ** 2, 0.0))))
    return tuple(mean), tuple(std)


def statistics_for(dataset: str, train_images: np.ndarray) -> tuple[tuple[float, ...], ...]:
    """The published statistics of CIFAR-10/100, else those of `train_images` (N, H, W, C)."""
    if dataset in CHANNEL_STATISTICS:
        return CHANNEL_STATISTICS[dataset]
    return channel_statistics(train_images)


def random_crop_flip(images: Tensor, generator: torch.Generator, padding: int = 4) -> Tensor:
    """Random crop of the zero-padded images and random horizontal flip, batch-wise.

    Args:
        images: (B, C, H, W), any dtype (uint8 pixels in the training loop) and memory format.
        generator: source of the crop offsets and flips (on the images' device).
        padding: zero pixels added on each side before cropping.

    Returns:
        (B, C, H, W) tensor of the same dtype, in channels-last memory format. Each image is
        `padded[:, dy:dy + H, dx:dx + W]` with dy, dx uniform in 0..2*padding, mirrored
        left-right with probability 1/2.
    """
    batch, _, height, width = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, batch), generator=generator, device=device)
    flip = torch.rand(batch, generator=generator, device=device) < 0.5
    row_range = torch.arange(height, device=device)
    column_range = torch.arange(width, device=device)
    rows = offsets[0, :, None] + row_range  # (B, H)
    columns = offsets[1, :, None] + torch.where(flip[:, None], column_range.flip(0),
                                                column_range)  # (B, W)
    batch_index = torch.arange(batch, device=device)[:, None, None]
    # Advanced indices around the channel slice put the channel last: (B, H, W, C).
    gathered = padded[batch_index, :, rows[:, :, None], columns[:, None, :]]
    return gathered.permute(0, 3, 1, 2)


def normalize(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """uint8 pixels (B, C, H, W) -> float32 (x / 255 - mean) / std per channel.

    Keeps the memory format of `images` (element-wise operations), so channels-last input gives
    channels-last output for the faster CPU convolutions.
    """
    scale = torch.tensor([1 / (255 * s) for s in std], device=images.device).view(1, -1, 1, 1)
    shift = torch.tensor([m / s for m, s in zip(mean, std)], device=images.device).view(
        1, -1, 1, 1)
    return images.float() * scale - shift


def to_channels_first(images: np.ndarray) -> Tensor:
    """uint8 array (N, H, W, C) -> tensor (N, C, H, W) sharing its memory (channels-last)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)

"""The four DiD nets: generator G, WGAN-GP critic D, Difference Encoder H, Samples Encoder E.

All are DCGAN-style stacks of 4x4 stride-2 convolutions on 64x64 images with ``width x (1, 2,
4, 8)`` channels. D, H and E share one convolutional trunk design and differ in their input and
head; only G may carry a normalisation layer (the critic's gradient penalty is per sample, so
batch statistics in D would break it).

Example:
    >>> g, e = Generator(10, channels=1, width=8), SamplesEncoder(1, 10, width=8)
    >>> e(g(torch.rand(4, 10) * 2 - 1)).shape
    torch.Size([4, 10])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "layer":  # one group = normalise over (C, H, W) of each sample
        return nn.GroupNorm(1, channels)
    raise ValueError(f"unknown normalisation {kind!r}")


class Generator(nn.Module):
    """``c [n, n_latents] -> image [n, channels, 64, 64]``."""

    def __init__(self, n_latents: int, channels: int, width: int, norm: str = "batch", out: str = "sigmoid"):
        super().__init__()
        w = width
        self.fc = nn.Linear(n_latents, 8 * w * 4 * 4)
        layers: list[nn.Module] = [nn.Unflatten(1, (8 * w, 4, 4)), norm_layer(norm, 8 * w), nn.ReLU()]
        for c_in, c_out in ((8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w)):  # 4 -> 8 -> 16 -> 32
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), norm_layer(norm, c_out), nn.ReLU()]
        layers.append(nn.ConvTranspose2d(w, channels, 4, 2, 1))  # 32 -> 64
        self.body = nn.Sequential(*layers)
        self.out = out

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        x = self.body(self.fc(c))
        if self.out == "sigmoid":
            return torch.sigmoid(x)
        if self.out == "tanh":  # rescaled so that every choice yields images in the data's [0, 1] range
            return (torch.tanh(x) + 1) / 2
        return x


class ConvTrunk(nn.Module):
    """``[n, in_channels, 64, 64] -> [n, out_features]``: 64 -> 32 -> 16 -> 8 -> 4, then linear."""

    def __init__(self, in_channels: int, out_features: int, width: int):
        super().__init__()
        w = width
        layers: list[nn.Module] = []
        for c_in, c_out in ((in_channels, w), (w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w)):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(8 * w * 4 * 4, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Critic(ConvTrunk):
    """WGAN critic: ``image -> [n]`` unbounded score."""

    def __init__(self, channels: int, width: int):
        super().__init__(channels, 1, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


class DifferenceEncoder(ConvTrunk):
    """``H(x, x')``: an L2-normalised embedding of what changed between two images."""

    def __init__(self, channels: int, embed_dim: int, width: int, pair: str = "concat", head_norm: bool = True):
        super().__init__(2 * channels if pair == "concat" else channels, embed_dim, width)
        self.pair = pair
        # Batch-standardising the embedding before the L2 normalisation removes its constant part:
        # without it a freshly initialised H maps every pair to about the same direction (the
        # head's bias dominates the tiny image differences of an untrained G), a stationary point
        # where InfoNCE stays at chance.
        self.head_norm = nn.BatchNorm1d(embed_dim, affine=False) if head_norm else nn.Identity()

    def forward(self, x: torch.Tensor, x_moved: torch.Tensor) -> torch.Tensor:
        inp = torch.cat([x, x_moved], dim=1) if self.pair == "concat" else x_moved - x
        return F.normalize(self.head_norm(self.body(inp).float()), dim=1)


class SamplesEncoder(ConvTrunk):
    """``E(x)``: image -> estimate of the code ``c``; on real images, the learned representation."""

    def __init__(self, channels: int, n_latents: int, width: int):
        super().__init__(channels, n_latents, width)

"""Encoder and decoder of the large published study of VAE baselines (Locatello et al. 2019),
shared by β-VAE, β-TCVAE and FactorVAE.

Encoder: four 4x4 stride-2 convolutions (32, 32, 64, 64 channels, ReLU) 64 -> 4 pixels, a dense
layer of 256 units (ReLU), then two linear heads: the mean and the log-variance of a diagonal
Gaussian over ``latent_dim`` latents. Decoder mirrored: dense 256, dense 4*4*64, four 4x4
stride-2 transposed convolutions (64, 32, 32, C channels) back to 64 pixels; the last layer's
output are Bernoulli logits. Weights are Glorot-uniform, biases zero (TensorFlow's defaults, as
in the original study).

Example:
    >>> enc, dec = Encoder(num_channels=1), Decoder(num_channels=1)
    >>> mean, logvar = enc(torch.rand(8, 1, 64, 64))   # [8, 10] each
    >>> logits = dec(mean)                              # [8, 1, 64, 64]
"""
from __future__ import annotations

import torch
from torch import nn


def glorot_init(module: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every linear / (transposed) conv layer."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return module


class Encoder(nn.Module):
    """Image [n, C, 64, 64] in [0, 1] -> (mean, logvar), each [n, latent_dim]."""

    def __init__(self, num_channels: int = 1, latent_dim: int = 10):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(num_channels, 32, 4, stride=2, padding=1), nn.ReLU(),  # 32x32
            nn.Conv2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),  # 16x16
            nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(),  # 8x8
            nn.Conv2d(64, 64, 4, stride=2, padding=1), nn.ReLU(),  # 4x4
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 256), nn.ReLU(),
        )
        self.mean = nn.Linear(256, latent_dim)
        self.logvar = nn.Linear(256, latent_dim)
        glorot_init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.mean(h), self.logvar(h)


class Decoder(nn.Module):
    """Latents [n, latent_dim] -> Bernoulli logits [n, C, 64, 64] (``torch.sigmoid`` gives images)."""

    def __init__(self, num_channels: int = 1, latent_dim: int = 10):
        super().__init__()
        self.dense = nn.Sequential(
            nn.Linear(latent_dim, 256), nn.ReLU(),
            nn.Linear(256, 64 * 4 * 4), nn.ReLU(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1), nn.ReLU(),  # 8x8
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),  # 16x16
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),  # 32x32
            nn.ConvTranspose2d(32, num_channels, 4, stride=2, padding=1),  # 64x64 logits
        )
        glorot_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.dense(z).view(-1, 64, 4, 4))

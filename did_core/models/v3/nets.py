"""V3's per-fragment nets, sized for a CPU (this project's choice; the authors use 5x5 ResNets
with 512-d codes): a 4x4 stride-2 conv stack 32 -> 16 -> 8 -> 4 (width x 1, 2, 4 channels,
ReLU), a dense layer of ``hidden`` units, then the codes ``[z_c, z_s]``; the decoder mirrors it
with transposed convs and a sigmoid, from ``[q(z_c), z_s]``.

Example:
    >>> enc, dec = FragmentEncoder(3, 16, 8, width=16), FragmentDecoder(3, 16, 8, width=16)
    >>> zc, zs = enc(torch.rand(5, 3, 32, 32))
    >>> dec(zc, zs).shape
    torch.Size([5, 3, 32, 32])
"""
from __future__ import annotations

import torch
from torch import nn

IMAGE_SIZE = 32


class FragmentEncoder(nn.Module):
    def __init__(self, channels: int, content_dim: int, style_dim: int, width: int = 32, hidden: int = 256):
        super().__init__()
        w = width
        self.content_dim = content_dim
        self.net = nn.Sequential(
            nn.Conv2d(channels, w, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(4 * w * 16, hidden), nn.ReLU(),
            nn.Linear(hidden, content_dim + style_dim),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images [N, C, 32, 32] -> (z_c [N, content_dim], z_s [N, style_dim])."""
        z = self.net(x)
        return z[:, :self.content_dim], z[:, self.content_dim:]


class FragmentDecoder(nn.Module):
    def __init__(self, channels: int, content_dim: int, style_dim: int, width: int = 32, hidden: int = 256):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Linear(content_dim + style_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, 4 * w * 16), nn.ReLU(), nn.Unflatten(1, (4 * w, 4, 4)),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(w, channels, 4, 2, 1), nn.Sigmoid(),
        )

    def forward(self, zc: torch.Tensor, zs: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([zc, zs], dim=1))

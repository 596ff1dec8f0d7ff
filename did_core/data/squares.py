"""Squares: one white square on black, 32x32, 1 channel, pixel values 0 or 1; 1,024 images.

A small dataset on which DiD's mechanism can be tested on a CPU in minutes: three factors,
each visibly and independently changing the image.

Factors: size 4 (side 4, 6, 8, 10 pixels), posX 16, posY 16 (the square's centre, evenly spaced
so that the largest square stays inside the frame). Procedural only: there is no file.

Example:
    >>> ds = Squares()
    >>> x = ds.images(np.array([[3, 0, 15]]))   # the largest square, left edge, bottom: [1, 1, 32, 32]
    >>> int(x.sum())
    100
"""
from __future__ import annotations

import numpy as np
import torch

from .base import GroundTruthDataset

SIDES = (4, 6, 8, 10)
IMAGE_SIZE = 32
N_POSITIONS = 16


class Squares(GroundTruthDataset):
    name = "squares"
    source = "procedural"
    binary = True
    num_channels = 1
    image_size = IMAGE_SIZE
    factor_names = ("size", "posX", "posY")
    factor_sizes = (len(SIDES), N_POSITIONS, N_POSITIONS)
    # size in pixels; positions as fractions of the range of centres, like dSprites' posX / posY
    factor_values = (np.array(SIDES, dtype=float), np.linspace(0.0, 1.0, N_POSITIONS),
                     np.linspace(0.0, 1.0, N_POSITIONS))

    def __init__(self, device: str | torch.device = "cpu"):
        super().__init__(device)
        half = max(SIDES) / 2
        # centres (in pixel units, the frame spans [0, 32]) from half to 32 - half
        self._centres = torch.linspace(half, IMAGE_SIZE - half, N_POSITIONS, device=self.device)
        self._sides = torch.tensor(SIDES, dtype=torch.float32, device=self.device)
        self._grid = torch.arange(IMAGE_SIZE, device=self.device, dtype=torch.float32) + 0.5  # pixel centres

    def images(self, factors: np.ndarray | torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(self.check_factors(factors), device=self.device)
        side = self._sides[y[:, 0]]
        # left/top edges on whole pixels, so that every square has exactly side x side pixels
        left = torch.round(self._centres[y[:, 1]] - side / 2)
        top = torch.round(self._centres[y[:, 2]] - side / 2)
        g = self._grid
        inside_x = (g[None] > left[:, None]) & (g[None] < (left + side)[:, None])  # [n, W]
        inside_y = (g[None] > top[:, None]) & (g[None] < (top + side)[:, None])  # [n, H]
        img = inside_y[:, :, None] & inside_x[:, None, :]
        return img.to(torch.float32).unsqueeze(1)

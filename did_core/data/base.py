"""The interface every ground-truth dataset offers to training and to the metrics.

A dataset is a grid of factors of variation (``factor_sizes``); every combination of factor
*indices* has exactly one image. Subclasses only say how to turn indices into images.

Example:
    >>> ds = get_dataset("dsprites")            # procedural source, no file needed
    >>> y = ds.sample_factors(8, np.random.default_rng(0))
    >>> x = ds.images(y)                         # torch.float32 [8, 1, 64, 64] in [0, 1]
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

import numpy as np
import torch


class DatasetError(ValueError):
    """A dataset file is missing, truncated, corrupt or of the wrong shape; the message names it."""


class GroundTruthDataset(ABC):
    name: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    num_channels: int
    image_size: int = 64

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor-index rows drawn uniformly and independently: int64 [n, K]."""
        return np.stack([rng.integers(0, s, size=n) for s in self.factor_sizes], axis=1).astype(np.int64)

    @abstractmethod
    def images(self, factors: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Images for factor indices [n, K]: float32 [n, C, 64, 64] in [0, 1] on ``self.device``."""

    def sample_fixed_factor(self, factor: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """``batch_size`` factor rows that share one random value of ``factor`` (FactorVAE/BetaVAE scores)."""
        y = self.sample_factors(batch_size, rng)
        y[:, factor] = rng.integers(0, self.factor_sizes[factor])
        return y

    def sample_pairs_with_fixed_factor(
        self, factor: int, batch_size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Two batches of factor rows that agree on ``factor`` pairwise and differ at random elsewhere."""
        y1 = self.sample_factors(batch_size, rng)
        y2 = self.sample_factors(batch_size, rng)
        y2[:, factor] = y1[:, factor]
        return y1, y2

    def batches(self, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        """Endless stream of ``(images, factors)`` training batches, reproducible from ``seed``."""
        rng = np.random.default_rng(seed)
        while True:
            y = self.sample_factors(batch_size, rng)
            yield self.images(y), y

    def flat_index(self, factors: np.ndarray) -> np.ndarray:
        """Row index in the original file layout (mixed radix, last factor fastest)."""
        return np.ravel_multi_index(tuple(np.asarray(factors).T), self.factor_sizes)

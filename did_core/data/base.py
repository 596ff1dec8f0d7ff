"""The interface every ground-truth dataset offers to training and to the metrics.

A dataset is a grid of factors of variation (``factor_sizes``); every combination of factor
*indices* has exactly one image. Subclasses only say how to turn indices into images.
``factor_values[k][i]`` is the physical value of index ``i`` of factor ``k`` (the value the
original file stores, e.g. a scale of 0.75 or an angle in radians).

Example:
    >>> ds = get_dataset("dsprites")            # procedural source, no file needed
    >>> y = ds.sample_factors(8, np.random.default_rng(0))
    >>> x = ds.images(y)                         # torch.float32 [8, 1, 64, 64] in [0, 1]
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator

import numpy as np
import torch


class DatasetError(ValueError):
    """A dataset file is missing, truncated, corrupt or of the wrong shape; the message names it."""


class GroundTruthDataset(ABC):
    name: str
    source: str  # "procedural" or "file"
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    factor_values: tuple[np.ndarray, ...]
    num_channels: int
    image_size: int = 64
    binary: bool = False  # every pixel is 0 or 1 (dSprites, Squares): G's grey levels carry nothing real
    sequence_length: int = 0  # fragments per sample for a sequence dataset (digit_sequences); 0 = images only

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)

    @classmethod
    def factors_of(cls, path: str | Path | None = None) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """``(factor_names, factor_sizes)`` without reading images: the class's own, or those of a
        dataset built on the CPU when an instance sets them (a file source reads only its header)."""
        if "factor_sizes" not in dir(cls):
            ds = cls(device="cpu") if cls.source == "procedural" else cls(path=path, device="cpu")
            return tuple(ds.factor_names), tuple(ds.factor_sizes)
        return tuple(cls.factor_names), tuple(cls.factor_sizes)

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor-index rows drawn uniformly and independently: int64 [n, K]."""
        return np.stack([rng.integers(0, s, size=n) for s in self.factor_sizes], axis=1).astype(np.int64)

    @abstractmethod
    def images(self, factors: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Images for factor indices [n, K]: float32 [n, C, S, S] (S = ``image_size``) in [0, 1] on ``self.device``."""

    def sample_sequences(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` samples of ``sequence_length`` fragments each: factor rows int64 [n, L, K]. Only a
        sequence dataset has them (``sequence_length > 0``)."""
        raise ValueError(f"{self.name}: not a sequence dataset (it has no samples made of fragments)")

    def scoring_view(self, seed: int = 0) -> "GroundTruthDataset":
        """The dataset the disentanglement metrics score a representation on: the dataset itself,
        except for a sequence dataset (its held-out fragments against the factors that matter)."""
        return self

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

    def contains(self, factors: np.ndarray | torch.Tensor) -> np.ndarray:
        """Which rows of ``factors`` have an image (always all of them, except for a partial file)."""
        return np.ones(len(self.check_factors(factors)), dtype=bool)

    def check_factors(self, factors: np.ndarray | torch.Tensor) -> np.ndarray:
        """``factors`` as int64 [n, K] numpy, or a ValueError saying which column is out of range."""
        if isinstance(factors, torch.Tensor):
            factors = factors.detach().cpu().numpy()
        y = np.asarray(factors)
        if y.ndim != 2 or y.shape[1] != self.num_factors:
            raise ValueError(f"{self.name}: factors must have shape [n, {self.num_factors}], got {list(y.shape)}")
        if y.size and not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{self.name}: factors must be integer indices, got dtype {y.dtype}")
        y = np.ascontiguousarray(y, dtype=np.int64)
        for k, (name, size) in enumerate(zip(self.factor_names, self.factor_sizes)):
            bad = (y[:, k] < 0) | (y[:, k] >= size)
            if bad.any():
                raise ValueError(f"{self.name}: factor {name!r} index {y[bad, k][0]} is outside [0, {size})")
        return y

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}={s}" for n, s in zip(self.factor_names, self.factor_sizes))
        return f"{type(self).__name__}({sizes}, device={self.device})"

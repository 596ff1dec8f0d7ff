"""Modularity (Ridgeway & Mozer 2018) from the same discrete mutual-information matrix as MIG.

Per code j: ``1 - (sum_k m[j,k]^2 - max_k m[j,k]^2) / (max_k m[j,k]^2 * (K - 1))``, 0 for a code
that carries no information; the score is the mean over codes.

Example:
    >>> modularity(codes, factors)
    0.93...
"""
from __future__ import annotations

import numpy as np

from .utils import check_pair, discrete_mutual_info, discretize


def modularity_from_mi(mi: np.ndarray) -> float:
    """Modularity from the [d, K] mutual-information matrix."""
    sq = np.square(mi)
    top = sq.max(axis=1)
    num_factors = sq.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_code = 1.0 - (sq.sum(axis=1) - top) / (top * (num_factors - 1.0))
    per_code[top == 0.0] = 0.0
    return float(np.mean(per_code))


def modularity(codes, factors, num_bins: int = 20) -> float:
    """Modularity of codes [N, d] against factor indices [N, K]."""
    z, y = check_pair(codes, factors)
    return modularity_from_mi(discrete_mutual_info(discretize(z, num_bins), y))

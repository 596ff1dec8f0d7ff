"""Mutual Information Gap (Chen et al. 2018), discrete estimator as in disentanglement_lib.

Each code dimension is cut into equal-width bins; ``m[j, k]`` is the discrete mutual information
between code j and factor k. MIG = mean over factors of the gap between the two most informative
codes, divided by the factor's entropy.

Example:
    >>> mig(codes, factors)        # codes [N, d] float, factors [N, K] int
    0.41...
"""
from __future__ import annotations

import numpy as np

from .utils import check_pair, discrete_entropy, discrete_mutual_info, discretize


def mig_from_mi(mi: np.ndarray, entropies: np.ndarray) -> float:
    """MIG from the [d, K] mutual-information matrix and the [K] factor entropies."""
    top = np.sort(mi, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / entropies))


def mig(codes, factors, num_bins: int = 20) -> float:
    """MIG of codes [N, d] against factor indices [N, K]."""
    z, y = check_pair(codes, factors)
    mi = discrete_mutual_info(discretize(z, num_bins), y)
    return mig_from_mi(mi, discrete_entropy(y))

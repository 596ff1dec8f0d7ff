"""Total correlation of a Gaussian fitted to the codes (for the TC-vs-MIG figure).

``TC = 0.5 * (sum_j log Cov[j, j] - log det Cov)`` with the unbiased sample covariance. A code
dimension with zero variance is independent of the others and is left out (the formula would be
``inf - inf`` otherwise).

Example:
    >>> gaussian_tc(codes)      # 0 for independent codes, grows with correlation
    0.02...
"""
from __future__ import annotations

import numpy as np

from .utils import check_codes


def gaussian_tc_from_cov(cov: np.ndarray) -> float:
    """Total correlation (nats) of a zero-mean Gaussian with covariance ``cov``."""
    keep = np.diag(cov) > 0
    cov = cov[np.ix_(keep, keep)]
    if cov.shape[0] < 2:
        return 0.0
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return float("inf")  # perfectly dependent codes
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - logdet))


def gaussian_tc(codes) -> float:
    """Gaussian total correlation of codes [N, d]."""
    z = check_codes(codes)
    return gaussian_tc_from_cov(np.cov(z, rowvar=False))

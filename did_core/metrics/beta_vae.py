"""BetaVAE score (Higgins et al. 2017) with disentanglement_lib's constants.

Each point fixes one random factor for 64 pairs of observations (the pair agrees on that factor,
differs at random elsewhere); its feature is the mean absolute code difference over the pairs. A
logistic regression (the reference's: one-vs-rest liblinear, C=1) learns to predict the fixed
factor from 10,000 points; the score is its accuracy on 5,000 evaluation points.

Example:
    >>> beta_vae_score(dataset, codes_of, "dlib", np.random.default_rng(0))
    0.97...
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .explicitness import logistic_regression
from .protocols import get_protocol

POINTS_PER_CHUNK = 512


def _points(dataset, codes_of, num_points, batch_size, rng) -> tuple[np.ndarray, np.ndarray]:
    """(features [num_points, d], fixed factor [num_points])."""
    labels = np.empty(num_points, dtype=np.int64)
    features = []
    for start in range(0, num_points, POINTS_PER_CHUNK):
        n = min(POINTS_PER_CHUNK, num_points - start)
        first, second = [], []
        for i in range(n):
            labels[start + i] = rng.integers(dataset.num_factors)
            y1, y2 = dataset.sample_pairs_with_fixed_factor(int(labels[start + i]), batch_size, rng)
            first.append(y1)
            second.append(y2)
        codes = codes_of(np.concatenate(first + second)).reshape(2, n, batch_size, -1)
        features.append(np.abs(codes[0] - codes[1]).mean(axis=1))
    return np.concatenate(features), labels


def beta_vae_score(dataset, codes_of: Callable[[np.ndarray], np.ndarray], protocol="dlib", rng=None) -> float:
    """BetaVAE score: evaluation accuracy of the fixed-factor classifier."""
    protocol = get_protocol(protocol)
    rng = rng if rng is not None else np.random.default_rng(0)
    bs = protocol.beta_vae_batch_size
    x_train, y_train = _points(dataset, codes_of, protocol.beta_vae_num_train, bs, rng)
    x_eval, y_eval = _points(dataset, codes_of, protocol.beta_vae_num_eval, bs, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = logistic_regression(protocol).fit(x_train, y_train)
    return float(np.mean(model.predict(x_eval) == y_eval))

"""Pieces shared by the metrics: input checks, discretisation, discrete mutual information.

Arrays are row-major: ``codes`` [N, d] floats, ``factors`` [N, K] integer indices.

Example:
    >>> z = discretize(codes, num_bins=20)          # int64 [N, d], bins 1..20
    >>> m = discrete_mutual_info(z, factors)         # [d, K] in nats
"""
from __future__ import annotations

import numpy as np

MAX_CODE_DIMS = 4096  # Gaussian TC's covariance is d x d: 128 MiB at the limit (10^5 columns would need 75 GiB)
MAX_ABS_CODE = 1e30  # beyond, DCI's float32 trees overflow to inf and standardising squares overflow float64


class MetricInputError(ValueError):
    """Codes or factors cannot be scored; the message names the array and what is wrong."""


def check_codes(codes, name: str = "codes") -> np.ndarray:
    """``codes`` as a float64 [N, d] array with 2 <= d <= :data:`MAX_CODE_DIMS`, N >= 2 and only
    finite values of magnitude at most :data:`MAX_ABS_CODE`."""
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise MetricInputError(f"{name}: expected a 2-D array [N, d], got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise MetricInputError(f"{name}: expected numbers, got dtype {arr.dtype}")
    n, d = arr.shape
    if d > MAX_CODE_DIMS:  # refused before anything of size d x d (or a float64 copy) is allocated
        raise MetricInputError(f"{name}: {d:,} code dimensions; at most {MAX_CODE_DIMS:,} are scored")
    arr = arr.astype(np.float64)
    if d < 2:
        raise MetricInputError(f"{name}: need at least two code dimensions, got {d}")
    if n < 2:
        raise MetricInputError(f"{name}: need at least two rows, got {n}")
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise MetricInputError(
            f"{name}: {int(bad.sum())} values are NaN or infinite (first at row {row}, column {col})"
        )
    big = np.abs(arr) > MAX_ABS_CODE
    if big.any():
        row, col = np.argwhere(big)[0]
        raise MetricInputError(f"{name}: {int(big.sum())} values beyond ±{MAX_ABS_CODE:g}, which cannot be scored "
                               f"without overflow (first at row {row}, column {col}: {arr[row, col]:g}); rescale the codes")
    return arr


def check_factors(factors, name: str = "factors", require_variation: bool = True) -> np.ndarray:
    """``factors`` as an int64 [N, K] array of non-negative integer indices.

    With ``require_variation`` every column must take at least two values (a constant factor has
    zero entropy: MIG would divide by zero and no classifier can be fitted).
    """
    arr = np.asarray(factors)
    if arr.ndim != 2:
        raise MetricInputError(f"{name}: expected a 2-D array [N, K], got shape {arr.shape}")
    if arr.shape[1] < 1 or arr.shape[0] < 2:
        raise MetricInputError(f"{name}: need at least two rows and one factor, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.bool_) or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise MetricInputError(f"{name}: expected integer factor indices, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise MetricInputError(f"{name}: contains NaN or infinite values; expected integer indices")
        fractional = arr != np.round(arr)
        if fractional.any():
            row, col = np.argwhere(fractional)[0]
            raise MetricInputError(
                f"{name}: expected integer factor indices, row {row} column {col} is {arr[row, col]!r}"
            )
    arr = arr.astype(np.int64)
    if (arr < 0).any():
        row, col = np.argwhere(arr < 0)[0]
        raise MetricInputError(
            f"{name}: factor indices must be >= 0, row {row} column {col} is {arr[row, col]}"
        )
    if require_variation:
        for k in range(arr.shape[1]):
            if (arr[:, k] == arr[0, k]).all():
                raise MetricInputError(f"{name}: column {k} is constant (every row is {arr[0, k]})")
    return arr


def check_pair(codes, factors, codes_name="codes", factors_name="factors", require_variation=True):
    """Check codes and factors together (same number of rows)."""
    z = check_codes(codes, codes_name)
    y = check_factors(factors, factors_name, require_variation)
    if z.shape[0] != y.shape[0]:
        raise MetricInputError(
            f"{codes_name} has {z.shape[0]} rows but {factors_name} has {y.shape[0]}; they must match"
        )
    return z, y


def split_rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The documented train/test split used when no test arrays are given.

    Rows are shuffled with ``numpy.random.default_rng(seed).permutation(n)``; the first
    ``2 * n // 3`` shuffled rows are the training set, the rest the test set (the 2:1 ratio of the
    protocol's 10,000 / 5,000).
    """
    order = np.random.default_rng(seed).permutation(n)
    cut = 2 * n // 3
    return np.sort(order[:cut]), np.sort(order[cut:])


def discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Each column into ``num_bins`` equal-width bins between its min and max: int64 [N, d], 1..num_bins.

    Same as the reference: ``np.digitize(z, np.histogram(z, num_bins)[1][:-1])`` per column.
    """
    out = np.empty(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, j], bins=num_bins)
        out[:, j] = np.digitize(codes[:, j], edges[:-1])
    return out


def _labels(column: np.ndarray) -> tuple[np.ndarray, int]:
    values, inverse = np.unique(column, return_inverse=True)
    return inverse.ravel(), len(values)


def _mutual_info(a: np.ndarray, na: int, b: np.ndarray, nb: int) -> float:
    """I(a; b) in nats for two label arrays 0..na-1 and 0..nb-1."""
    n = a.shape[0]
    joint = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb).astype(np.float64)
    pa = joint.sum(axis=1, keepdims=True)
    pb = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    terms = joint[nz] / n * np.log(joint[nz] * n / (pa @ pb)[nz])
    return max(float(terms.sum()), 0.0)


def discrete_mutual_info(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Matrix ``m[j, k]`` = mutual information (nats) between code column j and factor column k."""
    codes = [_labels(discrete_codes[:, j]) for j in range(discrete_codes.shape[1])]
    facts = [_labels(factors[:, k]) for k in range(factors.shape[1])]
    m = np.zeros((len(codes), len(facts)))
    for j, (a, na) in enumerate(codes):
        for k, (b, nb) in enumerate(facts):
            m[j, k] = _mutual_info(a, na, b, nb)
    return m


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each factor column on the sample: [K]."""
    h = np.zeros(factors.shape[1])
    for k in range(factors.shape[1]):
        _, counts = np.unique(factors[:, k], return_counts=True)
        p = counts / counts.sum()
        h[k] = -(p * np.log(p)).sum()
    return h


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays scaled by the train mean and (population) std; a constant column keeps scale 1."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def check_train_test(codes, factors, codes_test, factors_test):
    """Check a train and a test set together: same code width and number of factors."""
    z, y = check_pair(codes, factors)
    zt, yt = check_pair(codes_test, factors_test, "codes_test", "factors_test")
    if zt.shape[1] != z.shape[1]:
        raise MetricInputError(f"codes_test has {zt.shape[1]} columns but codes has {z.shape[1]}; they must match")
    if yt.shape[1] != y.shape[1]:
        raise MetricInputError(
            f"factors_test has {yt.shape[1]} columns but factors has {y.shape[1]}; they must match"
        )
    return z, y, zt, yt

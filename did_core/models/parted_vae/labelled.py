"""The labelled set of a semi-supervised run, drawn from the dataset's own factor grid (nothing is
downloaded): ``n`` distinct factor rows, stratified as in the authors' dSprites split.

Strata: every value of each class factor and of each factor with at most ``FULL_STRATA_UP_TO``
values, the lower and upper half of every larger factor (dSprites: shape 3 x scale 6 x orientation,
posX, posY halves = 144 strata). The ``n`` rows are spread over the strata as evenly as possible
(the remainder to strata chosen at random), each row uniform within its stratum, without repeats.
The draw depends only on the seed, so a resumed run has the same set.

Example:
    >>> ds = get_dataset("dsprites")
    >>> y = labelled_factors(ds, 300, class_columns=[0], seed=0)    # int64 [300, 5]
    >>> np.bincount(y[:, 0])                                       # 100 of each shape
    array([100, 100, 100])
"""
from __future__ import annotations

import numpy as np

FULL_STRATA_UP_TO = 6  # a factor with more values is split into halves


def strata_bounds(factor_sizes: tuple[int, ...], class_columns: list[int]) -> list[list[tuple[int, int]]]:
    """Per factor, its strata as ``[low, high)`` index ranges."""
    bounds = []
    for k, size in enumerate(factor_sizes):
        if k in class_columns or size <= FULL_STRATA_UP_TO:
            bounds.append([(v, v + 1) for v in range(size)])
        else:
            bounds.append([(0, size // 2), (size // 2, size)])
    return bounds


def labelled_factors(dataset, n: int, class_columns: list[int], seed: int) -> np.ndarray:
    """``n`` distinct stratified factor rows of ``dataset`` (int64 ``[n, K]``), from ``seed``."""
    rng = np.random.default_rng([seed, 0x1AB])
    sizes = tuple(dataset.factor_sizes)
    if n == 0:
        return np.zeros((0, len(sizes)), dtype=np.int64)
    bounds = strata_bounds(sizes, class_columns)
    counts = [len(b) for b in bounds]
    n_strata = int(np.prod(counts))
    per = np.full(n_strata, n // n_strata, dtype=np.int64)
    per[rng.choice(n_strata, size=n % n_strata, replace=False)] += 1
    stratum = np.repeat(np.arange(n_strata), per)  # [n]: the stratum of each row
    which = np.stack(np.unravel_index(stratum, counts), axis=1)  # [n, K]: each factor's stratum
    low = np.stack([np.array([b[0] for b in bounds[k]])[which[:, k]] for k in range(len(sizes))], axis=1)
    high = np.stack([np.array([b[1] for b in bounds[k]])[which[:, k]] for k in range(len(sizes))], axis=1)
    rows = low + (rng.random(low.shape) * (high - low)).astype(np.int64)
    # redraw repeats (rare) within their strata until every row is distinct
    for _ in range(100):
        _, first = np.unique(dataset.flat_index(rows), return_index=True)
        repeats = np.setdiff1d(np.arange(n), first)
        if repeats.size == 0:
            break
        rows[repeats] = low[repeats] + (rng.random((repeats.size, len(sizes))) * (high - low)[repeats]).astype(np.int64)
    else:
        raise ValueError(f"could not draw {n} distinct labelled images from {dataset.name!r}")
    return rows[rng.permutation(n)]

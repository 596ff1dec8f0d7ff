"""Unsupervised Disentanglement Ranking (Duan et al., ICLR 2020), as disentanglement_lib's
``compute_udr_sklearn`` computes it once every model has encoded the same observations.

UDR needs no labels: it scores a model by how much its representation agrees with those of the
other models of its hyperparameter setting (its other seeds). For ``m`` models of ``d`` dimensions
each, on the same ``N`` observations (the reference: 1,000, ``udr.gin``):

1. each representation is standardised (mean 0, population std 1, a constant column left at 0),
   and its dimensions whose mean KL to the prior is <= 0.01 are zeroed (the reference zeroes at
   0.01 whatever ``kl_threshold`` says);
2. for every ordered pair ``(i, j)``, ``i != j``, a [d, d] matrix ``R`` relates dimension ``a`` of
   model ``i`` (rows) to dimension ``b`` of model ``j`` (columns): ``lasso``, the absolute
   coefficients of ``Lasso(alpha=0.1)`` fitting rep_j from rep_i; ``spearman``, the absolute
   Spearman rank correlation of every pair of dimensions (undefined, NaN, for a zeroed one);
3. the KL mask keeps the rows of model ``i``'s and the columns of model ``j``'s dimensions whose
   mean KL is > ``kl_threshold`` (0.01);
4. the pair's score is the relative strength of ``R``: per column ``max^2 / sum``, NaN as 0,
   averaged over columns; the same over rows; the mean of the two;
5. a model's score is the median of the pair scores ``(k, i)`` of its column, over the other models.

Models without a KL term (DiD, V3: no posterior, a deterministic encoder) have every dimension
alive: pass ``kl=None`` (or leave ``kl`` out of the file).

One departure: where a model has no dimension left after the mask the reference raises (a max
over an empty matrix); here the pair scores 0.

The CLI reads ``codes`` [models, points, dims] and optional ``kl`` [models, dims]:

    python -m did_core.metrics.udr reps.npz --correlation spearman --json
    {"model_scores": [0.91, 0.88, 0.90], "pairwise": [[0.0, 0.92, ...], ...]}

Example:
    >>> result = udr(codes, kl, correlation="lasso")      # codes [m, N, d], kl [m, d] or None
    >>> result.model_scores, result.pairwise[0, 1]
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import Lasso
from sklearn.preprocessing import StandardScaler

from ..npz import read_npz
from .utils import MetricInputError

CORRELATIONS = ("lasso", "spearman")
ZEROED_KL = 0.01  # the reference zeroes dimensions at or below this mean KL before fitting
LASSO = dict(alpha=0.1, fit_intercept=True, max_iter=1000, tol=1e-4)  # scikit-learn's defaults, pinned


@dataclass(frozen=True)
class UDR:
    """``pairwise[i, j]`` the score of the ordered pair (rep_i explains rep_j), 0 on the diagonal;
    ``model_scores[i]`` the median of ``pairwise[k, i]`` over ``k != i``."""

    pairwise: np.ndarray  # [m, m]
    model_scores: np.ndarray  # [m]

    def to_dict(self) -> dict[str, list]:
        return {"model_scores": self.model_scores.tolist(), "pairwise": self.pairwise.tolist()}


def check_representations(codes, kl=None, codes_name: str = "codes", kl_name: str = "kl"):
    """``codes`` as float64 [m, N, d] (m >= 2, N >= 2, d >= 1, finite) and ``kl`` as float64 [m, d]
    or None; a :class:`MetricInputError` naming the array otherwise."""
    z = _numeric(codes, codes_name)
    if z.ndim != 3:
        raise MetricInputError(f"{codes_name}: expected [models, points, dims], got shape {z.shape} "
                               "(every model needs the same number of dimensions)")
    m, n, d = z.shape
    if m < 2:
        raise MetricInputError(f"{codes_name}: UDR compares models with each other; got {m} model(s), need >= 2")
    if n < 2 or d < 1:
        raise MetricInputError(f"{codes_name}: need >= 2 points and >= 1 dimension per model, got shape {z.shape}")
    _finite(z, codes_name)
    if kl is None:
        return z, None
    k = _numeric(kl, kl_name)
    if k.shape != (m, d):
        raise MetricInputError(f"{kl_name}: expected [models, dims] = [{m}, {d}] to match {codes_name}, "
                               f"got shape {k.shape}")
    _finite(k, kl_name)
    return z, k


def _numeric(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise MetricInputError(f"{name}: expected numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise MetricInputError(f"{name}: {int(bad.sum())} values are NaN or infinite (first at index "
                               f"{tuple(int(i) for i in np.argwhere(bad)[0])})")


def prepare(codes: np.ndarray, kl: np.ndarray | None) -> np.ndarray:
    """Step 1: each model's codes [N, d] standardised and its dimensions with KL <= 0.01 zeroed."""
    reps = np.stack([StandardScaler().fit_transform(z) for z in codes])
    if kl is not None:
        reps = reps * (kl > ZEROED_KL)[:, None, :]
    return reps


def lasso_matrix(rep_i: np.ndarray, rep_j: np.ndarray, alpha: float = 0.1) -> np.ndarray:
    """|coefficients| of one Lasso fitting every dimension of ``rep_j`` from ``rep_i``: [d_i, d_j]."""
    fit = Lasso(**{**LASSO, "alpha": alpha}).fit(rep_i, rep_j)
    return np.abs(np.asarray(fit.coef_).reshape(rep_j.shape[1], rep_i.shape[1])).T


def spearman_matrix(ranks_i: np.ndarray, ranks_j: np.ndarray) -> np.ndarray:
    """|Spearman's rho| of every dimension of one model against every one of another, from their
    rank matrices (``rankdata(rep, axis=0)``, computed once per model): [d_i, d_j]; NaN where a
    dimension is constant."""
    a = ranks_i - ranks_i.mean(axis=0)
    b = ranks_j - ranks_j.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (a.T @ b) / np.outer(np.sqrt((a * a).sum(axis=0)), np.sqrt((b * b).sum(axis=0)))
    return np.abs(np.clip(rho, -1.0, 1.0))


def relative_strength(corr: np.ndarray) -> float:
    """Step 4: the mean over columns of ``max^2 / sum`` (NaN as 0), the same over rows, averaged.
    A column holding a NaN scores 0. An empty matrix scores 0 (the reference raises).

    Example:
        >>> relative_strength(np.eye(3)), round(relative_strength(np.ones((3, 3))), 4)
        (1.0, 0.3333)
    """
    if corr.size == 0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = np.nan_to_num(corr.max(axis=0) ** 2 / corr.sum(axis=0))
        rows = np.nan_to_num(corr.max(axis=1) ** 2 / corr.sum(axis=1))
    return float((columns.mean() + rows.mean()) / 2)


def udr(codes, kl=None, correlation: str = "lasso", kl_threshold: float = 0.01, alpha: float = 0.1) -> UDR:
    """UDR of ``m`` models' codes [m, N, d] of the same N observations (mean KL per dimension ``kl``
    [m, d], or None: every dimension alive). See the module docstring for the steps."""
    if correlation not in CORRELATIONS:
        raise MetricInputError(f"correlation: must be one of {', '.join(CORRELATIONS)}, got {correlation!r}")
    z, kl = check_representations(codes, kl)
    reps = prepare(z, kl)
    alive = np.ones((z.shape[0], z.shape[2]), dtype=bool) if kl is None else kl > kl_threshold  # [m, d]
    ranks = [rankdata(r, axis=0) for r in reps] if correlation == "spearman" else None
    m = len(reps)
    pairwise = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            corr = lasso_matrix(reps[i], reps[j], alpha) if ranks is None else spearman_matrix(ranks[i], ranks[j])
            pairwise[i, j] = relative_strength(corr[alive[i]][:, alive[j]])
    scores = np.array([np.median(np.delete(pairwise[:, i], i)) for i in range(m)])
    return UDR(pairwise=pairwise, model_scores=scores)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m did_core.metrics.udr", description=__doc__.split("\n\n")[0])
    ap.add_argument("file", metavar="FILE.npz", help="codes [models, points, dims], optional kl [models, dims]")
    ap.add_argument("--correlation", choices=CORRELATIONS, default="lasso")
    ap.add_argument("--kl-threshold", type=float, default=0.01, help="dimensions with mean KL <= this are masked")
    ap.add_argument("--json", action="store_true", help='print {"model_scores": [...], "pairwise": [[...]]}')
    args = ap.parse_args(argv)
    try:
        arrays = read_npz(Path(args.file), MetricInputError)
        if "codes" not in arrays:
            raise MetricInputError(f"{args.file}: missing array 'codes' (found: {', '.join(sorted(arrays)) or 'none'})")
        result = udr(arrays["codes"], arrays.get("kl"), args.correlation, args.kl_threshold)
    except MetricInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False))
    else:
        for i, score in enumerate(result.model_scores):
            print(f"model {i:<4d} udr_{args.correlation} {score:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

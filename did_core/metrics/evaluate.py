"""The evaluation driver: encode once, build each shared matrix once, derive every score.

- the discrete mutual-information matrix [d, K] serves MIG and modularity;
- the per-factor classifiers (DCI importances + accuracies), the SAP score-matrix columns and the
  explicitness fits are independent jobs, run in parallel worker processes (joblib/loky), longest
  first; each job has a fixed ``random_state``, so values do not depend on ``n_jobs``.

Example:
    >>> from did_core.data import get_dataset
    >>> scores = evaluate(get_dataset("dsprites"), model.encode_mean, protocol="fast")
    >>> scores.protocol, scores["mig"], scores.columns()   # {'fast/mig': ..., ...}
"""
from __future__ import annotations

import os
from typing import Callable, Iterable

import numpy as np
from joblib import Parallel, delayed

from .beta_vae import beta_vae_score
from .dci import dci_from_importance, fit_factor
from .explicitness import explicitness_factor
from .factor_vae import factor_vae_score
from .gaussian_tc import gaussian_tc_from_cov
from .mig import mig_from_mi
from .modularity import modularity_from_mi
from .protocols import Protocol, get_protocol
from .sap import sap_column, sap_from_matrix
from .utils import (
    MetricInputError,
    check_codes,
    check_pair,
    check_train_test,
    discrete_entropy,
    discrete_mutual_info,
    discretize,
    split_rows,
    standardize,
)

SCORE_NAMES = (
    "mig",
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness",
    "sap",
    "modularity",
    "explicitness",
    "gaussian_tc",
    "factor_vae",
    "beta_vae",
)
METRICS = {
    "mig": ("mig",),
    "dci": ("dci_disentanglement", "dci_completeness", "dci_informativeness"),
    "sap": ("sap",),
    "modularity": ("modularity",),
    "explicitness": ("explicitness",),
    "gaussian_tc": ("gaussian_tc",),
    "factor_vae": ("factor_vae",),
    "beta_vae": ("beta_vae",),
}
CODE_METRICS = ("mig", "dci", "sap", "modularity", "explicitness", "gaussian_tc")
NEEDS_TEST = ("dci", "sap", "explicitness")


class Scores(dict):
    """Score name -> float, plus the ``protocol`` that produced them.

    Use :meth:`columns` to put scores in a table: ``dlib`` scores keep their names, any other
    protocol's are prefixed (``fast/mig``), so scores of two protocols never share a column.
    """

    def __init__(self, scores: dict[str, float], protocol: str):
        super().__init__(scores)
        self.protocol = protocol

    def columns(self) -> dict[str, float]:
        prefix = "" if self.protocol == "dlib" else f"{self.protocol}/"
        return {prefix + name: value for name, value in self.items()}

    def __repr__(self) -> str:
        return f"Scores(protocol={self.protocol!r}, {dict.__repr__(self)})"


def parse_metrics(metrics: str | Iterable[str] | None, default: Iterable[str]) -> list[str]:
    """Metric names ('mig,dci' or ['mig', 'dci']) checked against :data:`METRICS`, in canonical order."""
    if metrics is None:
        return list(default)
    names = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    names = [m for m in names if m]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise MetricInputError(f"metrics: unknown metric(s) {unknown or names}; choose from {', '.join(METRICS)}")
    return [m for m in METRICS if m in names]


def default_n_jobs() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _classifier_jobs(z, y, zt, yt, wanted, protocol: Protocol, seed: int):
    """(cost estimate, key, call) for every independent classifier fit the wanted metrics need."""
    jobs = []
    n = z.shape[0] / 10_000
    z32, zt32 = np.ascontiguousarray(z, np.float32), np.ascontiguousarray(zt, np.float32)
    zs, zts = standardize(z, zt) if "explicitness" in wanted else (None, None)
    for k in range(y.shape[1]):
        classes = len(np.unique(y[:, k]))
        if "dci" in wanted:
            per_tree = classes if protocol.dci_model == "gbt" else 0.3
            jobs.append((per_tree * protocol.dci_n_estimators * n, ("dci", k),
                         (fit_factor, (z32, y[:, k], zt32, yt[:, k], protocol, seed))))
        if "sap" in wanted:
            jobs.append((0.5 * classes * n, ("sap", k), (sap_column, (z, y[:, k], zt, yt[:, k], protocol, seed))))
        if "explicitness" in wanted:
            jobs.append((0.4 * classes * n, ("explicitness", k),
                         (explicitness_factor, (zs, y[:, k], zts, yt[:, k], protocol))))
    jobs.sort(key=lambda job: -job[0])
    return jobs


def _run_jobs(jobs, n_jobs: int, parallel: bool) -> dict:
    if not parallel or n_jobs <= 1 or len(jobs) <= 1:
        return {key: fn(*args) for _, key, (fn, args) in jobs}
    workers = min(n_jobs, len(jobs))
    results = Parallel(n_jobs=workers, backend="loky", batch_size=1, pre_dispatch="n_jobs")(
        delayed(fn)(*args) for _, _, (fn, args) in jobs
    )
    return {key: result for (_, key, _), result in zip(jobs, results)}


def _code_scores(z, y, zt, yt, wanted, protocol: Protocol, seed: int, n_jobs: int) -> dict[str, float]:
    """Every wanted code-based score from checked arrays (train z, y; test zt, yt)."""
    if y.shape[1] < 2 and ({"dci", "modularity"} & set(wanted)):
        raise MetricInputError("factors: DCI and modularity need at least two factors")
    scores = {}
    if "mig" in wanted or "modularity" in wanted:
        mi = discrete_mutual_info(discretize(z, protocol.num_bins), y)
        if "mig" in wanted:
            scores["mig"] = mig_from_mi(mi, discrete_entropy(y))
        if "modularity" in wanted:
            scores["modularity"] = modularity_from_mi(mi)
    if "gaussian_tc" in wanted:
        scores["gaussian_tc"] = gaussian_tc_from_cov(np.cov(z, rowvar=False))
    m = protocol.classifier_num_train or len(z)
    if m < len(z):
        z, y = check_pair(z[:m], y[:m])
    results = _run_jobs(_classifier_jobs(z, y, zt, yt, wanted, protocol, seed), n_jobs, protocol.parallel_fits)
    K = y.shape[1]
    if "dci" in wanted:
        importance = np.stack([results[("dci", k)][0] for k in range(K)], axis=1)
        accuracies = [results[("dci", k)][1] for k in range(K)]
        scores.update(dci_from_importance(importance, accuracies, protocol.dci_entropy_eps))
    if "sap" in wanted:
        scores["sap"] = sap_from_matrix(np.stack([results[("sap", k)] for k in range(K)], axis=1))
    if "explicitness" in wanted:
        scores["explicitness"] = float(np.mean([results[("explicitness", k)] for k in range(K)]))
    return scores


def _ordered(scores: dict[str, float], protocol: Protocol) -> Scores:
    return Scores({name: scores[name] for name in SCORE_NAMES if name in scores}, protocol.name)


def scores_from_codes(
    codes,
    factors,
    codes_test=None,
    factors_test=None,
    protocol: str | Protocol = "dlib",
    metrics: str | Iterable[str] | None = None,
    seed: int = 0,
    n_jobs: int | None = None,
) -> Scores:
    """Every requested code-based score of codes [N, d] against factor indices [N, K].

    Without ``codes_test``/``factors_test`` the rows are split by :func:`~did_core.metrics.utils.split_rows`
    (a ``seed``-seeded shuffle, first 2/3 train). The protocol's sample counts then apply: the first
    ``num_train`` training rows and the first ``num_test`` test rows are used (the classifiers train
    on the first ``classifier_num_train`` rows when the protocol sets it). ``seed`` is the
    classifiers' ``random_state``; ``n_jobs`` (default: all usable cores) never changes a value.

    Example:
        >>> s = scores_from_codes(z, y, z_test, y_test, metrics="mig,dci")
        >>> s["mig"], s["dci_disentanglement"], s.protocol
    """
    protocol = get_protocol(protocol)
    wanted = parse_metrics(metrics, CODE_METRICS)
    need_dataset = [m for m in wanted if m not in CODE_METRICS]
    if need_dataset:
        raise MetricInputError(
            f"metrics: {', '.join(need_dataset)} sample from a dataset and an encoder; use evaluate(dataset, encode)"
        )
    if (codes_test is None) != (factors_test is None):
        raise MetricInputError("codes_test and factors_test must be given together")
    if codes_test is None:
        z, y = check_pair(codes, factors)
        train, test = split_rows(len(z), seed)
        z, y, zt, yt = z[train], y[train], z[test], y[test]
    else:
        z, y, zt, yt = check_train_test(codes, factors, codes_test, factors_test)
    n_train, n_test = protocol.num_train, protocol.num_test
    z, y, zt, yt = check_train_test(z[:n_train], y[:n_train], zt[:n_test], yt[:n_test])
    n_jobs = default_n_jobs() if n_jobs is None else n_jobs
    return _ordered(_code_scores(z, y, zt, yt, wanted, protocol, seed, n_jobs), protocol)


def _encoder_device(encode, dataset):
    import torch

    if isinstance(encode, torch.nn.Module):
        for p in encode.parameters():
            return p.device
    return dataset.device


def make_codes_of(dataset, encode: Callable, batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """``codes_of(factor_rows) -> float64 codes``: render and encode in no-grad batches."""
    import torch  # imported here so that the classifier worker processes never load torch

    device = _encoder_device(encode, dataset)

    def codes_of(factors: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for start in range(0, len(factors), batch_size):
                chunk = factors[start : start + batch_size]
                z = encode(dataset.images(chunk).to(device, non_blocking=True))
                if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[0] != len(chunk):
                    got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
                    raise MetricInputError(
                        f"encode: must return a tensor of codes [{len(chunk)}, d] for {len(chunk)} images, got {got}"
                    )
                out.append(z.detach().to("cpu", torch.float64))
        return check_codes(torch.cat(out).numpy(), "codes (from encode)")

    return codes_of


def evaluate(
    dataset,
    encode: Callable,
    protocol: str | Protocol = "dlib",
    metrics: str | Iterable[str] | None = None,
    seed: int = 0,
    batch_size: int = 1024,
    n_jobs: int | None = None,
) -> Scores:
    """Every requested score of the representation ``encode`` on a ground-truth ``dataset``.

    ``encode`` maps a float image batch [n, C, 64, 64] to codes [n, d] (use the mean of the
    posterior). An ``nn.Module`` encoder is put in eval mode for the call and gets images on
    its parameters' device. Factors are drawn with ``seed``; each score uses its own random stream,
    so a score does not depend on which other metrics were requested.

    Example:
        >>> scores = evaluate(get_dataset("dsprites"), encoder, metrics=["mig", "factor_vae"])
    """
    import torch

    protocol = get_protocol(protocol)
    wanted = parse_metrics(metrics, METRICS)
    n_jobs = default_n_jobs() if n_jobs is None else n_jobs
    codes_of = make_codes_of(dataset, encode, batch_size)
    was_training = isinstance(encode, torch.nn.Module) and encode.training
    if was_training:
        encode.eval()
    try:
        rng = np.random.default_rng([seed, 0])
        y = dataset.sample_factors(protocol.num_train, rng)
        yt = dataset.sample_factors(protocol.num_test, rng)
        scores: dict[str, float] = {}
        code_metrics = [m for m in wanted if m in CODE_METRICS]
        z = None
        if code_metrics or ("factor_vae" in wanted and protocol.factor_vae_num_variance <= protocol.num_train):
            z = codes_of(y)
        if code_metrics:
            if set(code_metrics) & set(NEEDS_TEST):
                zt = codes_of(yt)
            else:  # no test set needed: skip encoding one
                zt, yt = z, y
            z, y, zt, yt = check_train_test(z, y, zt, yt)
            scores.update(_code_scores(z, y, zt, yt, code_metrics, protocol, seed, n_jobs))
        if "factor_vae" in wanted:
            fv_rng = np.random.default_rng([seed, 1])
            if z is not None:  # the training codes are a uniform sample: reuse them for the variances
                global_codes = z[: protocol.factor_vae_num_variance]
            else:
                global_codes = codes_of(dataset.sample_factors(protocol.factor_vae_num_variance, fv_rng))
            scores["factor_vae"] = factor_vae_score(dataset, codes_of, global_codes, protocol, fv_rng)
        if "beta_vae" in wanted:
            scores["beta_vae"] = beta_vae_score(dataset, codes_of, protocol, np.random.default_rng([seed, 2]))
    finally:
        if was_training:
            encode.train()
    return _ordered(scores, protocol)

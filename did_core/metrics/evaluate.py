"""The evaluation driver: encode once, build each shared matrix once, derive every registered score.

It knows no metric by name: :mod:`did_core.metrics.registry` says what each one needs.
- the discrete mutual-information matrix [d, K] is built once for every metric that reads it (MIG, modularity);
- the per-factor jobs (DCI's classifiers, SAP's score-matrix columns, explicitness's fits) are
  independent, run in parallel worker processes (joblib/loky), longest first; each job has a
  fixed ``random_state``, so values do not depend on ``n_jobs``;
- metrics that sample from the dataset (FactorVAE, BetaVAE) each draw from their own random stream.

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

from . import registry
from .protocols import Protocol, get_protocol
from .registry import CODES, DATASET, MUTUAL_INFO, PER_FACTOR, Metric
from .utils import (
    MetricInputError,
    check_codes,
    check_pair,
    check_train_test,
    discrete_mutual_info,
    discretize,
    split_rows,
)


BATCH_SIZE = 1024  # images rendered and encoded at a time


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
    """Metric names ('mig,dci' or ['mig', 'dci']) checked against the registry's computed metrics,
    in registration order; ``default`` when ``metrics`` is None."""
    if metrics is None:
        return list(default)
    names = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    names = [m for m in names if m]
    known = registry.computed_metrics()
    unknown = [m for m in names if m not in known]
    broken = registry.broken_metrics()
    for name in unknown:
        if name in broken:  # a plugin that cannot be used: its own error, naming it
            raise broken[name]
    if unknown or not names:
        raise MetricInputError(f"metrics: unknown metric(s) {unknown or names}; choose from {', '.join(known)}")
    return [m for m in known if m in names]


def default_n_jobs() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _factor_jobs(z, y, zt, yt, metrics: list[Metric], protocol: Protocol, seed: int):
    """(cost estimate, key, call) for every independent per-factor job the metrics need."""
    jobs = []
    n = z.shape[0] / 10_000
    for k in range(y.shape[1]):
        classes = len(np.unique(y[:, k]))
        for m in metrics:
            jobs.append((m.job_cost(classes, n, protocol), (m.name, k),
                         (m.factor_job, (z, y[:, k], zt, yt[:, k], protocol, seed))))
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


def _code_scores(z, y, zt, yt, wanted: list[str], protocol: Protocol, seed: int, n_jobs: int) -> dict[str, float]:
    """Every wanted code-based score from checked arrays (train z, y; test zt, yt)."""
    metrics = [registry.get_metric(name) for name in wanted]
    few = [m.name for m in metrics if y.shape[1] < m.min_factors]
    if few:
        raise MetricInputError(f"factors: {', '.join(few)} need at least two factors")
    scores = {}
    if any(m.needs == MUTUAL_INFO for m in metrics):
        mi = discrete_mutual_info(discretize(z, protocol.num_bins), y)
    for m in metrics:
        if m.needs == MUTUAL_INFO:
            scores.update(declared(m, m.compute(mi, y, protocol)))
        elif m.needs == CODES:
            scores.update(declared(m, m.compute(z, y, zt, yt, protocol, seed)))
    per_factor = [m for m in metrics if m.needs == PER_FACTOR]
    if per_factor:
        rows = protocol.classifier_num_train or len(z)
        if rows < len(z):
            z, y = check_pair(z[:rows], y[:rows])
        results = _run_jobs(_factor_jobs(z, y, zt, yt, per_factor, protocol, seed), n_jobs, protocol.parallel_fits)
        for m in per_factor:
            scores.update(declared(m, m.compute([results[(m.name, k)] for k in range(y.shape[1])], protocol)))
    return scores


def declared(metric: Metric, result) -> dict[str, float]:
    """``result`` of ``metric.compute`` as ``{score: float}``: exactly the scores the metric declares,
    each a real number (NaN allowed: a score that cannot be computed); anything else is one
    :class:`~did_core.metrics.registry.MetricResultError` naming the plugin."""
    def refuse(why: str):
        return registry.MetricResultError(f"{registry.owner(metric)}: metric {metric.name!r} {why}; "
                                          f"it declares the scores {sorted(metric.scores)}, each a number")

    if not isinstance(result, dict):
        raise refuse(f"returned {type(result).__name__}, not a dict of scores")
    extra, missing = sorted(set(result) - set(metric.scores), key=str), sorted(set(metric.scores) - set(result))
    if extra or missing:
        raise refuse(f"returned {'the undeclared score(s) ' + str(extra) if extra else ''}"
                     f"{' and ' if extra and missing else ''}{'no ' + str(missing) if missing else ''}")
    out = {}
    for name, value in result.items():
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value[()]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise refuse(f"returned {name!r} = {type(value).__name__}{_shape(value)}, not a number")
        out[name] = float(value)
    return out


def _shape(value) -> str:
    return f" of shape {tuple(value.shape)}" if hasattr(value, "shape") else ""


def _ordered(scores: dict[str, float], protocol: Protocol) -> Scores:
    return Scores({name: scores[name] for name in registry.score_names() if name in scores}, protocol.name)


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
    wanted = parse_metrics(metrics, registry.code_metrics())
    need_dataset = [m for m in wanted if m not in registry.code_metrics()]
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


def evaluation_factors(dataset, protocol: str | Protocol, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The factor rows :func:`evaluate` encodes for the code-based scores: ``num_train`` training
    rows, then ``num_test`` test rows, drawn with ``seed`` (rendered in that order, in batches)."""
    protocol = get_protocol(protocol)
    rng = np.random.default_rng([seed, 0])
    return dataset.sample_factors(protocol.num_train, rng), dataset.sample_factors(protocol.num_test, rng)


def evaluate(
    dataset,
    encode: Callable,
    protocol: str | Protocol = "dlib",
    metrics: str | Iterable[str] | None = None,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
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
    wanted = parse_metrics(metrics, registry.computed_metrics())
    n_jobs = default_n_jobs() if n_jobs is None else n_jobs
    codes_of = make_codes_of(dataset, encode, batch_size)
    was_training = isinstance(encode, torch.nn.Module) and encode.training
    if was_training:
        encode.eval()
    try:
        y, yt = evaluation_factors(dataset, protocol, seed)
        train: list[np.ndarray] = []  # the training draw's codes, encoded once when first needed

        def train_codes() -> np.ndarray:
            if not train:
                train.append(codes_of(y))
            return train[0]

        scores: dict[str, float] = {}
        code_metrics = [m for m in wanted if m in registry.code_metrics()]
        if code_metrics:
            z = train_codes()
            if any(registry.get_metric(m).test_set for m in code_metrics):
                zt = codes_of(yt)
            else:  # no test set needed: skip encoding one
                zt, yt = z, y
            z, y, zt, yt = check_train_test(z, y, zt, yt)
            scores.update(_code_scores(z, y, zt, yt, code_metrics, protocol, seed, n_jobs))
        for name in wanted:
            metric = registry.get_metric(name)
            if metric.needs == DATASET:
                rng = np.random.default_rng([seed, metric.stream])
                scores.update(declared(metric, metric.compute(dataset, codes_of, train_codes, protocol, rng)))
    finally:
        if was_training:
            encode.train()
    return _ordered(scores, protocol)

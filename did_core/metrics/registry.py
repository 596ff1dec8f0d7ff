"""The metric registry: a metric is one module (its pure functions) and one :func:`register` call.

A :class:`Metric` says its name (what ``eval_metrics`` and ``--metrics`` list), the scores it
yields with their directions, and what it needs, which decides how the evaluation driver
(:mod:`did_core.metrics.evaluate`) calls it:

- ``CODES``: ``compute(z, y, z_test, y_test, protocol, seed) -> {score: value}`` on train / test codes;
- ``MUTUAL_INFO``: ``compute(mi, y, protocol) -> {...}`` from the [d, K] discrete mutual-information matrix,
  built once for every metric that needs it;
- ``PER_FACTOR``: ``factor_job(z, y[:, k], z_test, y_test[:, k], protocol, seed)`` once per factor (independent
  jobs, run in parallel longest first by ``job_cost(classes, rows / 10_000, protocol)``), then
  ``compute([job result per factor], protocol) -> {...}``;
- ``DATASET``: ``compute(dataset, codes_of, train_codes, protocol, rng) -> {...}``, sampling from the
  dataset through the encoder (``train_codes()`` gives the codes of the driver's training draw,
  encoded on first use); ``stream`` numbers its own random stream;
- ``MODEL``: scores the model computes from its own nets and passes to ``Run.evaluate`` /
  ``Run.final`` (``model_scores=``); registered for their names and directions only.

Example:
    >>> register(Metric("code_mean", {"code_mean": "maximize"}, CODES,
    ...                 compute=lambda z, y, zt, yt, protocol, seed: {"code_mean": float(z.mean())}))
    >>> evaluate(dataset, encode, metrics="mig,code_mean")           # doctest: +SKIP
    >>> register(Metric("class_accuracy", {"class_accuracy": "maximize"}, MODEL))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .beta_vae import beta_vae_score
from .dci import dci_from_importance, fit_factor
from .explicitness import explicitness_factor
from .factor_vae import factor_vae_score
from .gaussian_tc import gaussian_tc_from_cov
from .mig import mig_from_mi
from .modularity import modularity_from_mi
from .sap import sap_column, sap_from_matrix
from .utils import discrete_entropy, standardize

CODES, MUTUAL_INFO, PER_FACTOR, DATASET, MODEL = "codes", "mutual_info", "per_factor", "dataset", "model"
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class Metric:
    name: str
    scores: dict[str, str]  # score name -> "maximize" | "minimize", in the order they are listed
    needs: str  # CODES | MUTUAL_INFO | PER_FACTOR | DATASET | MODEL
    compute: Callable | None = None
    factor_job: Callable | None = None  # PER_FACTOR
    job_cost: Callable | None = None  # PER_FACTOR
    test_set: bool = False  # CODES / PER_FACTOR: scores held-out codes too
    min_factors: int = 1
    stream: int = 0  # DATASET: its random stream, default_rng([seed, stream])

    def __post_init__(self):
        if self.needs not in (CODES, MUTUAL_INFO, PER_FACTOR, DATASET, MODEL):
            raise ValueError(f"metric {self.name!r}: needs must be one of codes, mutual_info, per_factor, "
                             f"dataset, model; got {self.needs!r}")
        bad = {s: d for s, d in self.scores.items() if d not in DIRECTIONS}
        if not self.scores or bad:
            raise ValueError(f"metric {self.name!r}: scores must map each name to 'maximize' or 'minimize', got {bad}")
        if (self.needs != MODEL) != (self.compute is not None):
            raise ValueError(f"metric {self.name!r}: a computed metric has `compute`, one provided by the model not")
        if (self.needs == PER_FACTOR) != (self.factor_job is not None and self.job_cost is not None):
            raise ValueError(f"metric {self.name!r}: factor_job and job_cost go with needs=per_factor")

    @property
    def computed(self) -> bool:
        """Whether the evaluation driver computes it (else the model provides its scores)."""
        return self.needs != MODEL


_REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add ``metric``; its name and its scores' names must be new."""
    if metric.name in _REGISTRY:
        raise ValueError(f"metric {metric.name!r} is registered already")
    taken = sorted(set(metric.scores) & set(directions()))
    if taken:
        raise ValueError(f"metric {metric.name!r}: score name(s) {taken} belong to another metric")
    _REGISTRY[metric.name] = metric
    return metric


def unregister(name: str) -> None:
    """Remove a metric (tests that register a throwaway one)."""
    _REGISTRY.pop(name, None)


def get_metric(name: str) -> Metric:
    return _REGISTRY[name]


def metric_names(needs: tuple[str, ...] | None = None) -> list[str]:
    """Registered metrics in registration order; only those whose ``needs`` is in ``needs`` if given."""
    return [m.name for m in _REGISTRY.values() if needs is None or m.needs in needs]


def computed_metrics() -> list[str]:
    """The metrics the driver computes (``evaluate`` with ``metrics=None``)."""
    return [m.name for m in _REGISTRY.values() if m.computed]


def code_metrics() -> list[str]:
    """The metrics computed from (codes, factors) alone (``scores_from_codes``, the CLI)."""
    return metric_names((CODES, MUTUAL_INFO, PER_FACTOR))


def directions() -> dict[str, str]:
    """Every registered score name -> "maximize" | "minimize", in registration order."""
    return {s: d for m in _REGISTRY.values() for s, d in m.scores.items()}


def score_names() -> list[str]:
    return list(directions())


# ---- the built-in metrics (disentanglement_lib's), in the order their scores are listed ---------

def _dci_job(z, target, z_test, target_test, protocol, seed):
    return fit_factor(np.ascontiguousarray(z, np.float32), target, np.ascontiguousarray(z_test, np.float32),
                      target_test, protocol, seed)


def _dci(results, protocol) -> dict[str, float]:
    importance = np.stack([r[0] for r in results], axis=1)
    return dci_from_importance(importance, [r[1] for r in results], protocol.dci_entropy_eps)


def _explicitness_job(z, target, z_test, target_test, protocol, seed) -> float:
    zs, zts = standardize(z, z_test)
    return explicitness_factor(zs, target, zts, target_test, protocol)


def _factor_vae(dataset, codes_of, train_codes, protocol, rng) -> dict[str, float]:
    n = protocol.factor_vae_num_variance
    # the driver's training codes are a uniform sample: reuse them for the variances when enough
    global_codes = train_codes()[:n] if n <= protocol.num_train else codes_of(dataset.sample_factors(n, rng))
    return {"factor_vae": factor_vae_score(dataset, codes_of, global_codes, protocol, rng)}


for _metric in (
    Metric("mig", {"mig": "maximize"}, MUTUAL_INFO,
           compute=lambda mi, y, protocol: {"mig": mig_from_mi(mi, discrete_entropy(y))}),
    Metric("dci", {"dci_disentanglement": "maximize", "dci_completeness": "maximize",
                   "dci_informativeness": "maximize"}, PER_FACTOR, compute=_dci, factor_job=_dci_job,
           job_cost=lambda classes, n, p: (classes if p.dci_model == "gbt" else 0.3) * p.dci_n_estimators * n,
           test_set=True, min_factors=2),
    Metric("sap", {"sap": "maximize"}, PER_FACTOR, factor_job=sap_column, test_set=True,
           compute=lambda results, protocol: {"sap": sap_from_matrix(np.stack(results, axis=1))},
           job_cost=lambda classes, n, p: 0.5 * classes * n),
    Metric("modularity", {"modularity": "maximize"}, MUTUAL_INFO, min_factors=2,
           compute=lambda mi, y, protocol: {"modularity": modularity_from_mi(mi)}),
    Metric("explicitness", {"explicitness": "maximize"}, PER_FACTOR, factor_job=_explicitness_job, test_set=True,
           compute=lambda results, protocol: {"explicitness": float(np.mean(results))},
           job_cost=lambda classes, n, p: 0.4 * classes * n),
    Metric("gaussian_tc", {"gaussian_tc": "minimize"}, CODES,
           compute=lambda z, y, zt, yt, protocol, seed: {"gaussian_tc": gaussian_tc_from_cov(np.cov(z, rowvar=False))}),
    Metric("factor_vae", {"factor_vae": "maximize"}, DATASET, compute=_factor_vae, stream=1),
    Metric("beta_vae", {"beta_vae": "maximize"}, DATASET, stream=2,
           compute=lambda dataset, codes_of, train_codes, protocol, rng:
           {"beta_vae": beta_vae_score(dataset, codes_of, protocol, rng)}),
):
    register(_metric)

# Scores more than one model provides from its own nets (V3, PartedVAE): registered once, here.
register(Metric("swap", {"swap_accuracy": "maximize"}, MODEL))

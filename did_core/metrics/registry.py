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

The built-ins (:mod:`did_core.metrics.builtin`) and every installed package's entry point in the
group ``did_orchestrator.metrics`` (a :class:`Metric`, or a list of them) are registered once,
before the registry is first read; a model registers the scores it provides when its module is
imported. A name taken twice is a :class:`~did_core.plugins.PluginError` naming the plugin.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..plugins import METRIC_GROUP, PluginError, Registry

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
    diagnostic: bool = False  # MODEL: a check on the model's own training (DiD's shortcuts), not a score to rank by

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
# The built-in metrics, registered like a plugin (pyproject.toml declares the same entry points).
BUILT_IN_METRICS: dict[str, str] = {name: f"did_core.metrics.builtin:{name.upper()}" for name in (
    "mig", "dci", "sap", "modularity", "explicitness", "gaussian_tc", "factor_vae", "beta_vae", "swap")}


def _metrics_of(plugin, obj) -> tuple[Metric, ...]:
    metrics = (obj,) if isinstance(obj, Metric) else tuple(obj) if isinstance(obj, (list, tuple)) else None
    if not metrics or not all(isinstance(m, Metric) for m in metrics):
        raise plugin.error(f"must name a did_core.metrics.Metric or a list of them, got {type(obj).__name__}")
    if isinstance(obj, Metric) and obj.name != plugin.name:
        raise plugin.error(f"names the metric {obj.name!r}; register it under its own name")
    return metrics


METRICS: Registry[tuple[Metric, ...]] = Registry(METRIC_GROUP, "metric", BUILT_IN_METRICS, check=_metrics_of)
_loaded: list[PluginError | None] = []  # once loaded: [None], or [the error every later read raises again]


def _load_plugins() -> None:
    """Register the built-in and installed metrics, once per process, before anything else."""
    if _loaded:
        if _loaded[0] is not None:
            raise _loaded[0]
        return
    _loaded.append(None)
    try:
        for name, plugin in METRICS.plugins().items():
            for metric in METRICS.get(name):
                try:
                    _add(metric)
                except ValueError as e:
                    raise plugin.error(str(e)) from None
    except PluginError as e:
        _loaded[0] = e
        raise


def register(metric: Metric) -> Metric:
    """Add ``metric``; its name and its scores' names must be new."""
    _load_plugins()
    return _add(metric)


def _add(metric: Metric) -> Metric:
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
    _load_plugins()
    return _REGISTRY[name]


def metric_names(needs: tuple[str, ...] | None = None) -> list[str]:
    """Registered metrics in registration order; only those whose ``needs`` is in ``needs`` if given."""
    _load_plugins()
    return [m.name for m in _REGISTRY.values() if needs is None or m.needs in needs]


def computed_metrics() -> list[str]:
    """The metrics the driver computes (``evaluate`` with ``metrics=None``)."""
    _load_plugins()
    return [m.name for m in _REGISTRY.values() if m.computed]


def code_metrics() -> list[str]:
    """The metrics computed from (codes, factors) alone (``scores_from_codes``, the CLI)."""
    return metric_names((CODES, MUTUAL_INFO, PER_FACTOR))


def directions() -> dict[str, str]:
    """Every registered score name -> "maximize" | "minimize", in registration order."""
    _load_plugins()
    return {s: d for m in _REGISTRY.values() for s, d in m.scores.items()}


def score_kinds() -> dict[str, str]:
    """Every registered score name -> ``"published"`` (a metric the driver computes from a
    representation), ``"model"`` (a model's own score) or ``"diagnostic"`` (a model's check on its
    own training), in registration order (the report shows them in that order)."""
    _load_plugins()
    return {s: ("diagnostic" if m.diagnostic else "model" if m.needs == MODEL else "published")
            for m in _REGISTRY.values() for s in m.scores}


def score_names() -> list[str]:
    return list(directions())

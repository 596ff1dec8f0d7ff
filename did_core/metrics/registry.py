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
imported. A plugin whose metric or score name is taken (by a built-in, another plugin, or a column
of the run folder's tables, :data:`RESERVED_NAMES`), or that fails to import, is left out: one
:class:`~did_core.plugins.PluginError` naming it (and the other owner), raised where it is named
(:func:`get_metric`, :func:`broken_metrics`); the other metrics work. The evaluation driver
takes from a metric exactly the scores it declares, as numbers (:class:`MetricResultError`).
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
_loaded: list[bool] = []  # [True] once the plugins are read
_BROKEN: dict[str, PluginError] = {}  # a metric plugin that cannot be used -> why (it is skipped, the others work)
_OWNER: dict[str, str] = {}  # score name -> who registered it (a plugin, or "metric 'name'"), for clash errors
# The columns of a run folder's tables (orchestrator.run_folder: results.csv, curves.csv, selection.csv)
# and the label-free selection's scores: a score of that name would overwrite one of them.
RESERVED_NAMES = frozenset({
    "trial", "config_id", "seed", "status", "step", "final_protocol", "duration_s", "node", "host", "started",
    "finished", "resumed_from", "error", "name", "value", "images_per_sec", "configuration", "model", "dataset",
    "udr_lasso", "udr_spearman", "udr_n", "model_centrality", "mc_n", "protocol", "note", "objective"})
RESERVED_PREFIXES = ("params_", "loss/", "user_attrs_", "system_attrs_")


class MetricResultError(PluginError):
    """A metric returned what its declaration does not allow (a score it did not declare, one it
    declared missing, a value that is not a number): the study stops, since every trial would."""


def _load_plugins() -> None:
    """Register the built-in and installed metrics, once per process, before anything else. A
    plugin that cannot be used (it fails to import, breaks its contract, or declares a name taken
    by a built-in, a run-folder column or another plugin) is left out as a whole and kept in
    :func:`broken_metrics`: it is refused only where it is named, every other metric works."""
    if _loaded:
        return
    _loaded.append(True)
    for name, plugin in METRICS.plugins().items():
        try:
            metrics = METRICS.get(name)
            for i, metric in enumerate(metrics):
                problem = _problem(metric, str(plugin), metrics[:i])
                if problem:
                    raise plugin.error(problem)
        except PluginError as e:
            _BROKEN[name] = e
            continue
        for metric in metrics:
            _add(metric, str(plugin))


def broken_metrics() -> dict[str, PluginError]:
    """Metric plugin name -> the error that keeps it out of the registry."""
    _load_plugins()
    return dict(_BROKEN)


def plugin_metrics(name: str) -> tuple[Metric, ...]:
    """The metrics the plugin ``name`` registered; its error when it is broken."""
    _load_plugins()
    if name in _BROKEN:
        raise _BROKEN[name]
    return METRICS.get(name)


def owner(metric: Metric) -> str:
    """Who registered ``metric``, for an error message: its plugin, or ``metric 'name'``."""
    return _OWNER.get(next(iter(metric.scores)), f"metric {metric.name!r}")


def register(metric: Metric) -> Metric:
    """Add ``metric``; its name and its scores' names must be new."""
    _load_plugins()
    problem = _problem(metric, f"metric {metric.name!r}")
    if problem:
        raise ValueError(problem)
    return _add(metric, f"metric {metric.name!r}")


def _problem(metric: Metric, who: str, siblings: tuple[Metric, ...] = ()) -> str | None:
    """Why ``metric`` (registered by ``who``) may not join the registry, or None."""
    if metric.name in _REGISTRY:
        return f"metric {metric.name!r} is registered already, by {_OWNER.get(next(iter(_REGISTRY[metric.name].scores)))}"
    for score in metric.scores:
        if not isinstance(score, str) or not score.strip() or score != score.strip():
            return f"metric {metric.name!r}: score name {score!r} must be a non-empty name"
        if score in RESERVED_NAMES or score.startswith(RESERVED_PREFIXES) or "/" in score:
            return (f"metric {metric.name!r}: score name {score!r} is a column of the run folder's tables "
                    "(results.csv, curves.csv, selection.csv) or has its form; choose another name")
        if score in _OWNER:
            return f"metric {metric.name!r}: score name {score!r} belongs to {_OWNER[score]}, not to {who}"
        if any(score in m.scores for m in siblings):
            return f"metric {metric.name!r}: score name {score!r} is declared twice by {who}"
    return None


def _add(metric: Metric, who: str) -> Metric:
    _REGISTRY[metric.name] = metric
    _OWNER.update({score: who for score in metric.scores})
    return metric


def unregister(name: str) -> None:
    """Remove a metric (tests that register a throwaway one)."""
    metric = _REGISTRY.pop(name, None)
    for score in metric.scores if metric else ():
        _OWNER.pop(score, None)


def get_metric(name: str) -> Metric:
    """The metric ``name``; the plugin's error for a broken one, KeyError for an unknown one."""
    _load_plugins()
    if name not in _REGISTRY and name in _BROKEN:
        raise _BROKEN[name]
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

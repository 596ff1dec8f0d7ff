"""The checks a study file passes while it is resolved for a preset (:mod:`orchestrator.study_file.resolve`):
its shape (one model or a comparison), its models and datasets, the size of its grid, its sampler, its
fields against each model's Config, and every grid point building a valid Config. Each raises the
``StudyError`` that ``fail(where, why)`` makes, naming the file and the field.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from did_core.models import ConfigError, ModelSpec, PluginError, available_models, get_model

from .plan import METHOD, Arm, first_point, grid_size
from .schema import StudyFile

MAX_GRID = 100_000
MAX_PROBES = 1_000  # a parameter with more grid points has its two ends probed, not every point


def check_grid_size(spaces: list[dict[str, Any]], n_datasets: int | None, fail) -> None:
    """A grid study's points (a comparison's: every arm's grid on every dataset), at most MAX_GRID."""
    for space in spaces if n_datasets is None else []:
        for name, spec in space.items():
            if spec.n_points() is None:
                raise fail(f"search.space.{name}", f"a {spec.type} range has no grid points: give `values: [...]` "
                                                   "(or use type int / categorical)")
    size = sum(grid_size(space) for space in spaces) * (n_datasets or 1)
    if size > MAX_GRID:
        raise fail("search.space", f"the grid has {size:,} points (more than {MAX_GRID:,})")


def check_sampler(sampler: str, n_trials: int | None, space: dict[str, Any], n_objectives: int, fail) -> None:
    if sampler == "grid":
        if n_trials is not None:
            raise fail("search.n_trials", "the grid sampler runs every grid point; leave n_trials out")
        if not space:
            raise fail("search.space", "the grid sampler needs at least one parameter")
    else:
        if n_trials is None:
            raise fail("search.n_trials", f"the {sampler} sampler needs n_trials (configurations to try)")
        if not space:
            raise fail("search.space", f"the {sampler} sampler needs at least one parameter to search")
    if sampler == "cmaes":
        if n_objectives > 1:
            raise fail("search.sampler", "cmaes optimises one objective; use nsga2 or tpe for several")
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise fail("search.sampler", "cmaes needs the Python package `cmaes`, which is not installed "
                                         "(pip install cmaes)") from None


def check_shape(sf: StudyFile, model: ModelSpec | None, fail) -> bool:
    """Whether the file is a comparison (``arms``) or a single-model study; errors for mixtures."""
    if (sf.model is None) == (sf.arms is None):
        raise fail("model", "give either `model` (one model) or `arms` (a comparison of several models)")
    sections = [(f"presets.{name}", p) for name, p in sf.presets.items()]
    if sf.arms is None:
        if sf.search is None:
            raise fail("search", "missing: a single-model study needs a search section (sampler and space)")
        if sf.kind == "comparison":
            raise fail("kind", "a comparison names its models under `arms`")
        if sf.datasets is not None:
            raise fail("datasets", "only a comparison (`arms`) runs on a list of datasets; a single-model study "
                                   "takes `dataset`, or searches `dataset` as a parameter")
        for where, p in sections:
            for key in ("datasets", "arms"):
                if getattr(p, key) is not None:
                    raise fail(f"{where}.{key}", "only a comparison (a study with `arms`) has this")
        return False
    if model is not None:
        raise fail("arms", "a comparison names its models itself; it cannot take a model from the caller")
    if sf.kind not in (None, "comparison"):
        raise fail("kind", f"a study with `arms` is a comparison, not {sf.kind!r}")
    if sf.dataset is not None and sf.datasets is not None:
        raise fail("datasets", "give `dataset` or `datasets`, not both")
    if sf.dataset is None and sf.datasets is None:
        raise fail("datasets", "missing: the datasets every arm runs on, e.g. [dsprites, shapes3d]")
    if sf.search is not None:
        if sf.search.sampler != "grid":
            raise fail("search.sampler", "a comparison runs every configuration of every arm: only `grid`")
        if sf.search.space:
            raise fail("search.space", "a comparison's parameters belong to its arms (arms.<name>.space)")
    for where, p in sections:
        if p.dataset is not None:
            raise fail(f"{where}.dataset", "a comparison's preset replaces `datasets`, a list")
    for where, p in [("", sf), *sections]:
        es = p.early_stopping
        if es is not None and es.type != "none":
            raise fail(f"{where}.early_stopping".lstrip("."),
                       "early stopping compares trials at equal steps; a comparison's models train for "
                       "different numbers of steps, so it is not available here")
    for where, p in sections:
        if p.search is not None and p.search.space:
            raise fail(f"{where}.search.space", "a comparison's parameters belong to its arms "
                                                f"({where}.arms.<name>.space)")
        for name in p.arms or {}:
            if name not in sf.arms:
                raise fail(f"{where}.arms.{name}", f"no such arm; the study's arms are {list(sf.arms)}")
    return True


def check_protocols(arms: list[Arm], probes: list, fail) -> None:
    """One protocol per kind of score in a study, so that no column of its tables mixes two."""
    for key in ("eval_protocol", "final_protocol"):
        for arm in arms:
            if key in arm.space:
                raise fail(f"search.space.{key}" if len(arms) == 1 else f"arms.{arm.label}.space.{key}",
                           "a protocol is not a parameter: scores of two protocols never share a column")
        used = {a.label: getattr(p, key) for a, p in zip(arms, probes)}
        if len(set(used.values())) > 1:
            raise fail(f"fixed.{key}", f"the arms score with different protocols {used}; every arm of a "
                                       "comparison must use the same, so that its tables never mix protocols")


def lookup_model(name: str, where: str, fail) -> ModelSpec:
    try:
        if name not in available_models():
            raise fail(where, f"unknown model {name!r}; registered models are {available_models()}")
        return get_model(name)
    except PluginError as e:  # a clash, an import error, a broken contract: the plugin and its package
        raise fail(where, str(e)) from None


def absolute_dataset(name: str) -> str:
    """``file:PATH`` with PATH made absolute (relative to the current folder), so that every trial, in
    whatever folder Ray starts it, reads the same file; any other name as it is."""
    from did_core.data import FILE_PREFIX

    if not name.startswith(FILE_PREFIX):
        return name
    return FILE_PREFIX + str(Path(name[len(FILE_PREFIX):]).expanduser().resolve())


def check_datasets(datasets: list[str], where: str, fail) -> None:
    """Every dataset registered, or a ``file:PATH`` that opens (its arrays checked, images not read)."""
    from did_core.data import FILE_PREFIX, DatasetError, available_datasets, dataset_problem, get_dataset

    try:
        unknown = [d for d in datasets if not d.startswith(FILE_PREFIX) and d not in available_datasets()]
    except PluginError as e:
        raise fail(where, str(e)) from None
    if unknown:
        raise fail(where, f"unknown dataset(s) {unknown}; known datasets are {available_datasets()}, or file:PATH")
    for name in datasets:
        why = dataset_problem(name)
        try:
            if why is None and name.startswith(FILE_PREFIX):
                get_dataset(name).close()
        except (DatasetError, ValueError) as e:
            why = str(e)
        if why:
            raise fail(where, why)
    if len(set(datasets)) != len(datasets):
        raise fail(where, f"each dataset at most once, got {datasets}")


def check_fields(cfg_cls, model_name: str, fixed: dict, space: dict, origin: dict, comparison: bool, fail) -> None:
    known = set(cfg_cls.field_names())
    for name in list(fixed) + list(space):
        at = origin.get(name, f"search.space.{name}")
        if name == "seed":
            raise fail(at, "seeds are set by the study's `seeds`, not as a parameter")
        if comparison and name in ("dataset", METHOD):
            raise fail(at, "in a comparison the dataset is a study axis: list it under `datasets`"
                       if name == "dataset" else f"{METHOD!r} is the name of the arm, not a model field")
        if name not in known:
            raise fail(at, f"not a field of the {model_name!r} model's Config; known fields: {sorted(known - {'seed'})}")
    both = sorted(set(fixed) & set(space))
    if both:
        raise fail(origin.get(both[0], f"fixed.{both[0]}"), "a parameter is either fixed or searched, not both")


def check_configs(cfg_cls, budget, fixed, space, seed, origin, fail) -> None:
    try:
        cfg_cls.from_preset(budget, **fixed, **first_point(space), seed=seed)
    except (ConfigError, TypeError, ValueError) as e:
        field = getattr(e, "field", None)  # a ConfigError names its field: point at the study's line for it
        if field in origin:
            raise fail(origin[field], e.why) from None
        raise fail("fixed", str(e)) from None
    for name, spec in space.items():
        n = spec.n_points()
        points = spec.grid() if n is not None and n <= MAX_PROBES else [spec.low, spec.high]
        for value in points:
            try:
                cfg_cls.from_preset(budget, **fixed, **{**first_point(space), name: value}, seed=seed)
            except (ConfigError, TypeError, ValueError) as e:
                raise fail(origin.get(name, f"search.space.{name}"), f"value {value!r} gives an invalid config: {e}") from None

"""Resolve a study file for one preset into a :class:`~orchestrator.plan.Study`, checked against
its models: every field of the file is a model Config field or a study setting, every grid point
builds a valid Config, and errors name the file and the line (``studies/x.yaml: fixed.steps: ...``).

Example:
    >>> study = load_study("ablation_dims", preset="smoke")
    >>> study.budget, study.models
    ('smoke', ['did'])
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from did_core.models import ConfigError, ModelSpec, PluginError, available_models, get_model

from .objectives import check_objectives
from .plan import METHOD, Arm, Study, comparison_space, first_point, grid_size, product
from .study_file import (ArmOverride, EarlyStopping, Evaluation, Objective, PresetSection, Search, SearchOverride,
                         StudyError, StudyFile, read_study_file, validate)

MAX_GRID = 100_000
MAX_TRIALS = 100_000  # configurations x seeds
MAX_PROBES = 1_000  # a parameter with more grid points has its two ends probed, not every point


def load_study(name_or_path: str | Path, preset: str = "smoke", model: ModelSpec | None = None) -> Study:
    """Read, validate and resolve a study file for ``preset``; raises :class:`StudyError`.

    ``model`` replaces the registry lookup of the study's ``model`` (tests, benchmarks).
    """
    raw, label, text = read_study_file(name_or_path)
    return parse_study(raw, preset, model=model, label=label, text=text)


def parse_study(raw: Any, preset: str, model: ModelSpec | None = None, label: str = "<study>",
                text: str = "") -> Study:
    """A parsed study file (a dict) resolved for ``preset``: checked, the preset's overrides merged
    over the study, every arm's Config probed. Errors name ``label`` and the field."""
    sf = validate(raw, label)

    def fail(where: str, why: str) -> StudyError:
        return StudyError(f"{label}: {where}: {why}")

    comparison = _check_shape(sf, model, fail)
    specs = _models(sf, model, comparison, fail)
    section, budget = _preset(sf, preset, specs, comparison, label, fail)
    where = f"presets.{preset}"
    fixed, origin = _merged_fixed(sf, section, where, comparison, fail)
    seeds = section.seeds if section.seeds is not None else sf.seeds
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    search = sf.search or Search(sampler="grid")
    so = section.search or SearchOverride()
    datasets = [absolute_dataset(d) for d in section.datasets or sf.datasets or ([sf.dataset] if sf.dataset else [])]
    if comparison:
        _check_datasets(datasets, f"{where}.datasets" if section.datasets else "datasets", fail)

    # the arms: each one's fields must belong to its model's Config and build valid configs
    sections = _arm_sections(sf, section, where, so, fail)
    if search.sampler == "grid":  # counted before any grid is built or probed (high: 1000000000000)
        _check_grid_size([sp for _, sp, _ in sections.values()], len(datasets) if comparison else None, fail)
    arms, probes = [], []
    for name, (arm_fixed, arm_space, arm_origin) in sections.items():
        cfg_cls = specs[name].config_cls
        arm_fixed = {**fixed, **arm_fixed}
        arm_origin = {**origin, **arm_origin}
        _check_fields(cfg_cls, sf.model or specs[name].name, arm_fixed, arm_space, arm_origin, comparison, fail)
        probe_fixed = {**arm_fixed, "dataset": datasets[0]} if comparison else arm_fixed
        _check_configs(cfg_cls, budget, probe_fixed, arm_space, seeds[0], arm_origin, fail)
        probe = cfg_cls.from_preset(budget, **probe_fixed, **first_point(arm_space), seed=seeds[0])
        probes.append(probe)
        arms.append(Arm(label=name, model=specs[name].name, fixed=arm_fixed, space=arm_space,
                        steps=int(getattr(probe, "steps", 0)), config_cls=cfg_cls))
    space = comparison_space(arms, datasets) if comparison else arms[0].space
    _check_protocols(arms, probes, fail)
    check_objectives(arms, probes, sf.objectives, fail)
    n_trials = so.n_trials or search.n_trials
    _check_sampler(search.sampler, n_trials, space, len(sf.objectives), fail)
    controls = _controls(so.controls if so.controls is not None else search.controls, search.sampler, arms,
                         comparison, budget, seeds[0], "search.controls" if so.controls is None
                         else f"{where}.search.controls", fail)
    planned = (len(datasets) * sum(grid_size(a.space) for a in arms) if comparison
               else grid_size(space) + len(controls)) if search.sampler == "grid" else n_trials
    if planned * len(seeds) > MAX_TRIALS:
        raise fail("seeds" if planned <= MAX_TRIALS else "search.n_trials",
                   f"the study plans {planned * len(seeds):,} trials ({planned:,} configurations x {len(seeds):,} "
                   f"seeds), more than {MAX_TRIALS:,}")
    population = so.population_size or search.population_size
    if population is not None and search.sampler != "nsga2":
        raise fail("search.population_size", "only the nsga2 sampler has a population")

    early = section.early_stopping or sf.early_stopping
    early = None if early is None or early.type == "none" else _resolve_early_stopping(early, sf.objectives,
                                                                                        probes[0], fail)
    kind = "comparison" if comparison else sf.kind or (
        "ablation" if search.sampler == "grid" and len(space) == 1 else "search")
    return Study(
        name=sf.name, preset=preset, budget=budget, fixed=fixed, space=space, sampler=search.sampler,
        n_trials=n_trials, sampler_seed=so.seed if so.seed is not None else search.seed, population_size=population,
        seeds=seeds, objectives=list(sf.objectives), early_stopping=early,
        resources=section.resources or sf.resources, max_concurrent=section.max_concurrent or sf.max_concurrent,
        storage=search.storage, retries=sf.retries, kind=kind, arms=arms, datasets=datasets if comparison else [],
        steps=max(a.steps for a in arms), eval_protocol=str(getattr(probes[0], "eval_protocol", "fast")),
        final_protocol=str(getattr(probes[0], "final_protocol", "dlib")),
        description=sf.description, source=label, source_text=text, controls=controls, trackers=list(sf.trackers),
    )


def _controls(controls: list[dict[str, Any]], sampler: str, arms: list[Arm], comparison: bool, budget: str,
              seed: int, where: str, fail) -> list[dict[str, Any]]:
    """Each control as a whole configuration: its own values over every searched parameter's Config
    default; refused unless the study is a single-model grid and the control is none of its points."""
    if not controls:
        return []
    if sampler != "grid" or comparison:
        raise fail(where, "controls run beside a grid: only a single-model study with the grid sampler has them "
                          "(a comparison's control is one more arm)")
    arm = arms[0]
    base = arm.config_cls.from_preset(budget, **arm.fixed, seed=seed)
    points, out = product(arm.space), []
    for i, control in enumerate(controls):
        unknown = sorted(set(control) - set(arm.space))
        if not control or unknown:
            raise fail(f"{where}[{i}]", f"a control sets searched parameters ({list(arm.space)}), got "
                                        f"{unknown or 'none'}; a field every trial shares belongs in `fixed`")
        point = {**{n: getattr(base, n) for n in arm.space}, **control}
        if point in points or point in out:
            raise fail(f"{where}[{i}]", f"{point} is already planned; a control is a configuration the grid lacks")
        try:
            arm.config_cls.from_preset(budget, **arm.fixed, **point, seed=seed)
        except (ConfigError, TypeError, ValueError) as e:
            raise fail(f"{where}[{i}]", f"{point} gives an invalid config: {e}") from None
        out.append(point)
    return out


def _models(sf: StudyFile, model: ModelSpec | None, comparison: bool, fail) -> dict[str, ModelSpec]:
    """Each arm's model (a single-model study: one arm named after its model)."""
    if comparison:
        return {name: _lookup_model(arm.model, f"arms.{name}.model", fail) for name, arm in sf.arms.items()}
    if model is not None and sf.model != model.name:
        raise fail("model", f"{sf.model!r} does not match the model given to the orchestrator ({model.name!r})")
    return {sf.model: model or _lookup_model(sf.model, "model", fail)}


def _preset(sf: StudyFile, preset: str, specs: dict[str, ModelSpec], comparison: bool, label: str,
            fail) -> tuple[PresetSection, str]:
    """The study's section for ``preset`` (empty if it has none) and the model budget it runs at."""
    section = sf.presets.get(preset)
    model_presets = set.intersection(*(set(m.config_cls.PRESETS) for m in specs.values()))
    if section is None and preset not in model_presets:
        raise StudyError(f"{label}: unknown preset {preset!r}; this study knows "
                         f"{sorted(set(sf.presets) | model_presets)}")
    section = section or PresetSection()
    budget = section.budget or preset
    if budget not in model_presets:
        what = "model " + repr(sf.model) if not comparison else "every arm's model"
        raise fail(f"presets.{preset}.budget", f"{budget!r} is not a preset of {what} "
                                               f"(choose one of {sorted(model_presets)})")
    return section, budget


def _merged_fixed(sf: StudyFile, section: PresetSection, where: str, comparison: bool,
                  fail) -> tuple[dict[str, Any], dict[str, str]]:
    """The fixed Config fields with the preset's overrides, the dataset and the evaluation settings
    merged in; and where each was written (for errors)."""
    fixed = dict(sf.fixed)
    origin = {k: f"fixed.{k}" for k in fixed}
    dataset, at = (section.dataset, f"{where}.dataset") if section.dataset else (sf.dataset, "dataset")
    if dataset is not None and not comparison:
        if "dataset" in fixed:
            raise fail("fixed.dataset", "the dataset is already given by the top-level `dataset`")
        _check_datasets([absolute_dataset(dataset)], at, fail)
        fixed["dataset"], origin["dataset"] = dataset, at
    fixed.update(section.fixed or {})
    origin.update({k: f"{where}.fixed.{k}" for k in section.fixed or {}})
    if isinstance(fixed.get("dataset"), str):
        fixed["dataset"] = absolute_dataset(fixed["dataset"])
    evaluation = sf.evaluation.model_copy(update={k: v for k, v in (section.evaluation or Evaluation())
                                                  if v is not None})
    for key, attr in (("eval_protocol", "protocol"), ("eval_every", "interval"), ("final_protocol", "final_protocol")):
        value = getattr(evaluation, attr)
        if value is not None:
            if key in fixed:
                raise fail(origin[key], f"given twice: also as evaluation.{attr}")
            fixed[key], origin[key] = value, f"evaluation.{attr}"
    return fixed, origin


def _check_grid_size(spaces: list[dict[str, Any]], n_datasets: int | None, fail) -> None:
    """A grid study's points (a comparison's: every arm's grid on every dataset), at most MAX_GRID."""
    for space in spaces if n_datasets is None else []:
        for name, spec in space.items():
            if spec.n_points() is None:
                raise fail(f"search.space.{name}", f"a {spec.type} range has no grid points: give `values: [...]` "
                                                   "(or use type int / categorical)")
    size = sum(grid_size(space) for space in spaces) * (n_datasets or 1)
    if size > MAX_GRID:
        raise fail("search.space", f"the grid has {size:,} points (more than {MAX_GRID:,})")


def _check_sampler(sampler: str, n_trials: int | None, space: dict[str, Any], n_objectives: int, fail) -> None:
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


def _check_shape(sf: StudyFile, model: ModelSpec | None, fail) -> bool:
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


def _check_protocols(arms: list[Arm], probes: list, fail) -> None:
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


def _lookup_model(name: str, where: str, fail) -> ModelSpec:
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


def _check_datasets(datasets: list[str], where: str, fail) -> None:
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


def _arm_sections(sf: StudyFile, section: PresetSection, where: str, so: SearchOverride, fail) -> dict:
    """``{arm name: (its own fixed fields, its space, where each was written)}``, preset applied."""
    if sf.arms is None:
        space = dict(sf.search.space)
        for name, spec in (so.space or {}).items():
            if name not in space:
                raise fail(f"{where}.search.space.{name}", "a preset may only change parameters the study searches; "
                                                           f"the study searches {list(space)}")
            space[name] = spec
        return {sf.model: ({}, space, {})}
    out = {}
    for name, arm in sf.arms.items():
        override = (section.arms or {}).get(name) or ArmOverride()
        fixed = {**arm.fixed, **(override.fixed or {})}
        origin = {k: f"arms.{name}.fixed.{k}" for k in arm.fixed}
        origin.update({k: f"{where}.arms.{name}.fixed.{k}" for k in override.fixed or {}})
        origin.update({k: f"arms.{name}.space.{k}" for k in arm.space if k not in fixed})  # fixed: named there
        space = dict(arm.space)
        for p, spec in (override.space or {}).items():
            if p not in space:
                raise fail(f"{where}.arms.{name}.space.{p}", "a preset may only change parameters the arm searches; "
                                                            f"arm {name!r} searches {list(space)}")
            space[p] = spec
            if p not in fixed:
                origin[p] = f"{where}.arms.{name}.space.{p}"
        for p, spec in space.items():
            if spec.n_points() is None:
                at = f"{where}.arms.{name}.space.{p}" if p in (override.space or {}) else f"arms.{name}.space.{p}"
                raise fail(at, f"a {spec.type} range has no grid points: give `values: [...]` "
                                      "(a comparison runs every grid point)")
        out[name] = (fixed, space, origin)
    return out


def _check_fields(cfg_cls, model_name: str, fixed: dict, space: dict, origin: dict, comparison: bool, fail) -> None:
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


def _resolve_early_stopping(early: EarlyStopping, objectives: list[Objective], probe, fail) -> EarlyStopping:
    protocol = getattr(probe, "eval_protocol", "fast")
    metric = early.metric or f"{protocol}/{objectives[0].metric}"
    if "/" not in metric:
        raise fail("early_stopping.metric", f"{metric!r} is not an in-training score; write "
                                            f"'{protocol}/{metric}' (protocol/score)")
    mode = early.mode
    if mode is None:
        match = [o for o in objectives if o.metric == metric.split("/", 1)[1]]
        mode = "min" if match and match[0].direction == "minimize" else "max"
    interval = getattr(probe, "eval_every", 0)
    if not interval:
        raise fail("early_stopping", "needs in-training scores: set evaluation.interval > 0")
    return early.model_copy(update=dict(metric=metric, mode=mode, grace_period=early.grace_period or interval))


def _check_configs(cfg_cls, budget, fixed, space, seed, origin, fail) -> None:
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



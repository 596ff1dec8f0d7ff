"""Resolve a study file for one preset into a :class:`~orchestrator.study_file.plan.Study`, checked
against its models (the checks: :mod:`orchestrator.study_file.checks`): every field of the file is a
model Config field or a study setting, every grid point builds a valid Config, and errors name the
file and the line (``studies/x.yaml: fixed.steps: ...``).

Example:
    >>> study = load_study("ablation_dims", preset="smoke")
    >>> study.budget, study.models
    ('smoke', ['did'])
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from did_core.models import ConfigError, ModelSpec

from .checks import (absolute_dataset, check_configs, check_datasets, check_fields, check_grid_size, check_protocols,
                     check_sampler, check_shape, lookup_model)
from .objectives import check_objectives
from ..verdicts.sequential import SeedPlan
from .plan import Arm, Study, comparison_space, first_point, grid_size, product
from .reader import StudyError, read_study_file
from .schema import (ArmOverride, EarlyStopping, Evaluation, Objective, PresetSection, Search, SearchOverride, StudyFile,
                     validate)

MAX_TRIALS = 100_000  # configurations x seeds


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

    comparison = check_shape(sf, model, fail)
    specs = _models(sf, model, comparison, fail)
    section, budget = _preset(sf, preset, specs, comparison, label, fail)
    where = f"presets.{preset}"
    fixed, origin = _merged_fixed(sf, section, where, comparison, fail)
    seeds = section.seeds if section.seeds is not None else sf.seeds
    seed_plan = None
    if isinstance(seeds, dict):
        seed_plan = SeedPlan.sequential(seeds["initial"], seeds["step"], seeds["maximum"], seeds.get("first", 0))
        seeds = list(seed_plan.seeds[:seed_plan.sizes[0]])
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    search = sf.search or Search(sampler="grid")
    so = section.search or SearchOverride()
    datasets = [absolute_dataset(d) for d in section.datasets or sf.datasets or ([sf.dataset] if sf.dataset else [])]
    if comparison:
        check_datasets(datasets, f"{where}.datasets" if section.datasets else "datasets", fail)

    # the arms: each one's fields must belong to its model's Config and build valid configs
    sections = _arm_sections(sf, section, where, so, fail)
    if search.sampler == "grid":  # counted before any grid is built or probed (high: 1000000000000)
        check_grid_size([sp for _, sp, _ in sections.values()], len(datasets) if comparison else None, fail)
    arms, probes = [], []
    for name, (arm_fixed, arm_space, arm_origin) in sections.items():
        cfg_cls = specs[name].config_cls
        arm_fixed = {**fixed, **arm_fixed}
        arm_origin = {**origin, **arm_origin}
        check_fields(cfg_cls, sf.model or specs[name].name, arm_fixed, arm_space, arm_origin, comparison, fail)
        probe_fixed = {**arm_fixed, "dataset": datasets[0]} if comparison else arm_fixed
        check_configs(cfg_cls, budget, probe_fixed, arm_space, seeds[0], arm_origin, fail)
        probe = cfg_cls.from_preset(budget, **probe_fixed, **first_point(arm_space), seed=seeds[0])
        probes.append(probe)
        arms.append(Arm(label=name, model=specs[name].name, fixed=arm_fixed, space=arm_space,
                        steps=int(getattr(probe, "steps", 0)), config_cls=cfg_cls))
    space = comparison_space(arms, datasets) if comparison else arms[0].space
    check_protocols(arms, probes, fail)
    check_objectives(arms, probes, sf.objectives, fail)
    n_trials = so.n_trials or search.n_trials
    check_sampler(search.sampler, n_trials, space, len(sf.objectives), fail)
    controls = _controls(so.controls if so.controls is not None else search.controls, search.sampler, arms,
                         comparison, budget, seeds[0], "search.controls" if so.controls is None
                         else f"{where}.search.controls", fail)
    planned = (len(datasets) * sum(grid_size(a.space) for a in arms) if comparison
               else grid_size(space) + len(controls)) if search.sampler == "grid" else n_trials
    n_seeds = seed_plan.maximum if seed_plan else len(seeds)
    if planned * n_seeds > MAX_TRIALS:
        raise fail("seeds" if planned <= MAX_TRIALS else "search.n_trials",
                   f"the study plans {planned * n_seeds:,} trials ({planned:,} configurations x {n_seeds:,} "
                   f"seeds), more than {MAX_TRIALS:,}")
    population = so.population_size or search.population_size
    if population is not None and search.sampler != "nsga2":
        raise fail("search.population_size", "only the nsga2 sampler has a population")

    early = section.early_stopping or sf.early_stopping
    early = None if early is None or early.type == "none" else _resolve_early_stopping(early, sf.objectives,
                                                                                        probes[0], fail)
    kind = "comparison" if comparison else sf.kind or (
        "ablation" if search.sampler == "grid" and len(space) == 1 else "search")
    if seed_plan is not None and (search.sampler != "grid" or kind == "search"):
        raise fail(f"{where}.seeds" if section.seeds is not None else "seeds",
                   "a seed plan adds seeds where an ablation's or a comparison's decisions are undecided; this "
                   f"study is a {kind} with the {search.sampler} sampler: give a count or a list")
    return Study(
        name=sf.name, preset=preset, budget=budget, fixed=fixed, space=space, sampler=search.sampler,
        n_trials=n_trials, sampler_seed=so.seed if so.seed is not None else search.seed, population_size=population,
        seeds=seeds, objectives=list(sf.objectives), early_stopping=early,
        resources=section.resources or sf.resources, max_concurrent=section.max_concurrent or sf.max_concurrent,
        storage=search.storage, retries=sf.retries, kind=kind, arms=arms, datasets=datasets if comparison else [],
        steps=max(a.steps for a in arms), eval_protocol=str(getattr(probes[0], "eval_protocol", "fast")),
        final_protocol=str(getattr(probes[0], "final_protocol", "dlib")),
        description=sf.description, source=label, source_text=text, controls=controls, seed_plan=seed_plan,
        trackers=list(sf.trackers),
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
        return {name: lookup_model(arm.model, f"arms.{name}.model", fail) for name, arm in sf.arms.items()}
    if model is not None and sf.model != model.name:
        raise fail("model", f"{sf.model!r} does not match the model given to the orchestrator ({model.name!r})")
    return {sf.model: model or lookup_model(sf.model, "model", fail)}


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
        check_datasets([absolute_dataset(dataset)], at, fail)
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

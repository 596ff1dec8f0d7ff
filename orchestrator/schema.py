"""The study file format (``studies/*.yaml``): a pydantic schema, and its resolution for one preset.

A study names a registered model, the parameters it fixes and the ones it searches, how many
seeds each configuration runs with, what to optimise, and how to spend the budget. Errors name
the file and the field (``studies/x.yaml: search.space.lambda_h.low: ...``).

Example:
    >>> study = load_study("ablation_dims", preset="smoke")
    >>> study.sampler, study.planned_trials
    ('grid', 10)

A study file::

    name: loss_weights
    model: did
    dataset: dsprites
    fixed: {n_compare_dims: 3}             # model Config fields, the same in every trial
    search:
      sampler: tpe                         # grid | tpe | random | cmaes | nsga2
      n_trials: 30                         # configurations (each runs once per seed); not for grid
      seed: 0                              # the sampler's own seed
      space:
        lambda_h:  {type: log_float, low: 0.1, high: 10}
        n_critic:  {type: int, low: 1, high: 8}
        contrast:  {type: categorical, choices: [infonce, distance]}
      storage: null                        # Optuna storage URL; default sqlite:///RUN_DIR/optuna.db
    seeds: 3                               # a count (0, 1, 2) or a list [0, 7, 9]
    objectives: [{metric: mig, direction: maximize}]
    early_stopping: {type: asha, grace_period: 1000}   # metric default: <eval protocol>/<first objective>
    resources: {cpus: 1, gpus: 0.5}        # per trial; gpus only used when the cluster has GPUs
    evaluation: {protocol: fast, interval: 1000, final_protocol: dlib}
    presets:                               # per-budget overrides; `budget` is the model preset
      smoke: {seeds: 1, search: {n_trials: 4}}
      demo:  {budget: smoke, seeds: 2, fixed: {steps: 200}}

A comparison (several models, each at its own grid, on several datasets) names `arms` instead of
`model`; every configuration of every arm runs on every dataset with every seed. The Optuna
parameters are then `method` (the arm's name), `dataset` and the arms' own parameters::

    name: baselines
    datasets: [dsprites, shapes3d]
    arms:
      did:      {model: did}
      beta_vae: {model: beta_vae, space: {beta: {type: categorical, choices: [1.0, 4.0, 16.0]}}}
    fixed: {eval_metrics: "mig,dci,sap,gaussian_tc"}   # fields every arm's model has
    seeds: 3
    objectives: [{metric: mig}]
    presets:
      smoke: {datasets: [dsprites], arms: {beta_vae: {space: {beta: {type: categorical, choices: [4.0]}}}}}
"""
from __future__ import annotations

import copy
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from did_core.models import ConfigError, ModelSpec, available_models, get_model

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STUDIES_DIR = PROJECT_ROOT / "studies"
METHOD = "method"  # the Optuna parameter naming a comparison's arm
MAX_GRID = 100_000
Scalar = Union[bool, int, float, str]


class StudyError(ValueError):
    """A study file that cannot run; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- the search space: one entry per parameter, `type` decides the rest ----------------------

class IntParam(_Strict):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False
    values: list[int] | None = None  # the only values to try (grid points); default low..high by step

    @model_validator(mode="after")
    def _check(self):
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("log: true needs low >= 1 and step 1")
        _check_values_in_range(self.values, self.low, self.high)
        return self

    def grid(self) -> list[int] | None:
        return list(self.values) if self.values else list(range(self.low, self.high + 1, self.step))


class _FloatRange(_Strict):
    low: float
    high: float
    values: list[float] | None = None  # the only values to try (a float range has no grid of its own)

    @model_validator(mode="after")
    def _check(self):
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        _check_values_in_range(self.values, self.low, self.high)
        return self

    def grid(self) -> list[float] | None:
        return list(self.values) if self.values else None


class FloatParam(_FloatRange):
    type: Literal["float"]
    step: float | None = Field(None, gt=0)


class LogFloatParam(_FloatRange):
    type: Literal["log_float"]
    low: float = Field(gt=0)
    high: float = Field(gt=0)


class CategoricalParam(_Strict):
    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _unique(cls, v):
        if len({json.dumps(c) for c in v}) != len(v):
            raise ValueError("choices must be distinct")
        return v

    def grid(self) -> list:
        return list(self.choices)


Param = Annotated[Union[IntParam, FloatParam, LogFloatParam, CategoricalParam], Field(discriminator="type")]
PARAM_TAGS = ("int", "float", "log_float", "categorical")


def _check_values_in_range(values, low, high):
    if values is not None:
        if not values:
            raise ValueError("values must not be empty")
        bad = [v for v in values if not low <= v <= high]
        if bad:
            raise ValueError(f"values {bad} lie outside [low, high] = [{low}, {high}]")


# ---- the other sections ----------------------------------------------------------------------

class Objective(_Strict):
    metric: str = Field(min_length=1)
    direction: Literal["maximize", "minimize"] = "maximize"


class Search(_Strict):
    sampler: Literal["grid", "tpe", "random", "cmaes", "nsga2"]
    space: dict[str, Param] = Field(default_factory=dict)
    n_trials: int | None = Field(None, ge=1)
    seed: int = 0
    population_size: int | None = Field(None, ge=2)  # nsga2 only
    storage: str | None = None


class EarlyStopping(_Strict):
    type: Literal["asha", "none"] = "asha"  # "none" (or `early_stopping: false`) switches it off
    metric: str | None = None  # an in-training score, "<protocol>/<score>"; default: first objective
    mode: Literal["max", "min"] | None = None  # default: from the objective's direction
    grace_period: int | None = Field(None, ge=1)  # generator steps; default: the eval interval
    reduction_factor: float = Field(3.0, gt=1)
    brackets: int = Field(1, ge=1)


class Resources(_Strict):
    cpus: float = Field(1.0, gt=0)
    gpus: float = Field(1.0, ge=0)  # per trial when the cluster has GPUs; 0.25 = four trials per GPU

    @field_validator("gpus")
    @classmethod
    def _fraction_or_whole(cls, v):
        if v > 1 and not float(v).is_integer():
            raise ValueError("a GPU share above 1 must be a whole number of GPUs")
        return v


class Evaluation(_Strict):
    protocol: str | None = None  # in-training scores ("fast")
    interval: int | None = Field(None, ge=0)  # steps between them; 0 = only at the end
    final_protocol: str | None = None  # the scores at the end ("dlib")


def _seeds(v: Any) -> Any:
    ok = (isinstance(v, int) and not isinstance(v, bool) and v >= 1) or (
        isinstance(v, list) and v and all(isinstance(s, int) and not isinstance(s, bool) for s in v)
        and len(set(v)) == len(v))
    if not ok:
        raise ValueError(f"expected a count >= 1 or a non-empty list of distinct integers, got {v!r}")
    return v


def _switch_off(v: Any) -> Any:
    return {"type": "none"} if v is False else v


class SearchOverride(_Strict):
    space: dict[str, Param] | None = None  # replaces the named parameters' specs
    n_trials: int | None = Field(None, ge=1)
    seed: int | None = None
    population_size: int | None = Field(None, ge=2)


class ArmFile(_Strict):
    """One model of a comparison: its fixed fields and its grid (every point runs)."""

    model: str
    fixed: dict[str, Any] = Field(default_factory=dict)
    space: dict[str, Param] = Field(default_factory=dict)


class ArmOverride(_Strict):
    fixed: dict[str, Any] | None = None  # merged over the arm's `fixed`
    space: dict[str, Param] | None = None  # replaces the named parameters' specs


class PresetSection(_Strict):
    budget: str | None = None  # the model preset; default: this preset's own name
    seeds: Any = None
    fixed: dict[str, Any] | None = None  # merged over the study's `fixed`
    search: SearchOverride | None = None
    datasets: list[str] | None = Field(None, min_length=1)  # comparisons: replaces `datasets`
    arms: dict[str, ArmOverride] | None = None  # comparisons: per-arm overrides
    evaluation: Evaluation | None = None
    early_stopping: EarlyStopping | None = None  # false switches it off
    resources: Resources | None = None
    max_concurrent: int | None = Field(None, ge=1)

    @field_validator("seeds")
    @classmethod
    def _check_seeds(cls, v):
        return v if v is None else _seeds(v)

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _off(cls, v):
        return _switch_off(v)


class StudyFile(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    kind: Literal["ablation", "search", "comparison"] | None = None
    model: str | None = None  # one model ...
    arms: dict[str, ArmFile] | None = None  # ... or several (a comparison), each with its own grid
    dataset: str | None = None
    datasets: list[str] | None = Field(None, min_length=1)  # comparisons: every arm runs on each
    fixed: dict[str, Any] = Field(default_factory=dict)
    search: Search | None = None  # comparisons: grid only, and may be left out
    seeds: Any = 1
    objectives: list[Objective] = Field(min_length=1)
    early_stopping: EarlyStopping | None = None
    resources: Resources = Field(default_factory=Resources)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    max_concurrent: int | None = Field(None, ge=1)
    retries: int = Field(0, ge=0)  # Ray Tune re-runs of a trial whose process died
    presets: dict[str, PresetSection] = Field(default_factory=dict)

    @field_validator("seeds")
    @classmethod
    def _check_seeds(cls, v):
        return _seeds(v)

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _off(cls, v):
        return _switch_off(v)

    @field_validator("objectives")
    @classmethod
    def _distinct(cls, v):
        names = [o.metric for o in v]
        if len(set(names)) != len(names):
            raise ValueError(f"each metric at most once, got {names}")
        return v

    @field_validator("arms")
    @classmethod
    def _arm_names(cls, v):
        bad = [name for name in v or {} if not re.fullmatch(r"[A-Za-z0-9_.-]+", name)]
        if bad:
            raise ValueError(f"arm names may hold letters, digits, '_', '.', '-' only: {bad}")
        if v is not None and not v:
            raise ValueError("a comparison needs at least one arm")
        return v


# ---- the study as it runs: one preset applied, checked against the model ----------------------

@dataclass
class Arm:
    """One model of a study and what its trials share; a single-model study has one arm."""

    label: str  # the value of the `method` parameter in a comparison; the model name otherwise
    model: str
    fixed: dict[str, Any]  # Config fields every trial of this arm sets (study's, arm's, evaluation)
    space: dict[str, Any]  # this arm's own parameters
    steps: int = 0  # generator steps of one trial
    config_cls: type | None = None  # the model's Config

    @property
    def config_fields(self) -> frozenset[str]:
        return frozenset(self.config_cls.field_names())


@dataclass
class Study:
    """A study file resolved for one preset: everything the orchestrator needs, nothing optional."""

    name: str
    preset: str
    budget: str  # the model preset the trials start from
    model: str  # the model's name (a comparison: its models' names, comma-separated)
    fixed: dict[str, Any]  # model Config overrides shared by every trial (dataset and evaluation included)
    space: dict[str, Any]  # name -> IntParam | FloatParam | LogFloatParam | CategoricalParam
    sampler: str
    n_trials: int | None
    sampler_seed: int
    population_size: int | None
    seeds: list[int]
    objectives: list[Objective]
    early_stopping: EarlyStopping | None
    resources: Resources
    max_concurrent: int | None
    storage: str | None
    retries: int
    kind: str
    arms: list[Arm] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)  # a comparison's datasets
    steps: int = 0  # generator steps of one trial (the longest arm's)
    eval_protocol: str = "fast"  # the protocol of in-training scores
    final_protocol: str = "dlib"  # the protocol of the final scores
    description: str = ""
    source: str = ""  # the file it came from
    source_text: str = ""
    resolved: dict[str, Any] = field(default_factory=dict)  # this study as a plain dict (study.yaml of a run)

    @property
    def run_name(self) -> str:
        return f"{self.name}-{self.preset}"

    @property
    def comparison(self) -> bool:
        return self.kind == "comparison"

    def grid(self) -> list[dict[str, Any]]:
        """Every configuration of a grid study, in a fixed order (the first parameter varies slowest;
        a comparison: dataset, then arm, then the arm's grid)."""
        if not self.comparison:
            return _product(self.space)
        return [{METHOD: arm.label, "dataset": dataset, **point}
                for dataset in self.datasets for arm in self.arms for point in _product(arm.space)]

    def experiment(self, arm: Arm) -> dict[str, Any]:
        """What one arm's trials share as an experiment: its model Config at the study's budget and
        fixed fields, less the runtime fields, the searched parameters and the seed."""
        fixed = {**arm.fixed, "dataset": self.datasets[0]} if self.comparison else arm.fixed
        config = arm.config_cls.from_preset(self.budget, **fixed, **_first_point(arm.space), seed=self.seeds[0])
        skip = {*arm.space, "seed", *(["dataset"] if self.comparison else [])}  # a comparison lists its datasets
        return {k: v for k, v in config.experiment().items() if k not in skip}

    def defaults(self) -> dict[str, Any]:
        """Each searched parameter's value in the model Config under the study's budget and fixed
        fields (what an ablation compares against); a comparison's parameters belong to its arms."""
        if self.comparison:
            return {}
        arm = self.arms[0]
        config = arm.config_cls.from_preset(self.budget, **arm.fixed, seed=self.seeds[0])
        return {name: getattr(config, name) for name in arm.space}

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(a.model for a in self.arms))

    def arm_of(self, params: dict[str, Any]) -> Arm:
        if not self.comparison:
            return self.arms[0]
        return next(a for a in self.arms if a.label == params[METHOD])

    def has_all_params(self, params: dict[str, Any]) -> bool:
        """Whether ``params`` is a whole configuration (not one cut short before every value was set)."""
        if not self.comparison:
            return len(params) == len(self.space)
        labels = {a.label for a in self.arms}
        return params.get(METHOD) in labels and set(params) == {METHOD, "dataset", *self.arm_of(params).space}

    @property
    def n_configs(self) -> int:
        return len(self.grid()) if self.sampler == "grid" else int(self.n_trials)

    @property
    def planned_trials(self) -> int:
        return self.n_configs * len(self.seeds)


def _grid_size(space: dict[str, Any]) -> int:
    return math.prod(len(spec.grid()) for spec in space.values())


def _product(space: dict[str, Any]) -> list[dict[str, Any]]:
    names = list(space)
    return [dict(zip(names, combo)) for combo in itertools.product(*(space[n].grid() for n in names))]


def find_study_file(name_or_path: str | Path) -> Path:
    """A path as given, else ``studies/NAME.yaml`` (in the working directory, then the project)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise StudyError(f"{p}: no such study file")
        return p
    for d in (Path.cwd() / "studies", STUDIES_DIR):
        if (d / f"{p.name}.yaml").is_file():
            return d / f"{p.name}.yaml"
    raise StudyError(f"no study named {str(name_or_path)!r}; built-in studies: {list_studies()}")


def list_studies() -> list[str]:
    return sorted(p.stem for p in STUDIES_DIR.glob("*.yaml"))


def load_study(name_or_path: str | Path, preset: str = "smoke", model: ModelSpec | None = None) -> Study:
    """Read, validate and resolve a study file for ``preset``; raises :class:`StudyError`.

    ``model`` replaces the registry lookup of the study's ``model`` (tests, benchmarks).
    """
    path = find_study_file(name_or_path)
    label = _label(path)
    text = path.read_text()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise StudyError(f"{label}: not valid YAML: {e}") from None
    return parse_study(raw, preset, model=model, label=label, text=text)


def parse_study(raw: Any, preset: str, model: ModelSpec | None = None, label: str = "<study>",
                text: str = "") -> Study:
    if not isinstance(raw, dict):
        raise StudyError(f"{label}: expected a mapping of study fields at the top level, got {type(raw).__name__}")
    try:
        sf = StudyFile.model_validate(raw)
    except ValidationError as e:
        raise StudyError(_format_validation(label, e)) from None

    def fail(where: str, why: str) -> StudyError:
        return StudyError(f"{label}: {where}: {why}")

    comparison = _check_shape(sf, model, fail)
    # the models and their config fields
    if comparison:
        specs = {name: _lookup_model(arm.model, f"arms.{name}.model", fail) for name, arm in sf.arms.items()}
    else:
        if model is not None and sf.model != model.name:
            raise fail("model", f"{sf.model!r} does not match the model given to the orchestrator ({model.name!r})")
        specs = {sf.model: model or _lookup_model(sf.model, "model", fail)}
    what = "model " + repr(sf.model) if not comparison else "every arm's model"

    # the preset
    section = sf.presets.get(preset)
    model_presets = set.intersection(*(set(m.config_cls.PRESETS) for m in specs.values()))
    if section is None and preset not in model_presets:
        raise StudyError(f"{label}: unknown preset {preset!r}; this study knows "
                         f"{sorted(set(sf.presets) | model_presets)}")
    section = section or PresetSection()
    where = f"presets.{preset}"
    budget = section.budget or preset
    if budget not in model_presets:
        raise fail(f"{where}.budget", f"{budget!r} is not a preset of {what} (choose one of {sorted(model_presets)})")

    # merge the preset's overrides over the study
    fixed = dict(sf.fixed)
    origin = {k: f"fixed.{k}" for k in fixed}  # where each fixed value was written, for errors
    if sf.dataset is not None and not comparison:
        if "dataset" in fixed:
            raise fail("fixed.dataset", "the dataset is already given by the top-level `dataset`")
        fixed["dataset"], origin["dataset"] = sf.dataset, "dataset"
    fixed.update(section.fixed or {})
    origin.update({k: f"{where}.fixed.{k}" for k in section.fixed or {}})
    evaluation = sf.evaluation.model_copy(update={k: v for k, v in (section.evaluation or Evaluation())
                                                  if v is not None})
    for key, attr in (("eval_protocol", "protocol"), ("eval_every", "interval"), ("final_protocol", "final_protocol")):
        value = getattr(evaluation, attr)
        if value is not None:
            if key in fixed:
                raise fail(origin[key], f"given twice: also as evaluation.{attr}")
            fixed[key], origin[key] = value, f"evaluation.{attr}"
    early = section.early_stopping or sf.early_stopping
    early = None if early is None or early.type == "none" else early
    seeds = section.seeds if section.seeds is not None else sf.seeds
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    search = sf.search or Search(sampler="grid")
    so = section.search or SearchOverride()
    n_trials = so.n_trials or search.n_trials
    datasets = list(section.datasets or sf.datasets or ([sf.dataset] if sf.dataset else []))
    if comparison:
        _check_datasets(datasets, f"{where}.datasets" if section.datasets else "datasets", fail)

    # the arms: each one's fields must belong to its model's Config and build valid configs
    arms, probes = [], []
    for name, (arm_fixed, arm_space, arm_origin) in _arm_sections(sf, section, where, so, fail).items():
        cfg_cls = specs[name].config_cls
        arm_fixed = {**fixed, **arm_fixed}
        arm_origin = {**origin, **arm_origin}
        _check_fields(cfg_cls, sf.model or specs[name].name, arm_fixed, arm_space, arm_origin, comparison, fail)
        probe_fixed = {**arm_fixed, "dataset": datasets[0]} if comparison else arm_fixed
        _check_configs(cfg_cls, budget, probe_fixed, arm_space, seeds[0], arm_origin, fail)
        probe = cfg_cls.from_preset(budget, **probe_fixed, **_first_point(arm_space), seed=seeds[0])
        probes.append(probe)
        arms.append(Arm(label=name, model=specs[name].name, fixed=arm_fixed, space=arm_space,
                        steps=int(getattr(probe, "steps", 0)), config_cls=cfg_cls))
    space = _comparison_space(arms, datasets) if comparison else arms[0].space
    _check_protocols(arms, probes, fail)

    # the sampler and the objectives
    sampler = search.sampler
    if sampler == "grid":
        if n_trials is not None:
            raise fail("search.n_trials", "the grid sampler runs every grid point; leave n_trials out")
        if not space:
            raise fail("search.space", "the grid sampler needs at least one parameter")
        for name, spec in space.items():
            if spec.grid() is None:
                raise fail(f"search.space.{name}", f"a {spec.type} range has no grid points: give `values: [...]` "
                                                   "(or use type int / categorical)")
        size = len(datasets) * sum(_grid_size(arm.space) for arm in arms) if comparison else _grid_size(space)
        if size > MAX_GRID:
            raise fail("search.space", f"the grid has {size} points (more than {MAX_GRID})")
    else:
        if n_trials is None:
            raise fail("search.n_trials", f"the {sampler} sampler needs n_trials (configurations to try)")
        if not space:
            raise fail("search.space", f"the {sampler} sampler needs at least one parameter to search")
    if sampler == "cmaes":
        if len(sf.objectives) > 1:
            raise fail("search.sampler", "cmaes optimises one objective; use nsga2 or tpe for several")
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise fail("search.sampler", "cmaes needs the Python package `cmaes`, which is not installed "
                                         "(pip install cmaes)") from None
    population = so.population_size or search.population_size
    if population is not None and sampler != "nsga2":
        raise fail("search.population_size", "only the nsga2 sampler has a population")

    probe = probes[0]
    if early is not None:
        early = _resolve_early_stopping(early, sf.objectives, probe, fail)

    resources = section.resources or sf.resources
    max_concurrent = section.max_concurrent or sf.max_concurrent
    kind = "comparison" if comparison else sf.kind or ("ablation" if sampler == "grid" and len(space) == 1 else "search")
    study = Study(
        name=sf.name, preset=preset, budget=budget, model=", ".join(dict.fromkeys(a.model for a in arms)),
        fixed=fixed, space=space, sampler=sampler, n_trials=n_trials,
        sampler_seed=so.seed if so.seed is not None else search.seed, population_size=population, seeds=seeds,
        objectives=list(sf.objectives), early_stopping=early, resources=resources, max_concurrent=max_concurrent,
        storage=search.storage, retries=sf.retries, kind=kind, arms=arms, datasets=datasets if comparison else [],
        steps=max(a.steps for a in arms), eval_protocol=str(getattr(probe, "eval_protocol", "fast")),
        final_protocol=str(getattr(probe, "final_protocol", "dlib")),
        description=sf.description, source=label, source_text=text,
    )
    study.resolved = _as_dict(study)
    return study


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
    if name not in available_models():
        raise fail(where, f"unknown model {name!r}; registered models are {available_models()}")
    try:
        return get_model(name)
    except ImportError as e:
        raise fail(where, f"model {name!r} cannot be imported: {e}") from None


def _check_datasets(datasets: list[str], where: str, fail) -> None:
    from did_core.data import available_datasets

    unknown = [d for d in datasets if d not in available_datasets()]
    if unknown:
        raise fail(where, f"unknown dataset(s) {unknown}; known datasets are {available_datasets()}")
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
            if spec.grid() is None:
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


def _comparison_space(arms: list[Arm], datasets: list[str]) -> dict[str, Any]:
    """The Optuna parameters of a comparison: the arm, the dataset, and for each parameter name the
    values any arm gives it (one distribution per name, as Optuna requires)."""
    values: dict[str, list] = {}
    for arm in arms:
        for name, spec in arm.space.items():
            values.setdefault(name, [])
            values[name] += [v for v in spec.grid() if v not in values[name]]
    space = {METHOD: CategoricalParam(type="categorical", choices=[a.label for a in arms]),
             "dataset": CategoricalParam(type="categorical", choices=datasets)}
    return {**space, **{n: CategoricalParam(type="categorical", choices=v) for n, v in values.items()}}


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
        cfg_cls.from_preset(budget, **fixed, **_first_point(space), seed=seed)
    except (ConfigError, TypeError, ValueError) as e:
        field = getattr(e, "field", None)  # a ConfigError names its field: point at the study's line for it
        if field in origin:
            raise fail(origin[field], e.why) from None
        raise fail("fixed", str(e)) from None
    for name, spec in space.items():
        points = spec.grid() or [spec.low, spec.high]
        for value in points:
            try:
                cfg_cls.from_preset(budget, **fixed, **{**_first_point(space), name: value}, seed=seed)
            except (ConfigError, TypeError, ValueError) as e:
                raise fail(origin.get(name, f"search.space.{name}"), f"value {value!r} gives an invalid config: {e}") from None


def _first_point(space) -> dict[str, Any]:
    return {n: (s.grid() or [s.low])[0] for n, s in space.items()}


def _as_dict(study: Study) -> dict[str, Any]:
    """The resolved study in the study-file format (preset applied, no `presets`)."""
    out = {
        "name": study.name, "description": study.description, "kind": study.kind, "model": study.model,
        "preset": study.preset, "budget": study.budget, "source": study.source,
        "fixed": copy.deepcopy(study.fixed),
        "search": {"sampler": study.sampler,
                   "space": {n: s.model_dump(exclude_none=True) for n, s in study.space.items()},
                   "n_trials": study.n_trials, "seed": study.sampler_seed,
                   "population_size": study.population_size, "storage": study.storage},
        "steps": study.steps, "eval_protocol": study.eval_protocol, "final_protocol": study.final_protocol,
        "seeds": list(study.seeds),
        "objectives": [o.model_dump() for o in study.objectives],
        "early_stopping": study.early_stopping.model_dump() if study.early_stopping else None,
        "resources": study.resources.model_dump(), "max_concurrent": study.max_concurrent,
        "retries": study.retries,
    }
    out["search"] = {k: v for k, v in out["search"].items() if v is not None}
    if study.comparison:  # what each arm adds to the shared `fixed`, its grid and its length
        out["datasets"] = list(study.datasets)
        out["arms"] = {a.label: {"model": a.model,
                                 "fixed": {k: v for k, v in a.fixed.items() if study.fixed.get(k, object()) != v},
                                 "space": {n: s.model_dump(exclude_none=True) for n, s in a.space.items()},
                                 "steps": a.steps} for a in study.arms}
    return out


def _label(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _format_validation(label: str, error: ValidationError) -> str:
    lines = []
    for err in error.errors():
        loc = list(err["loc"])
        # drop the union tag pydantic inserts after a parameter name: space.lambda_h.log_float.low
        loc = [p for i, p in enumerate(loc) if not (p in PARAM_TAGS and i >= 2 and loc[i - 2] == "space")]
        where = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "union_tag_invalid":
            msg = f"unknown parameter type {err.get('input', {}).get('type')!r}; use one of {list(PARAM_TAGS)}" \
                if isinstance(err.get("input"), dict) else msg
        elif err["type"] == "union_tag_not_found":
            msg = f"missing `type` ({' | '.join(PARAM_TAGS)})"
        lines.append(f"{where}: {msg}")
    first, rest = lines[0], lines[1:]
    more = "".join(f"\n  also {line}" for line in rest[:5])
    return f"{label}: {first}{more}"

"""A study resolved for one preset, and the plan of its trials.

A study is a list of arms (a single-model study is a comparison of one arm without the
``method`` and ``dataset`` axes): every configuration is an arm's grid point, or a sampler's
proposal, run once per seed.

Example:
    >>> study = load_study("ablation_dims", preset="smoke")
    >>> study.sampler, study.planned_trials, study.grid()[0]
    ('grid', 10, {'n_compare_dims': 1})
"""
from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from ..verdicts.sequential import SeedPlan
from .schema import CategoricalParam, EarlyStopping, Objective, Resources

METHOD = "method"  # the Optuna parameter naming a comparison's arm
DATASET = "dataset"  # the Optuna parameter naming a comparison's dataset


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
    fixed: dict[str, Any]  # model Config overrides shared by every trial (dataset and evaluation included)
    space: dict[str, Any]  # name -> IntParam | FloatParam | LogFloatParam | CategoricalParam
    sampler: str
    n_trials: int | None
    sampler_seed: int
    population_size: int | None
    seeds: list[int]  # the seeds every configuration runs with (a seed plan's first round)
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
    controls: list[dict[str, Any]] = field(default_factory=list)  # whole configurations run beside the grid
    seed_plan: SeedPlan | None = None  # `seeds: {initial, step, maximum}`: rounds added where undecided
    trackers: list[str] = field(default_factory=list)  # orchestrator.running.trackers: tensorboard, mlflow
    tracking_uri: str | None = None  # MLflow's store (default: RUN_DIR/mlflow.db); set by the command, not the file

    @property
    def plan(self) -> SeedPlan:
        """The seeds and looks of the study's decisions (a fixed list: one look)."""
        return self.seed_plan or SeedPlan.fixed(self.seeds)

    @property
    def sequential(self) -> bool:
        return self.seed_plan is not None

    @property
    def steps_text(self) -> str:
        """``1500 steps per trial``; a comparison's per arm."""
        if not self.comparison:
            return f"{self.steps} steps per trial"
        return "steps per trial: " + ", ".join(f"{a.label} {a.steps}" for a in self.arms)

    @property
    def run_name(self) -> str:
        return f"{self.name}-{self.preset}"

    @property
    def comparison(self) -> bool:
        return self.kind == "comparison"

    def axes(self, arm: Arm, dataset: str | None = None) -> dict[str, Any]:
        """The parameters that pick an arm and a dataset: ``method`` and ``dataset`` in a comparison,
        none in a single-model study (a comparison of one arm on its one dataset)."""
        return {METHOD: arm.label, DATASET: dataset} if self.comparison else {}

    def grid(self) -> list[dict[str, Any]]:
        """Every configuration of a grid study, in a fixed order: dataset, then arm, then the arm's
        grid (whose first parameter varies slowest); a single-model study's controls last."""
        datasets = self.datasets if self.comparison else [None]
        return [{**self.axes(arm, dataset), **point}
                for dataset in datasets for arm in self.arms for point in product(arm.space)] + self.controls

    def experiment(self, arm: Arm) -> dict[str, Any]:
        """What one arm's trials share as an experiment: its model Config at the study's budget and
        fixed fields, less the runtime fields, the searched parameters and the seed."""
        axes = {k: v for k, v in self.axes(arm, self.datasets[0] if self.comparison else None).items() if k == DATASET}
        config = arm.config_cls.from_preset(self.budget, **arm.fixed, **axes, **first_point(arm.space),
                                            seed=self.seeds[0])
        skip = {*arm.space, "seed", *self.axes(arm)}  # a comparison lists its datasets itself
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

    def arm_of(self, params: dict[str, Any]) -> Arm | None:
        """The arm a configuration belongs to (None when its parameters name none)."""
        return next((a for a in self.arms if not self.comparison or a.label == params.get(METHOD)), None)

    def has_all_params(self, params: dict[str, Any]) -> bool:
        """Whether ``params`` is a whole configuration (not one cut short before every value was set)."""
        arm = self.arm_of(params)
        return arm is not None and set(params) == {*self.axes(arm), *arm.space}

    @property
    def n_configs(self) -> int:
        return len(self.grid()) if self.sampler == "grid" else int(self.n_trials)

    @property
    def planned_trials(self) -> int:
        return self.n_configs * len(self.seeds)


def grid_size(space: dict[str, Any]) -> int:
    """The number of grid points (every parameter has a grid), counted without building the grid."""
    return math.prod(spec.n_points() for spec in space.values())


def product(space: dict[str, Any]) -> list[dict[str, Any]]:
    names = list(space)
    return [dict(zip(names, combo)) for combo in itertools.product(*(space[n].grid() for n in names))]


def comparison_space(arms: list[Arm], datasets: list[str]) -> dict[str, Any]:
    """The Optuna parameters of a comparison: the arm, the dataset, and for each parameter name the
    values any arm gives it (one distribution per name, as Optuna requires)."""
    values: dict[str, list] = {}
    for arm in arms:
        for name, spec in arm.space.items():
            values.setdefault(name, [])
            values[name] += [v for v in spec.grid() if v not in values[name]]
    space = {METHOD: CategoricalParam(type="categorical", choices=[a.label for a in arms]),
             DATASET: CategoricalParam(type="categorical", choices=datasets)}
    return {**space, **{n: CategoricalParam(type="categorical", choices=v) for n, v in values.items()}}


def first_point(space) -> dict[str, Any]:
    """Each parameter's first grid point (its low end for a range), without building the grid."""
    return {n: (getattr(s, "values", None) or getattr(s, "choices", None) or [s.low])[0] for n, s in space.items()}


def study_as_dict(study: Study) -> dict[str, Any]:
    """The resolved study in the study-file format (preset applied, no `presets`)."""
    out = {
        "name": study.name, "description": study.description, "kind": study.kind,
        "preset": study.preset, "budget": study.budget, "source": study.source,
        "fixed": copy.deepcopy(study.fixed),
        "search": {"sampler": study.sampler,
                   "space": {n: s.model_dump(exclude_none=True) for n, s in study.space.items()},
                   "n_trials": study.n_trials, "seed": study.sampler_seed,
                   "population_size": study.population_size, "storage": study.storage,
                   "controls": copy.deepcopy(study.controls) or None},
        "steps": study.steps, "eval_protocol": study.eval_protocol, "final_protocol": study.final_protocol,
        "seeds": ({"initial": len(study.seeds), "step": _step(study.seed_plan), "maximum": study.seed_plan.maximum,
                   "first": study.seed_plan.seeds[0]} if study.sequential else list(study.seeds)),
        "objectives": [o.model_dump() for o in study.objectives],
        "early_stopping": study.early_stopping.model_dump() if study.early_stopping else None,
        "resources": study.resources.model_dump(), "max_concurrent": study.max_concurrent,
        "retries": study.retries,
    }
    out["search"] = {k: v for k, v in out["search"].items() if v is not None}
    if not study.comparison:
        out = {**{k: out[k] for k in ("name", "description", "kind")}, "model": study.arms[0].model, **out}
    if study.comparison:  # what each arm adds to the shared `fixed`, its grid and its length
        out["datasets"] = list(study.datasets)
        out["arms"] = {a.label: {"model": a.model,
                                 "fixed": {k: v for k, v in a.fixed.items() if study.fixed.get(k, object()) != v},
                                 "space": {n: s.model_dump(exclude_none=True) for n, s in a.space.items()},
                                 "steps": a.steps} for a in study.arms}
    return out




def _step(plan: SeedPlan) -> int:
    return plan.sizes[1] - plan.sizes[0]

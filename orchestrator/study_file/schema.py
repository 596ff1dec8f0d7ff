"""The study file format (``studies/*.yaml``): a pydantic schema. Finding and reading a file is
:mod:`orchestrator.study_file.reader`.

Resolving a file for one preset is :mod:`orchestrator.study_file.resolve`; the study it yields, and its
trials, :mod:`orchestrator.study_file.plan`.

A study names a registered model, the parameters it fixes and the ones it searches, how many
seeds each configuration runs with, what to optimise, and how to spend the budget. Errors name
the file and the field (``studies/x.yaml: search.space.lambda_h.low: ...``).

Example:
    >>> raw, label, text = read_study_file("ablation_dims")
    >>> validate(raw, label).search.sampler
    'grid'

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
    seeds: 3                               # a count (0, 1, 2), a list [0, 7, 9], or a plan (below)
    objectives: [{metric: mig, direction: maximize}]   # alpha: 0.05, margin: 0.03 decide its comparisons
    early_stopping: {type: asha, grace_period: 1000}   # metric default: <eval protocol>/<first objective>
    resources: {cpus: 1, gpus: 0.5}        # per trial; gpus only used when the cluster has GPUs
    evaluation: {protocol: fast, interval: 1000, final_protocol: dlib}
    trackers: [tensorboard]                # also write each trial to these (orchestrator.running.trackers)
    presets:                               # per-budget overrides; `budget` is the model preset
      smoke: {seeds: 1, search: {n_trials: 4}}
      demo:  {budget: smoke, seeds: 2, fixed: {steps: 200}}

A grid may name ``controls``: configurations run beside the grid rather than crossed with it, each
naming some searched parameters (the others at their Config default). ``ablation_dims`` sweeps k in
DiD's broadcast form and runs the paper's form once, at the default k, as its control::

    search:
      sampler: grid
      space: {n_compare_dims: {type: int, low: 1, high: 5}, form: {type: categorical, choices: [broadcast]}}
      controls: [{form: paper}]

An ablation or a comparison may give its seeds as a plan: it starts with ``initial`` seeds a
configuration, and after each round adds ``step`` seeds to the comparisons still undecided, up
to ``maximum`` (seeds ``first``, ``first + 1``, ...). Each objective's ``alpha`` (family-wise, default
0.05) and ``margin`` (the smallest difference that matters; "equivalent" needs one) decide them
(:mod:`orchestrator.verdicts.sequential`)::

    seeds: {initial: 3, step: 2, maximum: 10}
    objectives: [{metric: mig, alpha: 0.05, margin: 0.03}]

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

import json
import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from did_core.models.base import MAX_SEED

from .reader import StudyError  # reading a file, and the error every check raises, are reader's
from .seeds import MAX_SEEDS, check_seeds as _seeds  # noqa: F401  the `seeds:` field's three forms

TRACKERS = ("tensorboard", "mlflow")  # what `trackers:` may name (orchestrator/running/trackers/)
MAX_DESCRIPTION = 10_000  # characters
MAX_NAME = 100  # characters: the run folder's name is <name>-<preset>, and a file name has at most 255 bytes
Scalar = Union[bool, int, float, str]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]  # numpy's and scikit-learn's seeds take 32 bits


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a .nan bound or choice is refused


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

    def n_points(self) -> int:
        """``len(grid())`` without building it (``high: 1000000000000`` is a count, not a list)."""
        return len(self.values) if self.values else len(range(self.low, self.high + 1, self.step))


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

    def n_points(self) -> int | None:
        return len(self.values) if self.values else None


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

    @field_validator("choices", mode="before")
    @classmethod
    def _finite(cls, v):
        bad = [c for c in v if isinstance(c, float) and not math.isfinite(c)] if isinstance(v, list) else []
        if bad:
            raise ValueError(f"{bad[0]} is not a finite number")
        return v

    @field_validator("choices")
    @classmethod
    def _unique(cls, v):
        if len({json.dumps(c) for c in v}) != len(v):
            raise ValueError("choices must be distinct")
        return v

    def grid(self) -> list:
        return list(self.choices)

    def n_points(self) -> int:
        return len(self.choices)


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
    alpha: float = Field(0.05, gt=0, lt=1)  # family-wise level of its decisions (effect; equivalent)
    margin: float | None = Field(None, gt=0, allow_inf_nan=False)  # the smallest difference that matters

    @property
    def rule(self):
        from ..verdicts.sequential import DecisionRule

        return DecisionRule(self.alpha, self.margin)


class Search(_Strict):
    sampler: Literal["grid", "tpe", "random", "cmaes", "nsga2"]
    space: dict[str, Param] = Field(default_factory=dict)
    n_trials: int | None = Field(None, ge=1)
    seed: Seed = 0
    population_size: int | None = Field(None, ge=2)  # nsga2 only
    storage: str | None = None
    # grid only: configurations run beside the grid (not a product), each naming some of the searched
    # parameters; the others take their Config default (e.g. `[{form: paper}]`: the paper's form at the
    # default of every other parameter). The report sets them apart as controls.
    controls: list[dict[str, Scalar]] = Field(default_factory=list)


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


def _switch_off(v: Any) -> Any:
    return {"type": "none"} if v is False else v


class SearchOverride(_Strict):
    space: dict[str, Param] | None = None  # replaces the named parameters' specs
    controls: list[dict[str, Scalar]] | None = None  # replaces the study's controls ([] for none)
    n_trials: int | None = Field(None, ge=1)
    seed: Seed | None = None
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
    dataset: str | None = None  # a single-model study: replaces `dataset`
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
    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = Field("", max_length=MAX_DESCRIPTION)
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
    trackers: list[str] = Field(default_factory=list)  # experiment trackers (orchestrator.running.trackers)
    presets: dict[str, PresetSection] = Field(default_factory=dict)

    @field_validator("trackers")
    @classmethod
    def _known_trackers(cls, v):
        bad = [t for t in v if t not in TRACKERS]
        if bad:
            raise ValueError(f"unknown tracker {bad[0]!r}; use any of {', '.join(TRACKERS)}")
        return v

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


def validate(raw: Any, label: str = "<study>") -> StudyFile:
    """``raw`` (a parsed study file) checked against the schema; errors name the file and the field."""
    if not isinstance(raw, dict):
        raise StudyError(f"{label}: expected a mapping of study fields at the top level, got {type(raw).__name__}")
    try:
        return StudyFile.model_validate(raw)
    except ValidationError as e:
        raise StudyError(_format_validation(label, e)) from None


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

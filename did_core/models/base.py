"""What every trainable model shares: a plain config dataclass with budget presets, the divergence
error, and which config fields make the experiment (the events a run yields are in ``events.py``).

A model module provides ``Config`` (a subclass of :class:`TrainConfig`) and
``train(config, out_dir=None, resume=True) -> Iterator[Progress | Eval | Final]``; ``did_core.models``
registers it by name (the contract: :mod:`did_core.models.spec`).

Example:
    >>> cfg = DiDConfig.from_preset("smoke", seed=3, n_compare_dims=4)
    >>> for event in train(cfg, out_dir="runs/x"):
    ...     print(event.kind, event.step)
    >>> cfg.experiment_differences(cfg.replace(num_threads=4, steps=10))   # runtime and schedule may differ
    []
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from .config_error import ConfigError
from .forms import Recipe, switch_form, with_form

MAX_SEED = 2**32 - 1  # numpy's legacy seeding and scikit-learn's random_state take 32 bits


class TrainingDiverged(RuntimeError):
    """A loss became NaN/inf or exploded. ``step`` and ``loss`` say where."""

    def __init__(self, step: int, loss: str, value: float):
        self.step, self.loss, self.value = step, loss, value
        super().__init__(f"training diverged at step {step}: loss {loss!r} is {value}")


@dataclass
class TrainConfig:
    """Fields every model has. Subclasses add their own and may extend ``PRESETS``."""

    model: ClassVar[str] = ""
    AMP: ClassVar[bool] = True  # the model trains under the run's bf16 autocast (scored under it too); False: fp32
    # Fields that say where and how a run executes, never what it computes (hardware, logging);
    # subclasses add theirs. Two configs that differ only here are the same experiment.
    RUNTIME_FIELDS: ClassVar[frozenset[str]] = frozenset({
        "device", "num_threads", "amp", "cpu_amp", "compile", "gpu_memory_fraction", "log_every", "data_path"})
    # Fields that say how long a run trains and how it is scored along the way: a checkpoint may be
    # continued under other values (a longer run), but a search compares trials only at equal ones.
    SCHEDULE_FIELDS: ClassVar[frozenset[str]] = frozenset({
        "steps", "eval_every", "eval_protocol", "final_protocol", "eval_metrics", "eval_at_start", "max_abs_loss"})
    dataset: str = "dsprites"  # a registered dataset, or file:PATH (did_core.data.factor_file)
    data_source: str = "procedural"  # "procedural" or "file" (a dataset with only a file is read from it)
    data_path: str | None = None  # file source: the file, or a folder; default $DID_DATA_DIR
    seed: int = 0
    steps: int = 2000  # optimiser (generator) steps
    batch_size: int = 64
    log_every: int = 50
    eval_every: int = 500  # steps between in-training scores; 0 = only at the end
    eval_protocol: str = "fast"  # protocol for in-training scores
    final_protocol: str = "dlib"  # protocol for the scores at the end
    eval_metrics: str = ""  # comma-separated metric names to compute (e.g. "mig,dci"); "" = all
    device: str = "auto"  # "auto" = CUDA when present, else CPU
    num_threads: int = 0  # torch CPU threads; 0 = leave torch's default
    amp: bool = True  # bf16 autocast on CUDA (the nets that allow it; losses and metrics in fp32)
    cpu_amp: bool = False  # bf16 autocast on the CPU too: tests the GPU's mixed-precision path without one (slow)
    compile: bool = False  # torch.compile the nets that allow it (CUDA mostly; needs a C++ compiler on CPU)
    gpu_memory_fraction: float = 0.0  # CUDA only: cap this process's share of GPU memory; 0 = no cap
    max_abs_loss: float = 1e6  # a loss whose magnitude exceeds this counts as diverged (exploding critic)
    eval_at_start: bool = False  # also score the untrained encoder at step 0

    # Forms (a model with a `form` field): name -> recipe of method options, applied beneath the
    # fields given explicitly (did_core/models/forms.py). Empty: the model has no forms.
    FORMS: ClassVar[dict[str, Recipe]] = {}
    # Budget presets: field overrides applied on top of the defaults.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(steps=20, log_every=5, eval_every=10, eval_protocol="fast", final_protocol="fast"),
        "quick": dict(steps=3000, log_every=50, eval_every=1000),
        "paper": dict(steps=100_000, log_every=200, eval_every=10_000),
    }

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first field whose value is out of range.
        Subclasses extend it (and call ``super().validate()``)."""
        name = type(self).__name__
        for f in ("steps", "batch_size", "log_every"):
            if getattr(self, f) < 1:
                raise ConfigError.invalid(name, f, f"must be >= 1, got {getattr(self, f)}")
        for f in ("eval_every", "num_threads"):
            if getattr(self, f) < 0:
                raise ConfigError.invalid(name, f, f"must be >= 0, got {getattr(self, f)}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError.invalid(name, "seed", f"must be in [0, {MAX_SEED}], got {self.seed}")
        if self.data_source not in ("procedural", "file"):
            raise ConfigError.invalid(name, "data_source", f"must be 'procedural' or 'file', got {self.data_source!r}")
        if not 0.0 <= self.gpu_memory_fraction <= 1.0:
            raise ConfigError.invalid(name, "gpu_memory_fraction", f"must be in [0, 1], got {self.gpu_memory_fraction}")
        from did_core.data import FILE_PREFIX, dataset_problem, dataset_sources  # late: the data package imports torch

        why = dataset_problem(self.dataset)
        if why:
            raise ConfigError.invalid(name, "dataset", why)
        if self.dataset.startswith(FILE_PREFIX) and self.data_path is not None:
            raise ConfigError.invalid(name, "data_path", f"the file of dataset {self.dataset!r} is in its name; "
                                                         "leave data_path unset")
        # "procedural" is only the default: a dataset that is a file alone is read from it
        if self.data_source != "procedural" and self.data_source not in dataset_sources(self.dataset):
            raise ConfigError.invalid(name, "data_source", f"dataset {self.dataset!r} has no {self.data_source!r} "
                                                           f"source (it has {dataset_sources(self.dataset)})")
        if not self.max_abs_loss > 0:
            raise ConfigError.invalid(name, "max_abs_loss", f"must be > 0, got {self.max_abs_loss}")
        self._check_metrics(name)

    def _check_metrics(self, name: str) -> None:
        """Every name in ``eval_metrics`` is a metric the evaluation driver computes."""
        from did_core.metrics.registry import broken_metrics, computed_metrics  # late: they import scikit-learn

        unknown = [m for m in self.metric_names() or [] if m not in computed_metrics()]
        broken = [broken_metrics()[m] for m in unknown if m in broken_metrics()]
        if broken:  # a metric plugin that cannot be used: its own error, naming it
            raise ConfigError.invalid(name, "eval_metrics", str(broken[0]))
        if unknown:
            raise ConfigError.invalid(name, "eval_metrics", f"unknown metric(s) {unknown}; the registered metrics "
                                                            f"are {', '.join(computed_metrics())}")

    def metric_names(self) -> list[str] | None:
        """``eval_metrics`` as a list of names; None (every metric) when it is empty."""
        return [m.strip() for m in self.eval_metrics.split(",") if m.strip()] or None

    def experiment(self, schedule: bool = True) -> dict[str, Any]:
        """The fields that make the experiment: all but the runtime ones (and, with
        ``schedule=False``, all but the schedule ones too)."""
        skip = self.RUNTIME_FIELDS | (frozenset() if schedule else self.SCHEDULE_FIELDS)
        return {k: v for k, v in self.to_dict().items() if k not in skip}

    def experiment_differences(self, other: "TrainConfig | dict[str, Any]", schedule: bool = False) -> list[str]:
        """``field: old -> new`` for each experiment field where ``other`` (a config or its dict)
        differs from this one; empty when both are the same experiment. ``schedule=False``: the
        question a resumed checkpoint asks (a longer run of it is the same experiment)."""
        # a field an older config lacks is at its default (a field is only ever added with a default
        # that keeps what was computed before, e.g. lambda_rec 0, form "paper")
        theirs = {**self.defaults(), **(other.to_dict() if isinstance(other, TrainConfig) else dict(other))}
        skip = self.RUNTIME_FIELDS | (frozenset() if schedule else self.SCHEDULE_FIELDS)
        mine = self.to_dict()
        return [f"{k}: {theirs.get(k)!r} -> {mine.get(k)!r}" for k in sorted(set(mine) | set(theirs))
                if k not in skip and mine.get(k) != theirs.get(k)]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each field's default value."""
        return {f.name: f.default for f in fields(cls) if f.default is not dataclasses.MISSING}

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_preset(cls, preset: str = "quick", **overrides: Any):
        if preset not in cls.PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(cls.PRESETS)}")
        return cls.from_dict({**cls.PRESETS[preset], **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        known = set(cls.field_names())
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}; known fields are {sorted(known)}")
        hints = typing.get_type_hints(cls)
        values = {k: _coerce(cls.__name__, k, v, hints[k]) for k, v in values.items()}
        return cls(**with_form(cls, values))

    def replace(self, **overrides: Any):
        """A copy with ``overrides``; another ``form`` also moves the fields its recipe sets (unless
        they were changed from the old form's values or are in ``overrides``)."""
        return type(self).from_dict(switch_form(self, overrides))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(owner: str, name: str, value: Any, hint: Any) -> Any:
    """Turn ``value`` (possibly a string from the command line) into the field's type, or raise."""
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if value is None or (optional and value in ("None", "null")):
        if optional:
            return None
        raise ConfigError.invalid(owner, name, "None is not allowed")
    if isinstance(value, (list, tuple, dict, set)) and base in (bool, int, float, str):
        raise ConfigError.invalid(owner, name, f"{value!r} is not a valid {base.__name__} (a single value, "
                                               f"not a {type(value).__name__})")
    if isinstance(value, bool) and base in (int, float):  # YAML's true is not 1.0
        raise ConfigError.invalid(owner, name, f"{value!r} is not a valid {base.__name__}")
    if base is str and not isinstance(value, str):  # a number is not a name (device: 123)
        raise ConfigError.invalid(owner, name, f"{value!r} is not a valid str (write it in quotes)")
    try:
        if base is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes"):
                    return True
                if value.lower() in ("false", "0", "no"):
                    return False
                raise ValueError(value)
            if value not in (0, 1):
                raise ValueError(value)
            return bool(value)
        if base is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if base is float:
            number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError.invalid(owner, name, f"{value!r} is not a valid {getattr(base, '__name__', base)}") from None
    if base is float:
        if not math.isfinite(number):  # a NaN or infinite weight trains nothing: every trial would fail
            raise ConfigError.invalid(owner, name, f"{value!r} is not a finite number")
        return number
    return value

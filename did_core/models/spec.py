"""The model contract, checked when a model is registered: :class:`ModelSpec`.

A model is a module (the target of a ``did_orchestrator.models`` entry point, or a built-in) with

- ``Config``: a dataclass subclass of :class:`~did_core.models.base.TrainConfig` (its fields, its
  ``PRESETS``, its ``validate``);
- ``train(config, out_dir=None, resume=True)``: a generator of the events of
  :mod:`did_core.models.events` (``Progress`` ..., ``Eval`` ..., one ``Final``);
- optionally ``report_sections(run)`` and ``REPORT_IMAGES`` (:mod:`did_core.models.report`),
  ``load_selection`` (:mod:`did_core.models.selection`) and ``load_encoder``
  (:mod:`did_core.models.encoder`).

:func:`spec_of_module` builds the spec and turns a broken contract into one
:class:`~did_core.plugins.PluginError` naming the plugin and its package, before any trial runs.

Example:
    >>> spec = ModelSpec(name="toy", config_cls=Config, train=train)     # checked here
    >>> ModelSpec(name="toy", config_cls=dict, train=train)
    Traceback (most recent call last):
    TypeError: model 'toy': Config must be a subclass of did_core.models.TrainConfig, got dict
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Iterator

from ..plugins import BUILT_IN, Plugin
from .base import TrainConfig
from .events import Event
from .report import ReportImages, ReportSection, RunView


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config_cls: type[TrainConfig]
    train: Callable[..., Iterator[Event]]
    report_sections: Callable[[RunView], list[ReportSection]] | None = None
    report_images: ReportImages | None = None
    # the module's ``load_selection(checkpoint, device="cpu") -> SelectionModel`` (did_core/models/selection.py):
    # its nets read back for the label-free scores (UDR, ModelCentrality); None for a model without one
    selection: Callable[..., Any] | None = None
    # the module's ``load_encoder(checkpoint, device="cpu") -> torch.nn.Module`` (did_core/models/encoder.py):
    # images to the codes its evaluation scored, for did_core.load_encoder; None for a model without one
    encoder: Callable[..., Any] | None = None
    package: str = BUILT_IN  # the package that provides it
    summary: str = ""  # one line: what it is (the first line of its module's docstring)

    def __post_init__(self):
        why = _contract_problem(self)
        if why:
            raise TypeError(f"model {self.name!r}: {why}")


def _binds(fn: Callable, *args, **kwargs) -> bool:
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (a builtin): take it as it is
        return True
    return True


def _contract_problem(spec: ModelSpec) -> str | None:
    cls = spec.config_cls
    if not (isinstance(cls, type) and issubclass(cls, TrainConfig)):
        return f"Config must be a subclass of did_core.models.TrainConfig, got {getattr(cls, '__name__', cls)!r}"
    if not dataclasses.is_dataclass(cls) or "__dataclass_fields__" not in vars(cls):
        return f"Config ({cls.__name__}) must be a @dataclass itself, so that its fields are typed"
    if cls.model and cls.model != spec.name:
        return f"Config.model is {cls.model!r}, but the model is registered as {spec.name!r}"
    if not isinstance(cls.PRESETS, dict) or not cls.PRESETS:
        return "Config.PRESETS must map preset names to field overrides"
    fields = set(cls.field_names())
    for preset, overrides in cls.PRESETS.items():
        unknown = sorted(set(overrides) - fields) if isinstance(overrides, dict) else None
        if unknown is None or unknown:
            return f"Config.PRESETS[{preset!r}] must set fields of Config, got {unknown if unknown else overrides!r}"
    for preset in cls.PRESETS:
        try:
            cls.from_preset(preset)
        except (ValueError, TypeError) as e:  # ConfigError too; the plugin's own presets: its error, not the study's that names it
            return f"Config.PRESETS[{preset!r}]: {e}"
    if not callable(spec.train) or not _binds(spec.train, None, out_dir=None, resume=True):
        return "train must be a function train(config, out_dir=None, resume=True) yielding Progress / Eval / Final"
    if not inspect.isgeneratorfunction(inspect.unwrap(spec.train)):
        return ("train must be a generator function train(config, out_dir=None, resume=True) yielding Progress / "
                "Eval / Final (a function with `yield`)")
    if spec.report_sections is not None and not (callable(spec.report_sections) and _binds(spec.report_sections, None)):
        return "report_sections must be a function report_sections(run) returning a list of ReportSection"
    if spec.encoder is not None and not (callable(spec.encoder) and _binds(spec.encoder, "checkpoint.pt", device="cpu")):
        return "load_encoder must be a function load_encoder(checkpoint, device='cpu') returning a torch module"
    if spec.report_images is not None and not isinstance(spec.report_images, ReportImages):
        return f"REPORT_IMAGES must be a did_core.models.report.ReportImages, got {type(spec.report_images).__name__}"
    return None


def summary(doc: str | None, limit: int = 100) -> str:
    """A docstring's first paragraph on one line, cut to ``limit`` characters."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    return paragraph if len(paragraph) <= limit else paragraph[:limit - 1] + "…"


def spec_of_module(plugin: Plugin, module: object) -> ModelSpec:
    """The :class:`ModelSpec` of the module an entry point names, or a PluginError saying what is wrong."""
    if not isinstance(module, ModuleType):
        raise plugin.error(f"must name a module (with Config and train), got {type(module).__name__}")
    missing = [n for n in ("Config", "train") if not hasattr(module, n)]
    if missing:
        raise plugin.error(f"module {module.__name__} lacks {' and '.join(missing)} (a model module defines "
                           "Config, a TrainConfig subclass, and train(config, out_dir, resume))")
    try:
        return ModelSpec(name=plugin.name, config_cls=module.Config, train=module.train,
                         report_sections=getattr(module, "report_sections", None),
                         report_images=getattr(module, "REPORT_IMAGES", None),
                         selection=getattr(module, "load_selection", None),
                         encoder=getattr(module, "load_encoder", None),
                         package=f"{plugin.package} {plugin.version}".strip(), summary=summary(module.__doc__))
    except TypeError as e:
        raise plugin.error(str(e).removeprefix(f"model {plugin.name!r}: ")) from None

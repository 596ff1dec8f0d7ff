"""The dataset contract, checked when a dataset is registered: :class:`DatasetSpec`.

A registered dataset (a built-in, or the target of a ``did_orchestrator.datasets`` entry point)
is a :class:`~did_core.data.base.GroundTruthDataset` subclass, one source (its ``source``:
``"procedural"`` or ``"file"``), or a :class:`DatasetSpec` of several sources that share their
factors (dSprites drawn, or read from DeepMind's file). A procedural class is built as
``cls(device=...)``, a file class as ``cls(path=..., device=...)`` (``path=None``: its default file).

Example:
    >>> DSPRITES = DatasetSpec({"procedural": DSpritesProcedural, "file": DSpritesFile})
    >>> spec = spec_of_object(plugin, TinyBars)      # a FactorFileDataset subclass with its own file
    >>> spec.sources, spec.default_source
    ({'file': <class 'TinyBars'>}, 'file')
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from ..plugins import BUILT_IN, Plugin
from .base import GroundTruthDataset

SOURCES = ("procedural", "file")


@dataclass(frozen=True)
class DatasetSpec:
    sources: Mapping[str, type[GroundTruthDataset]]
    name: str = ""
    package: str = BUILT_IN

    def __post_init__(self):
        why = _contract_problem(self.sources)
        if why:
            raise TypeError(f"dataset {self.name!r}: {why}")

    @property
    def default_source(self) -> str:
        """The source used when none is asked for: procedural when there is one, else the file."""
        return "procedural" if "procedural" in self.sources else next(iter(self.sources))

    def build(self, source: str, path: str | Path | None, device: str | torch.device) -> GroundTruthDataset:
        cls = self.sources[source]
        return cls(device=device) if source == "procedural" else cls(path=path, device=device)

    def factors(self, path: str | Path | None = None) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """``(factor_names, factor_sizes)``, without reading images (every source has the same)."""
        return self.sources[self.default_source].factors_of(path)


def _contract_problem(sources: Mapping[str, type]) -> str | None:
    if not isinstance(sources, Mapping) or not sources:
        return "needs at least one source"
    for source, cls in sources.items():
        if source not in SOURCES:
            return f"unknown source {source!r}; a source is one of {list(SOURCES)}"
        if not (isinstance(cls, type) and issubclass(cls, GroundTruthDataset)):
            return (f"source {source!r} must be a subclass of did_core.data.GroundTruthDataset, "
                    f"got {getattr(cls, '__name__', cls)!r}")
        if inspect.isabstract(cls):
            missing = sorted(getattr(cls, "__abstractmethods__", ()))
            return f"{cls.__name__} does not implement {missing}"
        if getattr(cls, "source", None) != source:
            return f"{cls.__name__}.source is {getattr(cls, 'source', None)!r}, but it is registered as the {source!r} source"
        wanted = ("device",) if source == "procedural" else ("path", "device")
        try:
            inspect.signature(cls).bind(**{k: None for k in wanted})
        except TypeError:
            return f"{cls.__name__} must be built as {cls.__name__}({', '.join(k + '=...' for k in wanted)})"
    return None


def spec_of_object(plugin: Plugin, obj: object) -> DatasetSpec:
    """The :class:`DatasetSpec` of what an entry point names, or a PluginError saying what is wrong."""
    package = f"{plugin.package} {plugin.version}".strip()
    try:
        if isinstance(obj, DatasetSpec):
            return DatasetSpec(obj.sources, name=plugin.name, package=package)
        if isinstance(obj, type) and issubclass(obj, GroundTruthDataset):
            return DatasetSpec({getattr(obj, "source", None): obj}, name=plugin.name, package=package)
    except TypeError as e:
        raise plugin.error(str(e).removeprefix(f"dataset {plugin.name!r}: ")) from None
    raise plugin.error(f"must name a GroundTruthDataset subclass or a DatasetSpec, got {type(obj).__name__}")


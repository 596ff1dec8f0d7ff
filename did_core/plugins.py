"""Entry-point plugins: the models, datasets and metrics that installed packages add, next to the
built-in ones, which register through the same path.

A package declares its parts in its ``pyproject.toml``; after ``pip install`` they resolve by name
exactly like the built-ins (``model: my_vae`` in a study, ``--model my_vae``):

    [project.entry-points."did_orchestrator.models"]
    my_vae = "my_pkg.model"              # a module with Config and train
    [project.entry-points."did_orchestrator.datasets"]
    my_shapes = "my_pkg.data:MyShapes"   # a GroundTruthDataset subclass, or a DatasetSpec
    [project.entry-points."did_orchestrator.metrics"]
    my_score = "my_pkg.metric:METRIC"    # a Metric, or a list of them

Each group is read once per process from the installed packages' metadata
(:func:`importlib.metadata.entry_points`, which finds a package anywhere on ``sys.path``, so also
in Ray's workers through ``PYTHONPATH``). A :class:`Registry` merges it with its built-in table;
a plugin is imported, and checked against its contract, when its name is first used. A name two
packages declare, a plugin that fails to import, or one that breaks its contract is one
:class:`PluginError` naming the plugin and its package, raised where that name is used: every
other name stays usable. Nothing else is ever imported: a study
file names registered parts, never modules.

Example:
    >>> MODELS = Registry(MODEL_GROUP, "model", {"did": "did_core.models.did"}, check=lambda plugin, obj: obj)
    >>> MODELS.names()                       # the built-ins and every installed plugin
    ['did', 'my_vae']
    >>> MODELS.get("my_vae")                 # imported and checked on first use
    >>> str(MODELS.plugin("my_vae"))
    "plugin 'my_vae' (my_pkg.model) of package my-pkg 0.1.0"
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata
import re
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

MODEL_GROUP = "did_orchestrator.models"
DATASET_GROUP = "did_orchestrator.datasets"
METRIC_GROUP = "did_orchestrator.metrics"
BUILT_IN = "did-orchestrator"  # the package the built-ins belong to
ADDED = "(registered at run time)"  # the package of a part added by Registry.add (tests, notebooks)

T = TypeVar("T")


class PluginError(ValueError):
    """A plugin cannot be used: its name is taken, it fails to import, or it breaks its contract."""


def _normal(package: str) -> str:
    return re.sub(r"[-_.]+", "-", package).lower()


@dataclass(frozen=True)
class Plugin:
    """One entry point: ``name = "module[:attribute]"`` in ``group``, declared by ``package``."""

    group: str
    name: str
    value: str
    package: str = BUILT_IN
    version: str = ""

    def __str__(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"plugin {self.name!r} ({self.value}) of package {self.package}{version}"

    @property
    def built_in(self) -> bool:
        return _normal(self.package) == _normal(BUILT_IN)

    def error(self, why: str) -> PluginError:
        return PluginError(f"{self}: {why}")

    def load(self) -> Any:
        """The object the entry point names; a :class:`PluginError` for anything that goes wrong."""
        module, _, attribute = self.value.partition(":")
        try:
            obj = importlib.import_module(module.strip())
            for part in filter(None, attribute.strip().split(".")):
                obj = getattr(obj, part)
        except Exception as e:  # third-party code may raise anything while importing
            raise self.error(f"cannot be imported ({type(e).__name__}: {e})") from e
        return obj


@functools.cache
def installed(group: str) -> tuple[Plugin, ...]:
    """The entry points of ``group`` that installed packages declare, read once per process,
    in a fixed order (by package, then name)."""
    found = [Plugin(group, ep.name, ep.value, ep.dist.name if ep.dist else "?", ep.dist.version if ep.dist else "")
             for ep in importlib.metadata.entry_points(group=group)]
    return tuple(sorted(found, key=lambda p: (_normal(p.package), p.name)))


class Registry(Generic[T]):
    """The names of one part (models, datasets, metrics): the built-in table, then the installed
    entry points of ``group``, then what :meth:`add` registered. ``check(plugin, obj)`` turns the
    loaded object into the registered one (a ``ModelSpec``, a ``DatasetSpec``, ...) or raises
    :class:`PluginError` (use ``plugin.error(why)``)."""

    def __init__(self, group: str, kind: str, built_in: dict[str, str], check: Callable[[Plugin, Any], T]):
        self.group, self.kind, self.check = group, kind, check
        self._built_in = [Plugin(group, name, value) for name, value in built_in.items()]
        self._added: list[Plugin] = []
        self._plugins: dict[str, Plugin] | None = None
        self._loaded: dict[str, T] = {}
        self._clashes: dict[str, PluginError] = {}

    def plugins(self) -> dict[str, Plugin]:
        """Name -> plugin, in registration order. A name two packages declare keeps the first, and
        :meth:`get` refuses it with one error naming both (the built-ins' own metadata, when
        installed, declares them again: not a clash); every other name stays usable."""
        if self._plugins is None:
            found: dict[str, Plugin] = {}
            self._clashes = {}
            for plugin in [*self._built_in, *installed(self.group), *self._added]:
                have = found.setdefault(plugin.name, plugin)
                if have is not plugin and (have.value, _normal(have.package)) != (plugin.value, _normal(plugin.package)):
                    self._clashes.setdefault(plugin.name, PluginError(
                        f"{self.kind} name {plugin.name!r} is declared twice, by {have} and by {plugin}; "
                        "uninstall one of the packages"))
            self._plugins = found
        return self._plugins

    def clash(self, name: str) -> PluginError | None:
        """The error of a name two packages declare, or None."""
        self.plugins()
        return self._clashes.get(name)

    def names(self) -> list[str]:
        return list(self.plugins())

    def packages(self) -> dict[str, str]:
        """Name -> the package that provides it, with its version (``did-ae-plugin 0.1.0``), unimported."""
        return {name: f"{p.package} {p.version}".strip() for name, p in self.plugins().items()}

    def plugin(self, name: str) -> Plugin:
        """The plugin registered as ``name``; KeyError for an unknown name."""
        return self.plugins()[name]

    def get(self, name: str) -> T:
        """The registered part ``name``, imported and checked on first use (KeyError: unknown)."""
        if name not in self._loaded:
            plugin = self.plugin(name)
            if self.clash(name) is not None:
                raise self.clash(name)
            self._loaded[name] = self.check(plugin, plugin.load())
        return self._loaded[name]

    def add(self, name: str, value: str, package: str = ADDED) -> Plugin:
        """Register ``name = value`` in this process as an installed package would (tests,
        notebooks); the same checks apply, a clash included."""
        plugin = Plugin(self.group, name, value, package)
        self._added.append(plugin)
        self._plugins = None
        if self.clash(name) is not None:
            error = self.clash(name)
            self._added.pop()
            self._plugins = None
            raise error
        return plugin

    def remove(self, name: str) -> None:
        """Forget a part :meth:`add` registered (tests)."""
        self._added = [p for p in self._added if p.name != name]
        self._plugins = None
        self._loaded.pop(name, None)

    def reload(self) -> None:
        """Read the installed entry points again (tests that install a package while running)."""
        installed.cache_clear()
        self._plugins = None
        self._loaded.clear()

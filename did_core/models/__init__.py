"""The model registry: a name maps to a config dataclass and a ``train`` generator.

Adding a model is one module (with ``Config`` and ``train``) and one line in ``_MODULES``.

Example:
    >>> spec = get_model("did")
    >>> cfg = spec.config_cls.from_preset("smoke", seed=1)
    >>> events = list(spec.train(cfg, out_dir=None))   # Progress, Eval, ..., Final
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .base import ConfigError, TrainConfig, TrainingDiverged
from .events import Eval, Event, Final, Progress

# name -> module path; modules are imported on first use so that importing the registry is cheap.
_MODULES: dict[str, str] = {
    "did": "did_core.models.did",
    "beta_vae": "did_core.models.beta_vae",
    "beta_tcvae": "did_core.models.beta_tcvae",
    "factor_vae": "did_core.models.factor_vae",
    "v3": "did_core.models.v3",
    "parted_vae": "did_core.models.parted_vae",
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config_cls: type[TrainConfig]
    train: Callable[..., Iterator[Event]]
    # the module's ``load_selection(checkpoint, device="cpu") -> SelectionModel`` (did_core/models/selection.py):
    # its nets read back for the label-free scores (UDR, ModelCentrality); None for a model without one
    selection: Callable[..., Any] | None = None


def available_models() -> list[str]:
    return sorted(_MODULES)


def get_model(name: str) -> ModelSpec:
    if name not in _MODULES:
        raise ConfigError(f"unknown model {name!r}; registered models are {available_models()}")
    module = importlib.import_module(_MODULES[name])
    return ModelSpec(name=name, config_cls=module.Config, train=module.train,
                     selection=getattr(module, "load_selection", None))


__all__ = ["ConfigError", "Eval", "Event", "Final", "ModelSpec", "Progress", "TrainConfig", "TrainingDiverged", "available_models", "get_model"]
